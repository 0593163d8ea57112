"""Where a computation runs and in which precision, decided once for the whole library.

``resolve_device`` turns a configured name (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``) into a
``torch.device`` and refuses, with the fix in the message, an accelerator torch cannot see.
``autocast`` is the one mixed-precision switch (``amp: off | bf16 | fp16 | auto``) of the training loop,
the experiments and the benchmarks; ``resolve_amp`` turns ``auto`` into what this machine runs fastest
(``cpu_features`` reads what the processor has: bf16 autocast on a CPU without bf16 instructions is about
9x slower than fp32, with them ~1.4-1.6x faster, see benchmarks/README.md).
"""

from __future__ import annotations

import contextlib
import functools
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

__all__ = ["resolve_device", "resolve_amp", "autocast", "cpu_features", "AMP_DTYPES", "BF16_CPU_FLAGS"]

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


#: /proc/cpuinfo flags of x86 instructions that compute in bf16 (AVX512-BF16 on Intel Cooper Lake and later
#: and AMD Zen 4 and later; AMX on Intel Sapphire Rapids and later).
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
#: The flags recorded with every run and benchmark (what decides the CPU's conv kernels).
RECORDED_CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


@functools.lru_cache(maxsize=1)
def cpu_features() -> dict[str, Any]:
    """What this CPU has: model name, torch's kernel level (``get_cpu_capability``) and the flags of
    ``RECORDED_CPU_FLAGS`` it has; recorded in every run's environment.json and benchmark result."""
    model, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    return {"model": model, "capability": torch.backends.cpu.get_cpu_capability(),
            "flags": [f for f in RECORDED_CPU_FLAGS if f in flags]}


def resolve_amp(amp: str, device: torch.device | str) -> str:
    """``amp`` as trained on ``device``: ``auto`` is bf16 on CUDA and on CPUs with bf16 instructions
    (``BF16_CPU_FLAGS``), else off; any other setting is itself."""
    if amp != "auto":
        return amp
    device_type = torch.device(device).type
    if device_type == "cuda":
        return "bf16"
    if device_type == "cpu" and any(f in cpu_features()["flags"] for f in BF16_CPU_FLAGS):
        return "bf16"
    return "off"


def autocast(
    amp: str, device: torch.device | str, cache_enabled: bool | None = None
) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of autocast contexts for ``amp`` (``off``, ``bf16``, ``fp16`` or ``auto``) on ``device``.

    Call it once per forward pass (``with autocast_fn(): ...``); ``off`` gives ``nullcontext``.
    ``cache_enabled=False`` is needed inside CUDA-graph capture (None: torch's default).
    """
    amp = resolve_amp(amp, device)
    if amp == "off":
        return contextlib.nullcontext
    dtype = AMP_DTYPES[amp]
    device_type = torch.device(device).type
    options = {} if cache_enabled is None else {"cache_enabled": cache_enabled}
    return lambda: torch.autocast(device_type, dtype=dtype, **options)
