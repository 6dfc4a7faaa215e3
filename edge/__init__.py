"""On-device triage runtime: bundle loading, safety rules, latency-bounded service.

Imports only onnxruntime, tokenizers, numpy, flask, psutil, waitress and prometheus-client — never torch,
transformers or optimum (those belong to the build-time ``export`` package).
"""

__version__ = "0.1.0"
