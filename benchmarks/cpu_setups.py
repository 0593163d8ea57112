"""Which CPU training setup is fastest on this machine? (issue 10, part 1)

Training images/s of the CIFAR-style ResNets (Sec. 4.2) at batch 128, for every candidate setup, measured
side by side in one run: the candidates take turns in ``--rounds`` rounds of ``--steps`` steps each (the
order rotating), so a slow spell of a shared machine hits them all; the table gives the median images/s
and the median of the per-round ratios to the fp32 NCHW baseline.

Candidates (one resident random batch, the bare forward/backward/SGD step; ``train_throughput.py``
measures our loop and the conventional pipeline against this step):

- precision and layout: fp32 NCHW (baseline), fp32 channels_last, bf16 autocast NCHW / channels_last
  (only where the CPU has bf16 instructions, ``resnetlib.devices.BF16_CPU_FLAGS``; elsewhere bf16 runs
  ~9x slower and is skipped unless ``--force-bf16``);
- ``torch.compile`` (inductor) of the model, fp32 and bf16 channels_last (``--compile``; its compile time
  is reported apart and not counted);
- threads: one process with 2 threads vs two processes with 1 thread each training at once (their
  images/s summed): a run queue of two nets (``reproduce --jobs 2``) against one net on both cores.

Every result records the CPU model, torch's kernel level and the bf16/AVX flags. Run it alone: another
CPU-heavy process on the machine distorts every number (the load average is recorded).

    .venv/bin/python benchmarks/cpu_setups.py                 # ~6 min on 2 cores
    .venv/bin/python benchmarks/cpu_setups.py --compile       # + torch.compile (a few more minutes)
    .venv/bin/python benchmarks/cpu_setups.py --quick         # seconds, for the tests
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from resnetlib import models
from resnetlib.devices import BF16_CPU_FLAGS, cpu_features

RESULTS = Path(__file__).resolve().parent / "results"
#: How long the multi-process setup waits for its workers before giving up (seconds).
BARRIER_TIMEOUT_S = 600
#: (channels, side) of the inputs: Fashion-MNIST (the cpu profiles) and CIFAR-10 (the paper).
INPUTS = {"1x28x28": (1, 28), "3x32x32": (3, 32)}


@dataclass(frozen=True)
class Setup:
    name: str
    amp: bool
    channels_last: bool
    compile: bool = False
    processes: int = 1  # 2: two processes with threads // 2 each, images/s summed


def candidates(bf16: bool, compile_: bool) -> list[Setup]:
    out = [Setup("fp32 NCHW", False, False), Setup("fp32 channels_last", False, True)]
    if bf16:
        out += [Setup("bf16 NCHW", True, False), Setup("bf16 channels_last", True, True)]
    if compile_:
        out += [Setup("compiled fp32 channels_last", False, True, compile=True)]
        if bf16:
            out += [Setup("compiled bf16 channels_last", True, True, compile=True)]
    best = out[-1] if not compile_ else out[3 if bf16 else 1]
    out += [Setup(f"2 processes x 1 thread, {best.name}", best.amp, best.channels_last, processes=2)]
    return out


class Stepper:
    """One model, optimizer and resident batch; ``run(n)`` times ``n`` training steps."""

    def __init__(self, model: str, shape: tuple[int, int], setup: Setup, batch: int) -> None:
        channels, side = shape
        fmt = torch.channels_last if setup.channels_last else torch.contiguous_format
        net = models.build(model, num_classes=10, in_channels=channels).to(memory_format=fmt)
        self.compile_s = 0.0
        self.optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
        self.net = torch.compile(net) if setup.compile else net
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(batch, channels, side, side, generator=g).contiguous(memory_format=fmt)
        self.y = torch.randint(0, 10, (batch,), generator=g)
        self.amp, self.batch = setup.amp, batch
        if setup.compile:
            start = time.perf_counter()
            self.run(2)
            self.compile_s = time.perf_counter() - start

    def step(self) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.amp):
            loss = F.cross_entropy(self.net(self.x).float(), self.y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def run(self, n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            self.step()
        return self.batch * n / (time.perf_counter() - start)


def _worker(model, shape, setup, batch, threads, steps, rounds, warmup, start_barrier, round_barrier, queue):
    """One of the processes of a multi-process setup: every round starts at a barrier with the others."""
    torch.set_num_threads(threads)
    stepper = Stepper(model, shape, setup, batch)
    stepper.run(warmup)
    start_barrier.wait()
    for _ in range(rounds):
        round_barrier.wait()
        queue.put(stepper.run(steps))


class ProcessGroup:
    """``setup.processes`` spawned workers training at once; ``run`` returns their summed images/s."""

    def __init__(self, model, shape, setup, batch, threads, steps, rounds, warmup) -> None:
        ctx = multiprocessing.get_context("spawn")
        n = setup.processes
        # a worker that dies (e.g. it cannot import this script) breaks the barriers instead of hanging them
        self.start_barrier = ctx.Barrier(n + 1, timeout=BARRIER_TIMEOUT_S)
        self.round_barrier = ctx.Barrier(n + 1, timeout=BARRIER_TIMEOUT_S)
        self.queue = ctx.Queue()
        per = max(1, threads // n)
        self.procs = [ctx.Process(target=_worker, args=(model, shape, setup, batch, per, steps, rounds, warmup,
                                                        self.start_barrier, self.round_barrier, self.queue))
                      for _ in range(n)]
        for p in self.procs:
            p.start()
        self.start_barrier.wait()
        self.compile_s = 0.0

    def run(self, _n: int) -> float:
        self.round_barrier.wait()
        return sum(self.queue.get(timeout=BARRIER_TIMEOUT_S) for _ in self.procs)

    def close(self) -> None:
        for p in self.procs:
            p.join(timeout=60)


def bench(model: str, shape: tuple[int, int], setups: list[Setup], a: argparse.Namespace) -> list[dict[str, Any]]:
    """Interleaved rounds over ``setups``; one row per setup: median images/s and ratio to the first."""
    torch.set_num_threads(a.threads)
    runners = {}
    for s in setups:
        if s.processes > 1:
            runners[s] = ProcessGroup(model, shape, s, a.batch, a.threads, a.steps, a.rounds, a.warmup)
        else:
            runners[s] = Stepper(model, shape, s, a.batch)
            runners[s].run(a.warmup)
    speeds: dict[Setup, list[float]] = {s: [] for s in setups}
    for r in range(a.rounds):
        order = setups[r % len(setups):] + setups[: r % len(setups)]
        for s in order:
            speeds[s].append(runners[s].run(a.steps))
    for runner in runners.values():
        getattr(runner, "close", lambda: None)()
    base = speeds[setups[0]]
    return [{"model": model, "input": f"{shape[0]}x{shape[1]}x{shape[1]}", "setup": s.name,
             "images_per_s": round(statistics.median(speeds[s]), 1),
             "ratio_to_fp32_nchw": round(statistics.median(v / b for v, b in zip(speeds[s], base)), 3),
             "compile_s": round(runners[s].compile_s, 1), "rounds": a.rounds, "steps": a.steps}
            for s in setups]


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    cpu = meta["cpu"]
    lines = [
        f"# CPU training setups: {cpu['model']} ({', '.join(cpu['flags']) or 'no AVX flags'}; torch kernels "
        f"{cpu['capability']})", "",
        f"images/s of the bare training step, batch {meta['batch']}, {meta['threads']} threads in all, median of "
        f"{meta['rounds']} interleaved rounds of {meta['steps']} steps; torch {meta['torch']}, {meta['date']}. "
        f"Load average (1 min) at start {meta['load_start']}, at end {meta['load_end']}.", "",
        "| model | input | setup | images/s | x fp32 NCHW | compile s |", "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['input']} | {r['setup']} | {r['images_per_s']:.0f} | "
                     f"{r['ratio_to_fp32_nchw']:.2f} | {r['compile_s'] or ''} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["cifar_resnet20", "cifar_resnet56"])
    p.add_argument("--inputs", nargs="+", default=list(INPUTS), choices=list(INPUTS))
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--compile", action="store_true", help="also torch.compile (inductor) the model")
    p.add_argument("--force-bf16", action="store_true", help="measure bf16 even without bf16 instructions")
    p.add_argument("--quick", action="store_true", help="seconds: ResNet-20, 1x28x28, batch 16, 1 step x 2 rounds")
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args(argv)
    if a.quick:
        a.models, a.inputs, a.batch, a.steps, a.rounds, a.warmup = ["cifar_resnet20"], ["1x28x28"], 16, 1, 2, 1
    cpu = cpu_features()
    bf16 = a.force_bf16 or any(f in cpu["flags"] for f in BF16_CPU_FLAGS)
    meta = {"cpu": cpu, "torch": torch.__version__, "host": platform.node(), "batch": a.batch,
            "threads": a.threads, "steps": a.steps, "rounds": a.rounds, "bf16_measured": bf16,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "load_start": _load()}
    rows = []
    for model in a.models:
        for name in a.inputs:
            rows += bench(model, INPUTS[name], candidates(bf16, a.compile), a)
            print(markdown(rows[-len(candidates(bf16, a.compile)):], {**meta, "load_end": _load()}), flush=True)
    meta["load_end"] = _load()
    a.out.mkdir(parents=True, exist_ok=True)
    stem = "cpu_setups-" + _slug(cpu["model"]) + ("-quick" if a.quick else "")
    (a.out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    (a.out / f"{stem}.md").write_text(markdown(rows, meta))
    print(f"wrote {a.out / stem}.json and .md")
    return {"meta": meta, "rows": rows}


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_").lower()[:40]


if __name__ == "__main__":
    main()
