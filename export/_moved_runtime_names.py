"""Old names of runtime modules for build-time code not yet updated to the split edge/ package.

Registers ``edge.<old>`` in ``sys.modules`` as an alias of its new module, so
``from edge.decision import softmax`` in export/build.py and export/esi_*.py keeps working while
those files are finished elsewhere. Nothing under edge/ uses these names; delete this module when
``grep -rn "edge\\.\\(decision\\|metrics\\|features\\|abbreviations\\|bundle\\|datasets\\|rules\\)\\b" export``
finds nothing.
"""

from __future__ import annotations

import importlib
import sys

OLD_TO_NEW = {
    "edge.abbreviations": "edge.clinical.abbreviations",
    "edge.bundle": "edge.inference.bundle",
    "edge.datasets": "edge.clinical.datasets",
    "edge.decision": "edge.clinical.decision_rule",
    "edge.features": "edge.clinical.features",
    "edge.metrics": "edge.clinical.evaluation_metrics",
    "edge.rules": "edge.clinical.rules",
}

for _old, _new in OLD_TO_NEW.items():
    sys.modules.setdefault(_old, importlib.import_module(_new))
