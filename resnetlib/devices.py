"""Where a computation runs and in which precision, decided once for the whole library.

``resolve_device`` turns a configured name (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``) into a
``torch.device`` and refuses, with the fix in the message, an accelerator torch cannot see.
``autocast`` is the one mixed-precision switch (``amp: off | bf16 | fp16``) of the training loop, the
experiments and the benchmarks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

__all__ = ["resolve_device", "autocast", "AMP_DTYPES"]

#: ``amp`` setting -> autocast dtype (``off`` runs in the model's own precision, fp32).
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """The device named ``name``; ``auto`` is CUDA when torch sees it, else the CPU (never MPS).

    A bare ``cuda`` is the process's own GPU under torchrun (``cuda:<local_rank>``). Asking for CUDA or
    MPS where torch has none raises one ``RuntimeError`` that says what to set instead.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    _require_available(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def _require_available(device: torch.device) -> None:
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {str(device)!r} was asked for but torch sees no CUDA device; use device: cpu "
            "(or auto), or install a CUDA build of torch"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(
            f"device {str(device)!r} was asked for but torch sees no Apple MPS device; "
            "use device: cpu (or auto)"
        )


def autocast(
    amp: str, device: torch.device | str, cache_enabled: bool | None = None
) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of autocast contexts for ``amp`` (``off``, ``bf16`` or ``fp16``) on ``device``.

    Call it once per forward pass (``with autocast_fn(): ...``); ``off`` gives ``nullcontext``.
    ``cache_enabled=False`` is needed inside CUDA-graph capture (None: torch's default).
    """
    if amp == "off":
        return contextlib.nullcontext
    dtype = AMP_DTYPES[amp]
    device_type = torch.device(device).type
    options = {} if cache_enabled is None else {"cache_enabled": cache_enabled}
    return lambda: torch.autocast(device_type, dtype=dtype, **options)
