"""Peak memory of one training step of ``--mem-model`` (default ResNet-1202, Sec. 4.2) with and without
activation checkpointing, each variant in a fresh process (``python -m benchmarks.throughput.memory``).

On CUDA: ``torch.cuda.max_memory_allocated``. On CPU: (a) the bytes autograd saves for backward
(``resnetlib.analysis.memory.SavedForBackward``), measured at ``--mem-batch`` and extrapolated linearly
to ``--batch`` from a second batch-1 forward; (b) the growth of the process's peak RSS over one full
step: the kernel's high-water mark (VmHWM) is reset through /proc/self/clear_refs just before the step,
because ``ru_maxrss`` of a fresh child starts at the parent's RSS (it survives fork/exec) and would hide
the step's peak; the ``ru_maxrss`` readings are kept in the JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from resnetlib import models
from resnetlib.analysis.memory import CudaPeak, SavedForBackward
from resnetlib.devices import autocast

from .bare_step import new_optimizer, random_batch
from .settings import Settings
from .timing import sync

MEM_MARK = "MEMRESULT "
REPO_ROOT = Path(__file__).resolve().parents[2]
CHILD_MODULE = "benchmarks.throughput.memory"  # run from REPO_ROOT


# ------------------------------------------------------------------------------------------- the parent
def measure_memory(s: Settings, a: argparse.Namespace) -> dict[str, Any]:
    mem_batch = a.mem_batch or (2 if s.quick else (s.batch if s.device.type == "cuda" else 8))
    variants = []
    for checkpointing in (False, True):
        spec = {"model": a.mem_model, "checkpointing": checkpointing, "batch": mem_batch,
                "target_batch": s.batch, "device": str(s.device), "amp": s.amp, "threads": s.threads}
        label = "activation checkpointing" if checkpointing else "no checkpointing"
        print(f"  memory: {a.mem_model} batch {mem_batch}, {label} (subprocess) ...", flush=True)
        variants.append(_run_child(spec, a.mem_timeout))
    return {"model": a.mem_model, "batch": mem_batch, "target_batch": s.batch, "variants": variants,
            "notes": _notes(s, mem_batch, variants)}


def _run_child(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", CHILD_MODULE, json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)
    except subprocess.TimeoutExpired:
        return {"activation_checkpointing": spec["checkpointing"], "error": f"timeout {timeout}s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MEM_MARK)]
    if proc.returncode or not lines:
        return {"activation_checkpointing": spec["checkpointing"],
                "error": f"exit {proc.returncode}: {proc.stderr.strip()[-2000:]}"}
    return json.loads(lines[-1][len(MEM_MARK):])


def _notes(s: Settings, mem_batch: int, variants: list[dict[str, Any]]) -> list[str]:
    note = []
    steps = [v["step_seconds"] for v in variants if "step_seconds" in v]
    if mem_batch != s.batch:
        why = ""
        if steps:
            est = max(steps) * s.batch / mem_batch
            why = (f"; a step at batch {s.batch} would take ~{est:.0f} s here (linear estimate from the "
                   "measured step)")
        note.append(f"measured at batch {mem_batch} (--mem-batch), not {s.batch}{why}; the saved-for-"
                    f"backward bytes are extrapolated linearly to batch {s.batch} from a second, "
                    "batch-1 forward")
    if steps and max(steps) > 60:
        note.append(f"one step took {max(steps):.0f} s at batch {mem_batch} (> 60 s)")
    return note


# -------------------------------------------------------------------------------------------- the child
def memory_child(spec: dict[str, Any]) -> dict[str, Any]:
    """One training step of spec['model'] in this fresh process; peak memory and saved-for-backward bytes."""
    device = torch.device(spec["device"])
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    step = MeasuredStep(spec, device)
    b = spec["batch"]
    small = None
    if b > 1 and spec["target_batch"] != b:  # a batch-1 forward for the linear extrapolation to target_batch
        small = step.run(1, then_step=False)
    with (CudaPeak(device) if device.type == "cuda" else contextlib.nullcontext()) as cuda, RssPeak() as rss:
        total, params_saved, seconds = step.run(b, then_step=True)
    out: dict[str, Any] = {
        "model": spec["model"], "activation_checkpointing": spec["checkpointing"], "batch": b,
        "amp": spec["amp"], "device": str(device), "step_seconds": round(seconds, 2),
        "param_bytes": step.param_bytes,
        "saved_for_backward_bytes": total,
        "saved_for_backward_param_bytes": params_saved,
    }
    if small is not None:
        per_image = (total - small[0]) / (b - 1)
        out["saved_for_backward_bytes_extrapolated"] = int(total + per_image * (spec["target_batch"] - b))
        out["extrapolated_to_batch"] = spec["target_batch"]
    if cuda is not None:
        out.update({"cuda_max_memory_allocated_bytes": cuda.peak, "cuda_step_peak_growth_bytes": cuda.growth})
    out.update(rss.readings())
    return out


class MeasuredStep:
    """The model of the spec (channels_last on CUDA) with its SGD; ``run`` measures one step."""

    def __init__(self, spec: dict[str, Any], device: torch.device) -> None:
        self.device, self.channels_last = device, device.type == "cuda"
        self.autocast = autocast(spec["amp"], device, cache_enabled=True)
        model = models.build(spec["model"], activation_checkpointing=spec["checkpointing"]).to(device).train()
        self.model = model.to(memory_format=torch.channels_last) if self.channels_last else model
        self.optimizer = new_optimizer(self.model)
        self.param_bytes = sum(p.numel() * p.element_size() for p in self.model.parameters())

    def run(self, n: int, then_step: bool) -> tuple[int, int, float]:
        """Forward at batch n recording the saved tensors (by storage), then backward + step if asked:
        (bytes saved for backward, of which parameters, seconds)."""
        x, y = random_batch(n, self.device, self.channels_last)
        sync(self.device)
        t0 = time.perf_counter()
        with SavedForBackward(self.model) as saved, self.autocast():
            loss = F.cross_entropy(self.model(x).float(), y)
        if then_step:
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        sync(self.device)
        seconds = time.perf_counter() - t0
        del loss
        return saved.total, saved.params, seconds


class RssPeak(contextlib.AbstractContextManager):
    """The growth of this process's peak RSS over a block (Linux /proc; ru_maxrss as the fallback)."""

    def __enter__(self) -> RssPeak:
        gc.collect()
        # Reset the kernel's RSS high-water mark to the current RSS (Linux >= 4.0), so the step's own peak is
        # seen even below earlier peaks (importing torch; the parent's pages inherited over fork/exec).
        self.hwm_reset = _reset_rss_high_water_mark()
        self.rss_before_kib = _proc_status_kib("VmRSS")
        self.maxrss_before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return self

    def __exit__(self, *exc) -> None:
        self.maxrss_after_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.hwm_after_kib = _proc_status_kib("VmHWM")

    def readings(self) -> dict[str, Any]:
        before = self.rss_before_kib
        # ru_maxrss only shows the step's peak if it rose above the process's earlier high-water mark.
        ru_growth = (self.maxrss_after_kib - before) * 1024 \
            if before is not None and self.maxrss_after_kib > self.maxrss_before_kib else None
        if self.hwm_reset and self.hwm_after_kib is not None and before is not None:
            growth = (self.hwm_after_kib - before) * 1024
            method = "VmHWM after a clear_refs reset - VmRSS before"
        else:
            growth, method = ru_growth, "ru_maxrss after - VmRSS before"
        return {
            "rss_before_kib": before,
            "ru_maxrss_before_kib": self.maxrss_before_kib,
            "ru_maxrss_after_kib": self.maxrss_after_kib,
            "vmhwm_after_kib": self.hwm_after_kib,
            "ru_maxrss_growth_bytes": ru_growth,
            "peak_rss_growth_bytes": growth,
            "peak_rss_method": method,
        }


def _proc_status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _reset_rss_high_water_mark() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


if __name__ == "__main__":
    print(MEM_MARK + json.dumps(memory_child(json.loads(sys.argv[1]))), flush=True)
