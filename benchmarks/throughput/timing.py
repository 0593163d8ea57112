"""Clocks of the benchmark: synchronised wall time, the process's CPU share, the machine's load."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def num_threads(n: int | None):
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


@dataclass
class Timing:
    img_s: float
    seconds: float
    cpu_share: float | None  # process CPU time / (wall x threads); < 1 means other work held the cores
    extra: dict[str, Any] = field(default_factory=dict)


class CpuClock:
    """Wall time and this process's CPU time (all threads) over a block."""

    def __init__(self, threads: int | None) -> None:
        self.threads = threads or torch.get_num_threads()

    def __enter__(self) -> CpuClock:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0

    @property
    def share(self) -> float:
        return cpu_share(self.cpu, self.wall, self.threads)


def cpu_share(cpu_seconds: float, wall_seconds: float, threads: int) -> float:
    """Process CPU time / (wall time x threads): 1.0 when the timed code had all its cores."""
    return round(cpu_seconds / max(wall_seconds * threads, 1e-9), 3)


def timed_steps(device: torch.device, batch: int, n: int, one_step: Callable[[], None],
                threads: int | None) -> Timing:
    """``n`` steps, synchronised at both ends; images/s, seconds and the CPU share."""
    sync(device)
    with CpuClock(threads) as clock:
        for _ in range(n):
            one_step()
        sync(device)
    return Timing(n * batch / clock.wall, clock.wall, clock.share)
