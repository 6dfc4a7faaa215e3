"""Board health monitors (thermal, memory) and the sampling thread; see edge/policy.py for what
the service does with them."""
