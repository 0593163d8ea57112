"""The prepared device check of issue 12: every CUDA path of the paper profile, in one run of < 8 minutes.

Sections (each runs even when an earlier one failed; each records its error instead of stopping):

1. ``gpu_tests``  the CUDA-marked tests (``pytest -m gpu``)
2. ``throughput`` the training-throughput benchmark (``benchmarks/throughput``) with bf16 autocast,
                  channels_last, ``torch.compile`` and CUDA graphs for ResNet-20/56/110 (Sec. 4.2's nets):
                  bare step vs our loop, images/s and the ratio
3. ``memory``     ResNet-1202 (Sec. 4.2, Table 6) peak memory of one batch-128 step, with and without
                  activation checkpointing (``resnetlib.analysis.memory.CudaPeak``)
4. ``schedule``   wall time of 2,000 iterations of the paper's schedule per net (batch 128, lr 0.1, steps
                  at 50%/75%, bf16; full Fashion-MNIST), extrapolated to the paper's 64k iterations
5. ``fault``      a CUDA training run killed with SIGKILL, resumed, and compared with an uninterrupted run
6. ``packing``    total images/s of N = 1, 2, 4, 8 ResNet-20 training processes sharing the card
                  (what ``resnetlib reproduce --jobs N`` does) against one alone

Everything lands in ``--out`` (``check.json`` with every number, ``check.md`` to read, the test log and
the benchmark's own files): at most 8 files, so the device tool brings all of them back.
``--device cpu --quick`` runs the same code on tiny settings in well under a minute (the CI test
``tests/benchmarks/test_device_check.py``), so the script cannot rot between GPU sessions.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))  # benchmarks.throughput and resnetlib from this checkout

#: The paper's 64k iterations (Sec. 4.2), for the extrapolation of section 4.
PAPER_ITERATIONS = 64_000


@dataclass(frozen=True)
class Plan:
    """What each section measures: the full check on CUDA, or the tiny ``--quick`` one."""

    device: str
    quick: bool
    data_root: str

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def amp(self) -> str:  # bf16 on CUDA (the paper profile's setting); fp32 on a CPU
        return "bf16" if self.cuda else "off"

    @property
    def nets(self) -> list[int]:  # CIFAR ResNet depths of sections 2 and 4
        return [8] if self.quick else [20, 56, 110]

    @property
    def batch(self) -> int:
        return 8 if self.quick else 128

    @property
    def schedule_iterations(self) -> int:
        return 4 if self.quick else 2000

    @property
    def packs(self) -> list[int]:
        return [1, 2] if self.quick else [1, 2, 4, 8]


# ----------------------------------------------------------------------------------------- 1. tests
def gpu_tests(plan: Plan, out: Path) -> dict[str, Any]:
    """``pytest -m gpu`` over the test files that hold CUDA-marked tests; the log goes to gpu-tests.txt."""
    files = sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "tests").rglob("test_*.py")
                   if "mark.gpu" in p.read_text())
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", *files]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180)
    (out / "gpu-tests.txt").write_text(proc.stdout + proc.stderr)
    lines = proc.stdout.strip().splitlines()
    return {"files": files, "exit_status": proc.returncode, "summary": lines[-1] if lines else ""}


# ----------------------------------------------------------------------------------------- 2. throughput
def _bench_argv(plan: Plan, out: Path) -> list[str]:
    """The benchmark's command line: every CUDA speed-up on the GPU; the tiny smoke run on a CPU."""
    models = ",".join(f"cifar_resnet{d}" for d in plan.nets)
    argv = ["--device", plan.device.split(":")[0], "--models", models, "--batch", str(plan.batch),
            "--skip-memory", "--out", str(out), "--tag", "device-check"]
    if plan.quick:
        return argv + ["--quick", "--iters", "2", "--warmup", "1", "--rounds", "1", "--train-size", "64",
                       "--threads", "1"]
    return argv + ["--amp", "bf16", "--channels-last", "on", "--compile", "--cuda-graphs", "--rounds", "2",
                   "--seconds", "4"]


def throughput(plan: Plan, out: Path) -> dict[str, Any]:
    """Bare step vs our loop (images/s, ratio) through the benchmark package itself."""
    from benchmarks.throughput.cli import main as bench_main

    result = bench_main(_bench_argv(plan, out))
    return {"argv": _bench_argv(plan, out), "throughput": result.get("throughput")}


# ----------------------------------------------------------------------------------------- 3. memory
def memory(plan: Plan, out: Path) -> dict[str, Any]:
    """ResNet-1202 peak memory of one step with and without activation checkpointing (fresh process each)."""
    from benchmarks.throughput.memory import measure_memory
    from benchmarks.throughput.settings import parse_args, resolve_settings

    model = "cifar_resnet20" if plan.quick else "cifar_resnet1202"
    args = parse_args(["--device", plan.device.split(":")[0], "--batch", str(plan.batch), "--mem-model", model,
                       "--mem-batch", str(2 if plan.quick else 128), "--mem-timeout", "240",
                       "--amp", plan.amp, *(["--quick", "--threads", "1"] if plan.quick else [])], "memory")
    return measure_memory(resolve_settings(args), args)


# ----------------------------------------------------------------------------------------- 4. schedule
def schedule_config(plan: Plan, depth: int):
    """The paper profile's training configuration of ResNet-``depth`` (params/cifar_degradation/paper.yaml)
    on Fashion-MNIST, stopped after ``schedule_iterations`` (lr steps at 50%/75% of those)."""
    from resnetlib.config import deep_merge, load_yaml
    from resnetlib.experiments import cifar_degradation
    from resnetlib.experiments.training import train_config

    paper = load_yaml(REPO_ROOT / "params" / "cifar_degradation" / "paper.yaml")
    data = {"name": "synthetic", "train_size": 256, "test_size": 32, "val_size": 0} if plan.quick else \
        {"name": "fashion_mnist", "train_size": None, "test_size": None, "val_size": 5000}
    optim = {"iterations": plan.schedule_iterations, "batch_size": plan.batch}
    train = deep_merge(paper["train"], {"data": data, "optim": optim, "amp": plan.amp,
                                        "eval_every": 2 if plan.quick else 1000})
    params = cifar_degradation.Params.model_validate(
        {"depths": [depth], "seeds": [0], "device": plan.device, "data_root": plan.data_root, "train": train})
    return train_config(params, f"cifar_resnet{depth}", 0).model_copy(update={"log": "none"})


def schedule(plan: Plan, out: Path) -> dict[str, Any]:
    """Wall time of the first iterations of the paper's schedule per net, and its 64k extrapolation."""
    from resnetlib.train.loop import fit

    rows = []
    for depth in plan.nets:
        config = schedule_config(plan, depth)
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            result = fit(config, Path(tmp) / "run")
            wall = time.perf_counter() - started
        n = config.optim.iterations
        rows.append({"net": f"ResNet-{depth}", "iterations": n, "wall_s": round(wall, 1),
                     "extrapolated_64k_h": round(wall * PAPER_ITERATIONS / n / 3600, 2),
                     "final_test_error": result.summary.get("final_test_error")})
    return {"data": "fashion_mnist" if not plan.quick else "synthetic", "rows": rows}


# ----------------------------------------------------------------------------------------- 5. fault
def _train_cmd(plan: Plan, run_dir: Path, resume: bool = False) -> list[str]:
    """``resnetlib train`` of a small deterministic run checkpointed often."""
    iters, batch = (40, 8) if plan.quick else (600, 128)
    sets = [f"model.name=cifar_resnet{8 if plan.quick else 20}", "data.name=synthetic", "data.train_size=512",
            "data.test_size=64", f"optim.batch_size={batch}", f"optim.iterations={iters}",
            f"optim.milestones=[{iters // 2}]", f"eval_every={iters // 4}", "checkpoint_every=4",
            "deterministic=true", "log=none", f"device={plan.device}", "threads=1"]
    cmd = [sys.executable, "-m", "resnetlib", "train", "--run-dir", str(run_dir)]
    return cmd + [arg for s in sets for arg in ("--set", s)] + (["--resume"] if resume else [])


def _kill_after_first_checkpoint(cmd: list[str], run_dir: Path, timeout: float = 120) -> bool:
    """Start the run, SIGKILL it once ``checkpoints/last.pt`` exists; True if it was killed mid-run."""
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if (run_dir / "checkpoints" / "last.pt").exists():
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    return proc.returncode == -signal.SIGKILL and not (run_dir / "summary.json").exists()


def _final_weights(run_dir: Path) -> dict:
    from resnetlib.train.checkpoint import load_checkpoint

    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]


def fault(plan: Plan, out: Path) -> dict[str, Any]:
    """Kill a run after its first checkpoint, resume it, compare its final weights with an unkilled run."""
    with tempfile.TemporaryDirectory() as tmp:
        killed, reference = Path(tmp) / "killed", Path(tmp) / "reference"
        was_killed = _kill_after_first_checkpoint(_train_cmd(plan, killed), killed)
        resumed = subprocess.run(_train_cmd(plan, killed, resume=True), cwd=REPO_ROOT, capture_output=True,
                                 text=True)
        subprocess.run(_train_cmd(plan, reference), cwd=REPO_ROOT, check=True, capture_output=True)
        a, b = _final_weights(killed), _final_weights(reference)
        diff = max(float((a[k].float() - b[k].float()).abs().max()) for k in a if a[k].is_floating_point())
    result = {"killed_mid_run": was_killed, "resume_exit_status": resumed.returncode,
              "resume_stderr": resumed.stderr.strip()[-500:], "max_abs_weight_difference": diff,
              "bit_identical": diff == 0.0}
    if not (was_killed and resumed.returncode == 0 and diff == 0.0):
        raise RuntimeError(f"kill-and-resume check failed: {result}")  # the section is then marked failed
    return result


# ----------------------------------------------------------------------------------------- 6. packing
def _pack_worker(spec: dict[str, Any], barrier, results) -> None:
    """One of N processes: warm up the bare ResNet-20 step, wait for the others, then time it."""
    import torch

    from benchmarks.throughput.bare_step import BareRunner
    from benchmarks.throughput.settings import parse_args, resolve_settings
    from benchmarks.throughput.timing import sync

    torch.set_num_threads(1)
    s = resolve_settings(parse_args(spec["argv"], "packing"))
    runner = BareRunner(s, spec["model"])
    for _ in range(spec["warmup"]):
        runner.step()
    sync(s.device)
    barrier.wait()
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < spec["seconds"]:
        for _ in range(spec["chunk"]):
            runner.step()
        steps += spec["chunk"]
        sync(s.device)
    results.put(steps * s.batch / (time.perf_counter() - started))


def _pack(plan: Plan, n: int) -> list[float]:
    """Images/s of each of ``n`` processes training at once on one device."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(n), ctx.Queue()
    spec = {"model": f"cifar_resnet{plan.nets[0]}", "warmup": 2 if plan.quick else 30,
            "seconds": 0.5 if plan.quick else 5.0, "chunk": 1 if plan.quick else 20,
            "argv": ["--device", plan.device.split(":")[0], "--batch", str(plan.batch), "--amp", plan.amp,
                     "--threads", "1", *(["--quick"] if plan.quick else ["--channels-last", "on"])]}
    procs = [ctx.Process(target=_pack_worker, args=(spec, barrier, results)) for _ in range(n)]
    for p in procs:
        p.start()
    speeds = [results.get(timeout=300) for _ in procs]
    for p in procs:
        p.join()
    return speeds


def packing(plan: Plan, out: Path) -> dict[str, Any]:
    """Total images/s of N nets sharing the device, and its ratio to one net alone."""
    rows = []
    for n in plan.packs:
        speeds = _pack(plan, n)
        rows.append({"processes": n, "total_images_per_s": round(sum(speeds), 1),
                     "per_process_images_per_s": [round(x, 1) for x in speeds]})
    alone = rows[0]["total_images_per_s"]
    for row in rows:
        row["vs_one_alone"] = round(row["total_images_per_s"] / alone, 2)
    return {"model": f"cifar_resnet{plan.nets[0]}", "batch": plan.batch, "amp": plan.amp, "rows": rows}


# ----------------------------------------------------------------------------------------- driver
SECTIONS: dict[str, Callable[[Plan, Path], dict[str, Any]]] = {
    "gpu_tests": gpu_tests, "memory": memory, "schedule": schedule, "fault": fault, "packing": packing,
    "throughput": throughput,  # last: torch.compile of three nets is the longest and least certain part
}


def run_section(name: str, plan: Plan, out: Path) -> dict[str, Any]:
    """One section, timed; an exception becomes the section's ``error`` (the others still run)."""
    print(f"device_check: {name} ...", flush=True)
    started = time.perf_counter()
    try:
        result = {"ok": True, **SECTIONS[name](plan, out)}
    except Exception as exc:
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-3000:]}
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(f"device_check: {name} {'ok' if result['ok'] else 'FAILED'} in {result['seconds']}s", flush=True)
    return result


def environment(plan: Plan) -> dict[str, Any]:
    """The machine, the GPU and the versions the numbers belong to."""
    import torch

    gpu = torch.cuda.get_device_name() if plan.cuda and torch.cuda.is_available() else None
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "device": plan.device, "gpu": gpu,
            "torch": torch.__version__, "cuda": torch.version.cuda, "python": sys.version.split()[0],
            "cpu_count": os.cpu_count(), "quick": plan.quick}


def markdown(check: dict[str, Any]) -> str:
    """check.md: the environment, then each section's status and its JSON (for a person to read)."""
    env = check["environment"]
    lines = [f"# Device check ({env['gpu'] or env['device']}, torch {env['torch']}, {env['date']})", ""]
    for name, section in check["sections"].items():
        status = "ok" if section["ok"] else f"FAILED: {section['error']}"
        body = {k: v for k, v in section.items() if k not in ("ok", "traceback")}
        lines += [f"## {name} ({section['seconds']} s, {status})", "", "```json", json.dumps(body, indent=1),
                  "```", ""]
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="cuda (the check) or cpu (with --quick: the CI smoke run)")
    p.add_argument("--quick", action="store_true", help="tiny settings: seconds, for CI")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "gpu" / "results")
    p.add_argument("--data-root", default=str(REPO_ROOT / "benchmarks" / "gpu" / "data"),
                   help="folder holding the four Fashion-MNIST .gz files (fetch_wheels.sh copies them)")
    p.add_argument("--only", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the selected sections into ``--out``; returns what check.json holds."""
    a = parse(argv)
    plan = Plan(a.device, a.quick, a.data_root)
    a.out.mkdir(parents=True, exist_ok=True)
    check = {"environment": environment(plan), "sections": {}}
    for name in a.only:
        check["sections"][name] = run_section(name, plan, a.out)
        (a.out / "check.json").write_text(json.dumps(check, indent=1, default=str))  # partial results survive
    (a.out / "check.md").write_text(markdown(check))
    return check


if __name__ == "__main__":
    result = main()
    sys.exit(0 if all(s["ok"] for s in result["sections"].values()) else 1)
