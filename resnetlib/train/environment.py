"""What a run records about where it ran: code version, library versions, device, data.

The one place that reads the git state: the run folders (``environment.json``) and the index page's
header (:mod:`resnetlib.report.index`) both call :func:`git_state`, so they cannot disagree on "dirty".
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

import torch
import torchvision

from ..devices import cpu_features, resolve_amp
from ..paths import REPO_ROOT

__all__ = ["git_state", "device_name", "machine_device", "describe_environment", "UNKNOWN_GIT"]

#: What :func:`git_state` returns outside a git checkout (or without git).
UNKNOWN_GIT: dict[str, Any] = {"commit": "unknown", "dirty": None}


def _git(root: Path, *args: str) -> str | None:
    """stdout of a read-only git command (no index lock taken), or None if git is missing or fails."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        res = subprocess.run([git, "--no-optional-locks", "-C", str(root), *args],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout if res.returncode == 0 else None


def git_state(root: Path = REPO_ROOT) -> dict[str, Any]:
    """``{"commit": sha or "unknown", "dirty": bool or None}`` of the checkout resnetlib runs from.

    The one rule for "dirty": ``git status --porcelain`` lists anything, i.e. a tracked file is changed
    or staged, or a file that is not ignored is untracked (a new module the run imports changes what the
    commit alone would compute). Files in ``.gitignore`` (runs/, reports/PROFILE/, data/) never count.
    ``dirty`` is None when the status cannot be read.
    """
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return dict(UNKNOWN_GIT)
    status = _git(root, "status", "--porcelain")
    return {"commit": commit.strip(), "dirty": None if status is None else bool(status.strip())}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_features()['model']} CPU, {torch.get_num_threads()} threads"


def machine_device() -> str:
    """The machine's accelerators in one line (the index header): ``cuda: 2 x NAME`` or ``cpu (N cores)``."""
    if not torch.cuda.is_available():
        return f"cpu ({os.cpu_count()} cores)"
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return f"cuda: {len(names)} x {names[0]}" if len(set(names)) == 1 else "cuda: " + ", ".join(names)


def describe_environment(device: torch.device, dataset: str, data_source: str, amp: str = "off") -> dict[str, Any]:
    """Where and how a run trains: code, library versions, device, the CPU's kernel level and bf16 flags
    (the same seed trains other numbers on other CPUs), the precision ``amp`` resolved to, the data."""
    return {
        **git_state(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "host": platform.node(),
        "device": str(device),
        "device_name": device_name(device),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "cpu": cpu_features(),
        "amp": resolve_amp(amp, device),
        "dataset": dataset,
        "data_source": data_source,
    }
