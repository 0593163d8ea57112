"""``main``: settings -> every model's interleaved rounds -> the memory check -> JSON + markdown."""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import sys
import time
from pathlib import Path
from typing import Any

import torch

import benchmarks.throughput as package
from resnetlib import data as datasets
from resnetlib.devices import cpu_features

from .interleave import bench_model
from .memory import measure_memory
from .report import render, run_notes
from .settings import LR, MOMENTUM, WEIGHT_DECAY, Settings, parse_args, resolve_settings
from .timing import loadavg


def main(argv: list[str] | None = None) -> dict[str, Any]:
    a = parse_args(argv, package.__doc__.split("\n\n")[0])
    s = resolve_settings(a)
    configure_torch(s)
    started = time.time()
    meta = describe_run(s, argv)
    print(f"train_throughput: {meta['device_name']}, {meta['threads']} threads, batch {s.batch}, "
          f"amp {s.amp}, models {', '.join(s.models)}, {s.rounds} rounds", flush=True)
    data = datasets.load("synthetic", train_size=s.train_size, test_size=1, seed=0)
    throughput = {name: bench_model(s, name, data) for name in s.models}
    memory = None if a.skip_memory else measure_memory(s, a)
    meta["loadavg_end"] = loadavg()
    meta["elapsed_s"] = round(time.time() - started, 1)
    meta["notes"] = run_notes(s, meta)
    return write_results(Path(a.out), f"train_throughput-{file_tag(s, a.tag)}", meta, throughput, memory)


def configure_torch(s: Settings) -> None:
    if s.threads:
        torch.set_num_threads(s.threads)
    if s.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def describe_run(s: Settings, argv: list[str] | None) -> dict[str, Any]:
    return {
        "host": socket.gethostname(), "device": str(s.device), "device_name": device_label(s.device),
        "cpu_count": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
        "threads": torch.get_num_threads(), "workers": s.workers, "batch": s.batch, "amp": s.amp,
        "warmup": s.warmup, "iters": s.iters, "rounds": s.rounds, "train_size": s.train_size,
        "compile": s.compile, "channels_last": s.channels_last,
        "conventional_channels_last": s.conventional_channels_last, "quick": s.quick,
        "argv": sys.argv[1:] if argv is None else list(argv),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "loadavg_start": loadavg(),
        "optimizer": f"SGD lr {LR}, momentum {MOMENTUM}, weight decay {WEIGHT_DECAY}",
        "cpu": cpu_features(), "isa_limits": isa_limits(),
    }


#: Environment variables that cap the instruction set torch uses (ATen's kernels, oneDNN's convolutions):
#: with both at AVX2 an AVX512 machine runs the kernels of an AVX2-only one (an emulation, said so).
ISA_LIMIT_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")


def isa_limits() -> dict[str, str]:
    """The instruction-set caps set in the environment (empty: the CPU's own best)."""
    return {k: os.environ[k] for k in ISA_LIMIT_VARIABLES if os.environ.get(k)}


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} logical cores"


def file_tag(s: Settings, tag: str | None) -> str:
    if tag is None:
        tag = torch.cuda.get_device_name(s.device) if s.device.type == "cuda" else socket.gethostname()
        if s.amp != "off":
            tag += f"-{s.amp}"
        if s.quick:
            tag += "-quick"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", tag).strip("-") or "unknown"


def write_results(out: Path, stem: str, meta: dict[str, Any], throughput: dict[str, Any],
                  memory: dict[str, Any] | None) -> dict[str, Any]:
    """``<stem>.json`` (everything) and ``<stem>.md`` (the table) under ``out``; prints the table."""
    table = render(meta, throughput, memory)
    out.mkdir(parents=True, exist_ok=True)
    result = {"meta": meta, "throughput": throughput, "memory": memory, "table_markdown": table}
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2))
    (out / f"{stem}.md").write_text(table)
    print()
    print(table)
    print(f"wrote {out / (stem + '.json')} and {out / (stem + '.md')}")
    result["paths"] = {"json": str(out / f"{stem}.json"), "markdown": str(out / f"{stem}.md")}
    return result
