"""The benchmark's command line and the settings resolved from it (defaults differ for --quick and CUDA)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from resnetlib.devices import resolve_device

RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"
DEFAULT_MODELS = "cifar_resnet20,cifar_resnet56,cifar_resnet110"
QUICK_MODELS = "cifar_resnet20"
LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 1e-4  # the same optimiser in all three measurements


@dataclass
class Settings:
    models: list[str]
    device: torch.device
    amp: str
    batch: int
    iters: int | None  # None: chosen from the first warm-up steps (--seconds per measurement)
    warmup: int
    rounds: int
    seconds: float
    threads: int | None
    workers: int
    worker_variant: bool
    train_size: int
    compile: bool
    cuda_graphs: bool
    channels_last: bool  # (1) bare and (2) ours
    conventional_channels_last: bool  # (3): users' pipelines usually run NCHW
    quick: bool


def parse_args(argv: list[str] | None, description: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    _measurement_options(p)
    _pipeline_options(p)
    _memory_and_output_options(p)
    return p.parse_args(argv)


def _measurement_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", default=None, help=f"comma-separated model names (default {DEFAULT_MODELS}; "
                   f"--quick: {QUICK_MODELS})")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--iters", type=int, default=None,
                   help="timed steps per method and round, also fit's eval_every (default: sized from the "
                        "bare warm-up so that one chunk lasts about --seconds)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps of each comparison method before "
                   "the rounds (default 2; --quick 1); fit's warm-up is its first interval of --iters steps")
    p.add_argument("--rounds", type=int, default=None,
                   help="interleaved rounds per model (default 3; --quick 1)")
    p.add_argument("--seconds", type=float, default=10.0, help="target length of one timed chunk when "
                   "--iters is not given")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default 2 on CPU, "
                   "torch's default on CUDA)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--amp", choices=["off", "bf16", "fp16"], default=None,
                   help="autocast dtype (default: off on CPU, bf16 on CUDA)")
    p.add_argument("--quick", action="store_true", help="a short run: 1 round, 1 warm-up + 2 timed steps, "
                   "small data, ResNet-20 only, memory at batch 2")


def _pipeline_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers of the conventional "
                   "pipeline (default 0 on CPU, min(8, cores) on CUDA)")
    p.add_argument("--worker-variant", action="store_true",
                   help="CPU: also measure the conventional pipeline with 1 loader worker + 1 compute thread")
    p.add_argument("--train-size", type=int, default=None, help="synthetic training images (default 10000; "
                   "--quick 512)")
    p.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto",
                   help="NHWC model and inputs in (1) bare and (2) ours (auto: the loop's default, on)")
    p.add_argument("--conventional-channels-last", action="store_true",
                   help="NHWC in (3) too (default off: the conventional pipeline as users write it, NCHW)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model in every measurement")
    p.add_argument("--cuda-graphs", action="store_true", help="CUDA: also measure the bare step captured in "
                   "a CUDA graph (whole-step capture)")


def _memory_and_output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--skip-memory", action="store_true",
                   help="skip the activation-checkpointing memory check")
    p.add_argument("--mem-model", default="cifar_resnet1202")
    p.add_argument("--mem-batch", type=int, default=None, help="batch of the memory check (default: --batch "
                   "on CUDA, 8 on CPU where a ResNet-1202 step at batch 128 takes minutes; --quick 2)")
    p.add_argument("--mem-timeout", type=float, default=1800.0, help="seconds allowed per memory subprocess")
    p.add_argument("--out", default=str(RESULTS_DIR), help="folder for the JSON and markdown results")
    p.add_argument("--tag", default=None, help="file name tag (default: host name on CPU, GPU name on CUDA, "
                   "plus -<amp> and -quick)")


def resolve_settings(a: argparse.Namespace) -> Settings:
    device = _device(a.device)
    amp = a.amp or ("bf16" if device.type == "cuda" else "off")
    if amp == "fp16" and device.type != "cuda":
        raise SystemExit("--amp fp16 needs CUDA; use --amp bf16 on CPU")
    s = Settings(
        models=_model_names(a.models or (QUICK_MODELS if a.quick else DEFAULT_MODELS)),
        device=device, amp=amp, batch=a.batch,
        iters=_default(a.iters, 2 if a.quick else None), warmup=_default(a.warmup, 1 if a.quick else 2),
        rounds=_default(a.rounds, 1 if a.quick else 3), seconds=a.seconds,
        threads=_default(a.threads, 2 if device.type == "cpu" else None),
        workers=_default(a.workers, 0 if device.type == "cpu" else min(8, os.cpu_count() or 1)),
        worker_variant=a.worker_variant and device.type == "cpu",
        train_size=_default(a.train_size, 512 if a.quick else 10_000), compile=a.compile,
        cuda_graphs=a.cuda_graphs and device.type == "cuda",
        channels_last=a.channels_last != "off", conventional_channels_last=a.conventional_channels_last,
        quick=a.quick,
    )
    _check(s)
    return s


def _device(name: str) -> torch.device:
    try:
        return resolve_device(name)
    except RuntimeError as exc:
        raise SystemExit(f"--device {name}: {exc}") from None


def _model_names(text: str) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def _default(value, default):
    return default if value is None else value


def _check(s: Settings) -> None:
    for name, value in (("batch", s.batch), ("warmup", s.warmup), ("rounds", s.rounds)):
        if value < 1:
            raise SystemExit(f"--{name} must be >= 1")
    if s.iters is not None and s.iters < 1:
        raise SystemExit("--iters must be >= 1")
    if s.train_size < s.batch:
        raise SystemExit(f"--train-size {s.train_size} is smaller than --batch {s.batch}")
