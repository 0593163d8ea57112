"""What training cost: thread-seconds (and CPU seconds where measured) of the runs an experiment used.

Issue 20: a profile's cost is stated in core-hours, which hold across machines of different speed better
than wall time: each run's training seconds times the compute threads it had (``threads`` in its
config.yaml; torch's default, the machine's cores, when unset), or the GPU-seconds of a CUDA run. Where the
run queue trained the run it also measured the process's CPU seconds (``cost.json``, ``run_queue.add_cost``),
which stay right when other work shared the cores (thread-seconds then overstate the cost).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

__all__ = ["run_cost", "runs_cost", "thread_seconds"]


def thread_seconds(run_dir: Path) -> float:
    """A finished run's training seconds times its compute threads (GPU-seconds on a GPU)."""
    seconds = float(json.loads((run_dir / "summary.json").read_text())["train_seconds"])
    env_file = run_dir / "environment.json"
    env = json.loads(env_file.read_text()) if env_file.is_file() else {}
    if not str(env.get("device", "cpu")).startswith("cpu"):
        return seconds
    config_file = run_dir / "config.yaml"
    threads = (yaml.safe_load(config_file.read_text()) or {}).get("threads") if config_file.is_file() else None
    return seconds * (threads or os.cpu_count() or 1)


def run_cost(run_dir: str | Path) -> dict[str, Any]:
    """``{run, thread_seconds, cpu_seconds}`` of one finished run (``cpu_seconds`` None where not measured)."""
    run_dir = Path(run_dir)
    cost_file = run_dir / "cost.json"
    cpu = json.loads(cost_file.read_text()).get("cpu_seconds") if cost_file.is_file() else None
    return {"run": run_dir.name, "thread_seconds": round(thread_seconds(run_dir), 1), "cpu_seconds": cpu}


def runs_cost(frames: Iterable[Any]) -> list[dict[str, Any]]:
    """The cost of every distinct finished run named in the ``run_dir`` column of any of ``frames``."""
    folders: dict[str, Path] = {}
    for frame in frames:
        if isinstance(frame, pd.DataFrame) and "run_dir" in frame.columns:
            for folder in frame["run_dir"].dropna().unique():
                folders.setdefault(Path(folder).name, Path(folder))
    return [run_cost(d) for d in folders.values() if (d / "summary.json").is_file()]
