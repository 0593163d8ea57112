"""What a run records about where it ran: code version, library versions, device, data."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch
import torchvision

REPO_ROOT = Path(__file__).resolve().parents[2]


def git_state(root: Path = REPO_ROOT) -> dict[str, Any]:
    """Commit and dirty flag of the checkout resnetlib runs from ('unknown' outside a git checkout)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip() != ""
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def describe_environment(device: torch.device, dataset: str, data_source: str) -> dict[str, Any]:
    return {
        **git_state(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "host": platform.node(),
        "device": str(device),
        "device_name": device_name(device),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "dataset": dataset,
        "data_source": data_source,
    }
