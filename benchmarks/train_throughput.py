#!/usr/bin/env python
"""Training throughput of resnetlib's loop against a bare step and a conventional DataLoader pipeline.

The entry point of ``make bench``; the benchmark itself is the package ``benchmarks/throughput`` (its
docstring describes the three measurements, the interleaving and the memory check). Same as
``python -m benchmarks.throughput`` from the repository root.

    python benchmarks/train_throughput.py --quick
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # run as a script, benchmarks/ alone is on the path

from benchmarks.throughput.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
