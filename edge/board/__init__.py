"""Board health: sensors (thermal zones, throttle bits, memory, cgroup, PSI, power), the one
sampling thread, the thermal and memory policy, and energy per answer."""
