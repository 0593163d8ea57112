"""Memory of a training step (Sec. 4.2, "Exploring over 1000 layers"): what ResNet-1202 costs to train.

The one activation-memory meter of the library: ``SavedForBackward`` records every tensor autograd keeps
for backward (through ``torch.autograd.graph.saved_tensors_hooks``), each storage once (views and
in-place results share one), split into activations, parameters and buffers. ``activation_bytes`` is
its usual reading, one training-mode forward pass; ``CudaPeak`` adds the allocator's peak on CUDA.
With activation checkpointing (``torch.utils.checkpoint``, non-reentrant) only each block's input is
saved; the recomputation in backward adds one block's activations at a time, which is not counted.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["activation_bytes", "SavedForBackward", "CudaPeak"]


def activation_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes of the tensors autograd keeps for backward after one training-mode forward pass of ``x``.

    Parameters and buffers are left out (the weights are there whether or not anything is saved). The
    model is left in training mode; BN running statistics see one extra batch.
    """
    model.train()
    with torch.enable_grad(), SavedForBackward(model) as saved:
        out = model(x)
    del out  # frees the graph and what it saved
    return saved.activations


class SavedForBackward(contextlib.AbstractContextManager):
    """While active, record the storages autograd saves for backward; read the sums afterwards.

    ``activations``: bytes of storages that are neither parameters nor buffers of ``model``;
    ``params`` and ``buffers``: bytes of the model's own storages that were saved; ``total``: all three.
    """

    def __init__(self, model: nn.Module) -> None:
        self._params = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self._buffers = {b.untyped_storage().data_ptr() for b in model.buffers()} - self._params
        self._seen: dict[Any, tuple[int, str]] = {}
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, _unpack)

    def __enter__(self) -> SavedForBackward:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        key, nbytes = _storage_key(t)
        kind = "param" if key[1] in self._params else "buffer" if key[1] in self._buffers else "activation"
        self._seen[key] = (max(self._seen.get(key, (0, kind))[0], nbytes), kind)
        return t

    def _bytes(self, kind: str) -> int:
        return sum(n for n, k in self._seen.values() if k == kind)

    @property
    def activations(self) -> int:
        return self._bytes("activation")

    @property
    def params(self) -> int:
        return self._bytes("param")

    @property
    def buffers(self) -> int:
        return self._bytes("buffer")

    @property
    def total(self) -> int:
        return sum(n for n, _ in self._seen.values())


def _storage_key(t: torch.Tensor) -> tuple[tuple[str, Any], int]:
    """((device, storage address), storage bytes); a tensor without a storage counts by its own size."""
    try:
        storage = t.untyped_storage()
        return (str(t.device), storage.data_ptr()), storage.nbytes()
    except (RuntimeError, NotImplementedError):
        return ("id", id(t)), t.numel() * t.element_size()


def _unpack(t: torch.Tensor) -> torch.Tensor:
    return t


@dataclass
class CudaPeak(contextlib.AbstractContextManager):
    """``torch.cuda.max_memory_allocated`` over a block: ``peak`` (bytes) and ``growth`` above the start."""

    device: torch.device
    before: int = 0
    peak: int = 0

    def __enter__(self) -> CudaPeak:
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        self.before = torch.cuda.memory_allocated(self.device)
        return self

    def __exit__(self, *exc) -> None:
        torch.cuda.synchronize(self.device)
        self.peak = torch.cuda.max_memory_allocated(self.device)

    @property
    def growth(self) -> int:
        return self.peak - self.before
