"""(1) bare: forward / backward / SGD step on one device-resident random batch, and the step itself,
shared with (3) conventional: resnetlib's loop step (loss in fp32, fp16 through a GradScaler)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from resnetlib import models
from resnetlib.devices import autocast

from .settings import LR, MOMENTUM, WEIGHT_DECAY, Settings
from .timing import Timing, num_threads, timed_steps


def new_model(s: Settings, name: str, channels_last: bool) -> nn.Module:
    model = models.build(name).to(s.device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    return torch.compile(model) if s.compile else model


def new_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)


def random_batch(n: int, device: torch.device, channels_last: bool, generator: torch.Generator | None = None):
    """``n`` random 3x32x32 CIFAR-shaped inputs and labels on ``device``."""
    if generator is None:
        x, y = torch.randn(n, 3, 32, 32, device=device), torch.randint(0, 10, (n,), device=device)
    else:
        x = torch.randn(n, 3, 32, 32, generator=generator).to(device)
        y = torch.randint(0, 10, (n,), generator=generator).to(device)
    return (x.contiguous(memory_format=torch.channels_last) if channels_last else x), y


class Trainer:
    """Model + SGD + one forward/backward/step, as resnetlib's loop does it (loss in fp32, fp16 scaler)."""

    def __init__(self, s: Settings, name: str, amp: str, channels_last: bool) -> None:
        self.s, self.amp = s, amp
        self.model = new_model(s, name, channels_last)
        self.optimizer = new_optimizer(self.model)
        self.autocast = autocast(amp, s.device, cache_enabled=True)
        self.scaler = torch.amp.GradScaler(s.device.type) if amp == "fp16" else None

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        with self.autocast():
            loss = F.cross_entropy(self.model(x).float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()


class Runner:
    """One comparison method (bare, conventional, ...) that runs ``n`` more steps whenever asked."""

    threads: int | None = None

    def __init__(self, s: Settings) -> None:
        self.s = s

    def step(self) -> None:
        raise NotImplementedError

    def run(self, n: int) -> Timing:
        threads = self.threads or self.s.threads
        with num_threads(threads):
            return timed_steps(self.s.device, self.s.batch, n, self.step, threads)

    def close(self) -> None:
        pass


class BareRunner(Runner):
    """(1) forward/backward/SGD on one device-resident random batch."""

    def __init__(self, s: Settings, name: str) -> None:
        super().__init__(s)
        self.trainer = Trainer(s, name, s.amp, s.channels_last)
        self.x, self.y = random_batch(s.batch, s.device, s.channels_last, torch.Generator().manual_seed(0))

    def step(self) -> None:
        self.trainer.step(self.x, self.y)


class CudaGraphRunner(Runner):
    """(1') the bare step captured whole in a CUDA graph and replayed (PyTorch's "whole network capture":
    warm up on a side stream, capture forward + backward + SGD step once, replay on the same batch)."""

    def __init__(self, s: Settings, name: str) -> None:
        super().__init__(s)
        if s.amp == "fp16":
            raise RuntimeError("whole-step capture with the fp16 GradScaler is not supported here")
        model = models.build(name).to(s.device).to(memory_format=torch.channels_last).train()
        opt = new_optimizer(model)
        ac = autocast(s.amp, s.device, cache_enabled=False)
        x, y = random_batch(s.batch, s.device, channels_last=True)

        def step() -> None:
            with ac():
                loss = F.cross_entropy(model(x).float(), y)
            loss.backward()
            opt.step()

        self.graph = _capture(step, opt)
        self._keep = (model, opt, x, y)

    def step(self) -> None:
        self.graph.replay()


def _capture(step, opt: torch.optim.Optimizer) -> torch.cuda.CUDAGraph:
    """Three warm-up steps on a side stream, then one step captured into a graph."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        step()
    return graph
