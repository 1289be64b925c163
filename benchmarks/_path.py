"""Puts the project root on ``sys.path``: a benchmark run as a script
(``.venv/bin/python benchmarks/x.py``) sees only ``benchmarks/``, and imports the tests'
helpers as ``tests.support...`` and the project's packages from this checkout. Imported
first (``import _path``) by each benchmark that needs it."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
