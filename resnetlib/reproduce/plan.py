"""``reproduce --plan``: what a profile would train, how much of it is cached, and how long it would take here.

Per experiment: the runs it declares (``Experiment.planned_runs``: net, seeds, iterations, data set), how
many are already in the run cache, an estimated training time and the disk its checkpoints take. The time
comes from this machine: each distinct input size is timed for well under a second on its cheapest net
(a few training steps of a small batch, the profile's precision and memory format), which gives the
machine's rate in multiply-adds per second at that size; every net is then estimated from its own
multiply-adds (counted on the meta device, no weights allocated). Evaluations are counted as forward
passes over the test images (ten per image with 10-crop). A profile that asks for CUDA on a machine without
it is estimated for this machine's CPU, and the plan says so. The same plan heads the log of a real run.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .profile import Profile

__all__ = ["Plan", "make_plan", "plan_text"]

#: Native image shapes of the data sets on the device (channels, side).
NATIVE = {"cifar10": (3, 32), "fashion_mnist": (1, 28), "synthetic": (3, 32)}
#: Classes of each data set (the width of the net's last layer).
CLASSES = {"cifar10": 10, "fashion_mnist": 10, "synthetic": 10, "imagefolder": 1000}
#: Test images when ``test_size`` is not given.
TEST_IMAGES = {"cifar10": 10_000, "fashion_mnist": 10_000, "synthetic": 128, "imagefolder": 50_000}
#: Seconds of timing per input size (after one warm-up step).
TIMING_SECONDS = 0.4
#: Image side from which multiply-adds are counted on the meta device (see ``_macs_and_params``).
META_FROM_SIDE = 128
#: Bytes per parameter on disk: last.pt and previous-last.pt, each weights + SGD momentum in fp32.
CHECKPOINT_BYTES_PER_PARAM = 2 * 2 * 4


@dataclasses.dataclass(frozen=True)
class PlannedRun:
    """One run of the plan: its configuration, where it is cached, and whether it already is."""

    experiment: str
    config: Any
    run_dir: Path
    cached: bool
    test_images: int  # images of one evaluation (an exported stand-in's configuration no longer says)

    def shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of a training image."""
        data = self.config.data
        if data.name == "imagefolder":
            return 3, data.crop, data.crop
        channels, side = NATIVE.get(data.name, (3, 32))
        return channels, data.image_size or side, data.image_size or side

    def net(self) -> str:
        options = self.config.model.model_dump(exclude_defaults=True, exclude={"name"})
        return self.config.model.name + "".join(f" {k}={v}" for k, v in options.items())


@dataclasses.dataclass
class Plan:
    """A profile's runs, each distinct run once (experiments share run-cache entries), and the estimate."""

    profile: Profile
    runs: list[PlannedRun]
    seconds: dict[Path, float]  # estimated training seconds of each run folder
    disk: dict[Path, int]  # checkpoint bytes of each run folder
    device_note: str
    timing_note: str
    device_type: str  # where the estimate was timed: cpu or cuda
    not_planned: list[str]  # experiments that train inside their notebooks (not estimated)
    unlisted: dict[str, str]  # experiments whose runs could not be listed, and why (missing data)


def _macs_and_params(config: Any, shape: tuple[int, int, int]) -> tuple[float, int]:
    """Multiply-adds of one forward pass of one image through ``config``'s convolutions and linear layers
    (output elements x inputs per output, from forward hooks during one no-grad pass of one image), and the
    net's parameters. Large images go through the meta device (no weights, no arithmetic); small ones
    through the CPU, which builds a 1202-layer net faster than the meta device's dispatch does."""
    import torch

    from .. import models

    classes = CLASSES.get(config.data.name, 10)
    device = torch.device("meta" if shape[1] >= META_FROM_SIDE else "cpu")
    with device:
        net = models.build(config.model.name, **config.model.build_options(classes, shape[0])).eval()
    macs = [0]

    def count(module: torch.nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        per_output = module.weight[0].numel()  # in_channels/groups x kernel area, or in_features
        macs[0] += output.numel() * per_output

    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d | torch.nn.Linear):
            module.register_forward_hook(count)
    with torch.no_grad():
        net(torch.zeros(1, *shape, device=device))
    return float(macs[0]), sum(p.numel() for p in net.parameters())


def _time_net(config: Any, shape: tuple[int, int, int], device: Any) -> float:
    """Training images/s of ``config``'s net at ``shape`` on ``device``: a warm-up step, then steps for
    ``TIMING_SECONDS`` (small batches: a rate, not the full batch's memory)."""
    import torch

    from .. import models
    from ..devices import autocast

    batch = min(config.optim.batch_size, 64 if device.type == "cuda" else (16 if shape[1] <= 64 else 2))
    net = models.build(config.model.name, **config.model.build_options(CLASSES.get(config.data.name, 10), shape[0]))
    fmt = torch.channels_last if config.channels_last else torch.contiguous_format
    net = net.to(device, memory_format=fmt).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, *shape, device=device).to(memory_format=fmt)
    y = torch.randint(0, CLASSES.get(config.data.name, 10), (batch,), device=device)
    cast = autocast(config.amp, device)

    def step() -> None:
        with cast():
            loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    steps, start = 0, time.perf_counter()
    while steps < 2 or time.perf_counter() - start < TIMING_SECONDS:
        step()
        steps += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def _threads() -> str:
    import torch

    n = torch.get_num_threads()
    return f"{n} thread{'s' if n != 1 else ''}"


def _device(runs: list[PlannedRun]) -> tuple[Any, str]:
    """The device to time on, and a note: the runs' device, or this machine's CPU where it lacks it."""
    import torch

    wanted = {str(r.config.device) for r in runs} or {"auto"}
    if any(w.startswith("cuda") for w in wanted) and not torch.cuda.is_available():
        return torch.device("cpu"), ("the params ask for CUDA, which this machine lacks: estimated for this "
                                     f"machine's CPU ({_threads()})")
    if any(w.startswith("cuda") or w == "auto" for w in wanted) and torch.cuda.is_available():
        return torch.device("cuda"), f"estimated for {torch.cuda.get_device_name()}"
    return torch.device("cpu"), f"estimated for this machine's CPU ({_threads()})"


def _estimate(runs: list[PlannedRun], timer: Callable[[Any, tuple, Any], float]
              ) -> tuple[dict[Path, float], dict[Path, int], str, str, str]:
    """Seconds and checkpoint bytes per run folder; the device timed on, its note and what was timed."""
    device, device_note = _device(runs)
    nets: dict[tuple, tuple[float, int]] = {}  # (net, shape, classes) -> (multiply-adds, parameters)
    for r in runs:
        key = (r.net(), r.shape(), r.config.data.name)
        if key not in nets:
            nets[key] = _macs_and_params(r.config, r.shape())
    counted = {r.run_dir: (r, *nets[(r.net(), r.shape(), r.config.data.name)]) for r in runs}
    rate: dict[tuple, float] = {}  # multiply-adds per second of training at each (shape, amp, format)
    timed = []
    for run, macs, _ in sorted(counted.values(), key=lambda t: t[1]):
        key = (run.shape(), run.config.amp, run.config.channels_last)
        if key not in rate:
            rate[key] = timer(run.config, run.shape(), device) * macs
            timed.append(f"{run.config.model.name} at {run.shape()[1]} px")
    seconds, disk = {}, {}
    for run_dir, (run, macs, params) in counted.items():
        c, d = run.config, run.config.data
        per_image = macs / rate[(run.shape(), c.amp, c.channels_last)]
        evals = c.optim.iterations // max(1, c.eval_every) + 1
        test = run.test_images * (10 if getattr(d, "ten_crop", False) else 1)
        seconds[run_dir] = per_image * (c.optim.iterations * c.optim.batch_size + evals * test / 3)
        disk[run_dir] = params * CHECKPOINT_BYTES_PER_PARAM
    note = f"timed {', '.join(timed)} for {TIMING_SECONDS:g} s each; other nets scaled by their multiply-adds"
    return seconds, disk, device.type, device_note, note


def _run_dir(config: Any, runs_dir: Path) -> Path:
    """The run's folder in the cache; for a device this machine lacks (CUDA params on a CPU) the cache key
    cannot be computed here, so a stand-in name by the configuration's hash (never cached)."""
    import hashlib

    from ..train.runs import run_dir_for

    try:
        return run_dir_for(config, runs_dir)
    except RuntimeError:
        digest = hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:12]
        return runs_dir / f"{config.model.name}-s{config.seed}-not-on-this-machine-{digest}"


def _test_images(config: Any, params: Any) -> int:
    """Images of one evaluation: the run's ``test_size``, else the experiment's (class folders exported
    from a stand-in hold exactly that many, and the run's configuration then says None), else the whole
    test set."""
    train = getattr(params, "train", None)
    data = train.get("data", {}) if isinstance(train, dict) else {}
    given = getattr(config.data, "test_size", None) or (data.get("test_size") if isinstance(data, dict) else None)
    return int(given or TEST_IMAGES.get(config.data.name, 10_000))


def make_plan(profile: Profile, timer: Callable[[Any, tuple, Any], float] = _time_net) -> Plan:
    """The plan of a loaded profile: its declared runs (each distinct run folder once), cached or not,
    with the estimate (``timer``: images/s of a config at a shape on a device; tests pass a fake)."""
    from .queue import planned_runs

    unlisted: dict[str, str] = {}
    planned = planned_runs(profile, unlisted)
    runs, seen = [], set()
    for name, pairs in planned.items():
        for runs_dir, config in pairs:
            run_dir = _run_dir(config, Path(runs_dir))
            if run_dir not in seen:
                seen.add(run_dir)
                runs.append(PlannedRun(name, config, run_dir, (run_dir / "summary.json").is_file(),
                                       _test_images(config, profile.params[name])))
    seconds, disk, device_type, device_note, timing_note = (
        _estimate(runs, timer) if runs else ({}, {}, "cpu", "", ""))
    return Plan(profile, runs, seconds, disk, device_note, timing_note, device_type,
                [n for n in profile.params if n not in planned and n not in unlisted], unlisted)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _size(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _groups(runs: list[PlannedRun]) -> dict[tuple, list[PlannedRun]]:
    """Runs of one experiment grouped by (net, iterations, batch, data set): one line per group."""
    groups: dict[tuple, list[PlannedRun]] = {}
    for r in runs:
        c = r.config
        groups.setdefault((r.net(), c.optim.iterations, c.optim.batch_size, c.data.name, r.shape()[1]), []).append(r)
    return groups


def _experiment_lines(plan: Plan, name: str) -> list[str]:
    """The plan of one experiment: its data, then one line per group of runs."""
    params = plan.profile.params[name]
    key = plan.profile.experiments[name].data_set(params)
    data = f"{key} at {params.data_root or '(default search path)'}" if key else "no data set on disk"
    sets = plan.profile.overrides.get(name)
    head = f"{name}  [{data}]" + (f"  --set {' '.join(sets)}" if sets else "")
    if name in plan.not_planned:
        return [head, "  trains inside its notebook: not in the estimate"]
    if name in plan.unlisted:
        return [head, f"  runs not listed: {plan.unlisted[name]}"]
    mine = [r for r in plan.runs if r.experiment == name]
    shared = len(plan.profile.experiments[name].planned_runs(params)) - len(mine)
    lines = [head]
    for (net, iters, batch, data_name, px), group in _groups(mine).items():
        seeds = ",".join(str(r.config.seed) for r in group)
        cached = sum(r.cached for r in group)
        secs = sum(plan.seconds[r.run_dir] for r in group if not r.cached)
        lines.append(f"  {net:<28} seeds {seeds:<10} {iters:>7} it x {batch:<4} {data_name} {px}px  "
                     f"{cached}/{len(group)} cached  ~{_duration(secs)}")
    if shared:
        lines.append(f"  + {shared} run(s) shared with an experiment above (same run-cache entries)")
    return lines


def plan_text(plan: Plan, jobs: int = 1, jobs_note: str = "") -> str:
    """The plan as the log prints it: per experiment, then the totals and the data problems."""
    lines = [f"plan: profile '{plan.profile.name}', {len(plan.profile.params)} experiment(s)"
             + (f"; {plan.device_note}" if plan.device_note else "")]
    for name in plan.profile.params:
        lines += _experiment_lines(plan, name)
    todo = [r for r in plan.runs if not r.cached]
    total = sum(plan.seconds[r.run_dir] for r in todo)
    parallel = ""
    if jobs > 1 and plan.device_type == "cuda":
        parallel = f", ~{_duration(total / jobs)} with {jobs} jobs sharing the card ({jobs_note})"
    elif jobs > 1:
        parallel = f"; --jobs {jobs} ({jobs_note}) shares the same cores: a few % faster"
    lines.append(f"total: {len(plan.runs)} distinct run(s), {len(plan.runs) - len(todo)} cached; "
                 f"~{_duration(total)} of training one at a time{parallel}; checkpoints "
                 f"~{_size(sum(plan.disk.values()))}")
    if plan.timing_note:
        lines.append(f"  ({plan.timing_note})")
    if plan.profile.data_problems:
        lines += ["data (a run would stop here):", *(f"  {p}" for p in plan.profile.data_problems)]
    return "\n".join(lines)
