"""``reproduce --jobs auto``: how many runs the run queue trains at once on this machine.

On a CPU one job per core (``benchmarks/cpu_setups.py``: 1-thread jobs side by side train more images/s than
one job on every core). On CUDA the packing factor the device check measured (``benchmarks/gpu/
device_check.py``, section ``packing``: the number of processes sharing the card with the highest total
images/s) from a committed ``benchmarks/results/device_check*.json``; 1 until a check has been committed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..paths import REPO_ROOT

__all__ = ["packing_factor", "resolve_jobs"]

RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
#: A larger packing must beat the smaller one by this factor in total images/s to be chosen.
MIN_GAIN = 1.1


def _packing_rows(data: Any) -> list[dict[str, Any]]:
    """The ``packing`` section's rows of a device-check JSON, wherever the section is nested."""
    if isinstance(data, dict):
        rows = data.get("packing", {}).get("rows") if isinstance(data.get("packing"), dict) else None
        if isinstance(rows, list):
            return rows
        for value in data.values():
            found = _packing_rows(value)
            if found:
                return found
    return []


def packing_factor(results_dir: Path | None = None) -> tuple[int, str]:
    """(processes per card, where that number comes from): the smallest N whose total images/s no larger N
    beats by ``MIN_GAIN``; 1 when no device check is committed."""
    for path in sorted((results_dir or RESULTS_DIR).glob("device_check*.json")):
        try:
            rows = _packing_rows(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
        best = None
        for row in sorted(rows, key=lambda r: r.get("processes", 0)):
            total = float(row.get("total_images_per_s") or 0)
            if best is None or total > best[1] * MIN_GAIN:
                best = (int(row["processes"]), total)
        if best:
            return best[0], f"packing measured in {path.name}"
    return 1, "no device check committed yet (benchmarks/results/device_check*.json): 1"


def resolve_jobs(jobs: int | str, device_type: str, cores: int | None = None) -> tuple[int, str]:
    """``--jobs`` as a number, and why: ``auto`` is one job per core on a CPU, the packing factor on CUDA."""
    if jobs != "auto":
        return int(jobs), "--jobs"
    if device_type == "cuda":
        return packing_factor()
    from ..run_queue import _cores

    n = cores or _cores()
    return n, f"auto: one 1-thread job per core ({n} cores)"
