"""Helpers for tests and benchmarks that need a real bundle without the build toolchain."""
