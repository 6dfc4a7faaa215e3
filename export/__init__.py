"""Build time: data → baselines → teacher → distilled student → ONNX → int8 → model bundle.

Heavy dependencies (torch, transformers, scikit-learn, matplotlib) are imported here only,
as the optional ``export`` extra; the device runtime (``edge``) never imports this package.
"""

# Bridge for modules still being finished on another branch (export/build.py, export/esi_*.py):
# they import the runtime's modules by their names before the edge/ package was split into
# clinical/inference/board/service. Build-time only (the runtime never imports ``export``);
# remove once those files import the new names.
from export import _moved_runtime_names  # noqa: E402,F401
