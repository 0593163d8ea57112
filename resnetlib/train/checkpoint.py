"""Checkpoints that survive crashes: written atomically, read back with clear errors.

A checkpoint holds everything needed to continue a run exactly: model, optimizer, AMP scaler, the
training state (iteration, warm-up state, running sums), every RNG and the metrics so far. The data
order needs no state: batch i is a pure function of (seed, i) (see ``resnetlib.data.DeviceBatches``).
"""

from __future__ import annotations

import os
import pickle
import random
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import nn

FORMAT = "resnetlib-checkpoint-v1"

__all__ = [
    "CheckpointError", "save_atomic", "replace_atomic", "load_checkpoint", "rng_state", "set_rng_state",
    "check_compatible", "nonfinite_tensors", "previous_of", "fsync_folder", "TEMP_GLOB",
]


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message says why and what to do."""


def temporary_name(path: Path) -> Path:
    """A name beside ``path`` that no other writer uses: ``.<name>.tmp-<pid>-<random>`` (``TEMP_GLOB``)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


#: What ``temporary_name`` makes: left behind only by a killed writer, removed at the next start.
TEMP_GLOB = ".*.tmp-*"


def fsync_folder(folder: Path) -> None:
    """Make a rename inside ``folder`` durable: without it a power cut can undo the rename."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_atomic(path: str | Path, write: Callable[[BinaryIO], None], keep_previous: bool = False) -> Path:
    """Write ``path`` through a unique temporary file: ``write(f)``, fsync, rename, fsync the folder.

    A crash at any moment leaves the old file or the new one, never a torn one. ``keep_previous`` first
    renames the old file to ``previous-<name>``, so one more good copy survives the replacement.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if keep_previous and path.exists():
            keep_copy(path, previous_of(path))
        os.replace(tmp, path)
        fsync_folder(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def keep_copy(path: Path, target: Path) -> None:
    """Make ``target`` a second name of ``path`` (a hard link renamed into place), so ``path`` itself never
    disappears: a kill at any moment leaves ``last.pt`` (old or new) on disk."""
    link = temporary_name(target)
    os.link(path, link)
    os.replace(link, target)


def previous_of(path: Path) -> Path:
    """The checkpoint kept from before ``path`` (``checkpoints/previous-last.pt``)."""
    return path.with_name(f"previous-{path.name}")


def save_atomic(payload: dict[str, Any], path: str | Path, keep_previous: bool = False) -> Path:
    """``torch.save`` a checkpoint through ``replace_atomic`` (never a torn file)."""
    return replace_atomic(path, lambda f: torch.save({"format": FORMAT, **payload}, f), keep_previous)


def nonfinite_tensors(state: Any, prefix: str = "") -> list[str]:
    """Names of the floating tensors in a (nested) state dict holding NaN or inf, in one device sync.

    A step with a finite loss can still write NaN into the weights, the momentum or the BN statistics;
    such a state must never become the checkpoint a run resumes from.
    """
    named = list(_floating_tensors(state, prefix))
    if not named:
        return []
    device = named[0][1].device
    finite = torch.stack([torch.isfinite(t).all().to(device) for _, t in named]).tolist()
    return [name for (name, _), ok in zip(named, finite) if not ok]


def _floating_tensors(state: Any, prefix: str):
    """(dotted name, tensor) of every floating-point tensor in nested dicts and lists."""
    if isinstance(state, torch.Tensor):
        if state.is_floating_point():
            yield prefix, state
    elif isinstance(state, dict):
        for key, value in state.items():
            yield from _floating_tensors(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(state, list | tuple):
        for i, value in enumerate(state):
            yield from _floating_tensors(value, f"{prefix}.{i}")


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
            + _corrupt_fix(path)
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a resnetlib training checkpoint (format {FORMAT} expected)")
    return payload


def _corrupt_fix(path: Path) -> str:
    """What to do about a corrupt checkpoint: name the earlier copy only when there is one."""
    previous = previous_of(path)
    if previous.is_file():
        return f"move {previous.name} over {path.name} to resume from the one before it, or start again"
    return "start the run again in another --run-dir (no earlier checkpoint is kept)"


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
