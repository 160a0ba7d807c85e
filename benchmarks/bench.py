#!/usr/bin/env python
"""peerevidence benchmarks: run on demand (never from the tests).

    python benchmarks/bench.py [--quick] [--only SECTION ...]

The harness (registry, machine and load records, results.md) is ``benchmarks/harness.py``;
each section is a module of ``benchmarks/sections/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
from sections import batch, false_alarm, fit_vs_exact, fresh, reml_corpus  # noqa: F401

if __name__ == "__main__":
    sys.exit(harness.main())
