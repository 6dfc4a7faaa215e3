"""``python -m edge.cli``: the same commands as the ``edge-triage`` script."""

import sys

from edge.cli import main

sys.exit(main())
