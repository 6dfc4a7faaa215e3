"""Benchmarks for the edge triage appliance: model latency against the alternatives, the compute
floor, the HTTP service under load, cold start and energy. Run ``python -m bench`` (full) or
``python -m bench --quick``; results land in ``bench/results/``. Heavy imports (torch,
transformers, matplotlib) stay inside the functions that need them, so quick mode runs without.
"""
