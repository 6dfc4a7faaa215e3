"""Build time: data → baselines → teacher → distilled student → ONNX → int8 → model bundle.

Heavy dependencies (torch, transformers, scikit-learn, matplotlib) are imported here only,
as the optional ``export`` extra; the device runtime (``edge``) never imports this package.
"""
