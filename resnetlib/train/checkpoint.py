"""Checkpoints that survive crashes: written atomically, read back with clear errors.

A checkpoint holds everything needed to continue a run exactly: model, optimizer, AMP scaler, the
training state (iteration, warm-up state, running sums), every RNG and the metrics so far. The data
order needs no state: batch i is a pure function of (seed, i) (see ``resnetlib.data.DeviceBatches``).
"""

from __future__ import annotations

import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

FORMAT = "resnetlib-checkpoint-v1"

__all__ = [
    "CheckpointError", "save_atomic", "load_checkpoint", "rng_state", "set_rng_state", "check_compatible",
]


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message says why and what to do."""


def save_atomic(payload: dict[str, Any], path: str | Path) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``.

    A crash at any moment leaves either the old checkpoint or the new one, never a torn file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save({"format": FORMAT, **payload}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a resnetlib checkpoint, or raise CheckpointError naming the file and the fix."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"no checkpoint at {path}: start without --resume, or name the right run folder"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, EOFError, RuntimeError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}: {str(exc)[:200]}); "
            "move it away and resume from an earlier copy, or start the run again without --resume"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a resnetlib training checkpoint (format {FORMAT} expected)")
    return payload


def check_compatible(payload: dict[str, Any], model: nn.Module, path: str | Path) -> None:
    """Refuse a checkpoint of another architecture with one message instead of a stack of size errors."""
    details = _mismatches(payload["model"], model.state_dict())
    if details:
        saved_model = payload.get("config", {}).get("model", {}).get("name", "?")
        raise CheckpointError(
            f"checkpoint {path} was written for model {saved_model!r} and does not fit this model: "
            + "; ".join(details)
            + ". Resume with the configuration the run was started with, or use another --run-dir."
        )


def _mismatches(saved: dict[str, torch.Tensor], current: dict[str, torch.Tensor]) -> list[str]:
    """How two state dicts differ: tensors of another shape, missing ones, unexpected ones (one example each)."""
    missing = sorted(set(current) - set(saved))
    unexpected = sorted(set(saved) - set(current))
    wrong = [k for k in current if k in saved and tuple(saved[k].shape) != tuple(current[k].shape)]
    details = []
    if wrong:
        k = wrong[0]
        details.append(
            f"{len(wrong)} tensors differ in shape (e.g. {k}: {tuple(saved[k].shape)} saved, "
            f"{tuple(current[k].shape)} now)"
        )
    if missing:
        details.append(f"{len(missing)} tensors missing (e.g. {missing[0]})")
    if unexpected:
        details.append(f"{len(unexpected)} unexpected tensors (e.g. {unexpected[0]})")
    return details


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
