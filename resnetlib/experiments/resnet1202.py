"""Table 6 (last row) and Fig. 6 right: ResNet-110 against ResNet-1202 on CIFAR-10, and the memory used.

The paper (Sec. 4.2, "Exploring over 1000 layers"): the 1202-layer net (n = 200, 19.4M parameters) trains
without optimization difficulty and reaches a training error as low as ResNet-110's, but its test error
(Table 6) is worse than ResNet-110's, which the authors attribute to overfitting of an unnecessarily large
net on a small data set. Both use the CIFAR-10 protocol, with ResNet-110's lr warm-up.

Training a 1202-layer net to the end takes a GPU for hours; on a CPU a few iterations take minutes. So the
profiles below the paper's scale measure what *can* be measured there: a few iterations of each net
(speed, and the start of the curves) and the activation memory of one training step with and without
activation checkpointing (``activation_bytes``). The overfitting claims are then "not measurable at this
scale", and results.json lists what was and was not measured.
"""

from __future__ import annotations

import math
import time

import pandas as pd
import torch
from pydantic import Field, model_validator

from .. import models, paper
from ..analysis import count_params
from ..analysis.memory import CudaPeak, activation_bytes
from ..devices import resolve_device
from ..train import TrainConfig
from ..train.loop import RunResult
from ..claims import Claim, statement_claim
from ..claims.rules import MARGIN_OVERFIT as OVERFIT_MARGIN
from ..claims.rules import SIMILAR_TRAIN_ERROR
from .base import Measured, Outcome, run_experiment
from .cifar_degradation import CifarDepth, CifarDepths, table6_error_claims
from .training import (
    PROTOCOL,
    TrainingParams,
    budget_of,
    data_source,
    final_errors,
    median_speed,
    metric_rows,
    pair_sampling_se,
    paired_effects,
    train,
    train_config,
    training_gates,
)
from .declaration import Experiment

#: The paper's pair.
PAPER_DEPTHS = (110, 1202)


class Params(TrainingParams):
    shallow_depth: CifarDepth = Field(20, description="6n+2; paper: 110")
    deep_depth: CifarDepth = Field(32, description="6n+2; paper: 1202")
    activation_checkpointing: bool = Field(
        False, description="train the deep net recomputing each block's activations in backward (same result, "
        "less memory, about a third slower)"
    )
    memory_depths: CifarDepths = Field(default_factory=lambda: [110, 1202], min_length=1,
                                     description="nets whose activation memory is measured (with and without "
                                     "checkpointing)")
    memory_batch_size: int = Field(2, ge=1, description="images in the measured training step; paper: 128")

    @model_validator(mode="after")
    def _shallow_below_deep(self):
        if self.shallow_depth >= self.deep_depth:
            raise ValueError(f"shallow_depth ({self.shallow_depth}) must be below deep_depth ({self.deep_depth})")
        return self

    def paper_depths(self) -> bool:
        return (self.shallow_depth, self.deep_depth) == PAPER_DEPTHS

    def resolved_device(self) -> torch.device:
        return resolve_device(self.device)


# ------------------------------------------------------------------------------------------------- memory
def measure_memory(params: Params) -> pd.DataFrame:
    """Activation memory of one training step (batch ``memory_batch_size``, 3x32x32 CIFAR input) for each
    of ``memory_depths``, with and without activation checkpointing; on CUDA also the step's peak memory."""
    device = params.resolved_device()
    rows = [memory_row(params, depth, checkpointing, device)
            for depth in params.memory_depths for checkpointing in (False, True)]
    return pd.DataFrame(rows)


def memory_row(params: Params, depth: int, checkpointing: bool, device: torch.device) -> dict:
    """One row of ``measure_memory``: ResNet-``depth`` built with seed 0, one step of random images."""
    torch.manual_seed(0)
    net = models.build(f"cifar_resnet{depth}", activation_checkpointing=checkpointing).to(device)
    row = {"depth": depth, "activation_checkpointing": checkpointing, "batch_size": params.memory_batch_size,
           "device": str(device), "params": count_params(net), "activation_bytes": None,
           "activation_bytes_per_image": None, "peak_cuda_step_bytes": None, "forward_seconds": None,
           "out_of_memory": False}
    try:
        x = torch.randn(params.memory_batch_size, 3, 32, 32, device=device)
        start = time.perf_counter()
        saved = activation_bytes(net, x)
        row.update(activation_bytes=saved, activation_bytes_per_image=saved / params.memory_batch_size,
                   forward_seconds=round(time.perf_counter() - start, 3))
        if device.type == "cuda":
            with CudaPeak(device) as peak:
                net(x).float().logsumexp(1).mean().backward()
            row["peak_cuda_step_bytes"] = peak.growth
    except torch.cuda.OutOfMemoryError:  # e.g. ResNet-1202 at batch 128 without checkpointing
        row["out_of_memory"] = True
    del net
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


# ----------------------------------------------------------------------------------------------- training
def nets(params: Params) -> list[tuple[int, int, dict]]:
    """(depth, seed, model options) of every run: the shallow and the deep net (checkpointed if asked)."""
    out = []
    for depth in (params.shallow_depth, params.deep_depth):
        options = {"activation_checkpointing": True} if (
            depth == params.deep_depth and params.activation_checkpointing) else {}
        out += [(depth, seed, options) for seed in params.seeds]
    return out


def planned_runs(params: Params) -> list[TrainConfig]:
    """The configurations ``measure`` trains (the run queue of ``reproduce --jobs`` trains them first)."""
    return [train_config(params, f"cifar_resnet{depth}", seed, **options) for depth, seed, options in nets(params)]


def train_all(params: Params) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train the shallow and the deep net for every seed: (curves, one row per run)."""
    rows, runs = [], []
    for depth, seed, options in nets(params):
        result = train(params, f"cifar_resnet{depth}", seed, **options)
        runs.append(run_row(result, depth, seed, bool(options)))
        rows += metric_rows(result, kind="resnet", depth=depth, seed=seed)
    return pd.DataFrame(rows), pd.DataFrame(runs)


def run_row(result: RunResult, depth: int, seed: int, checkpointing: bool) -> dict:
    """One row of runs.csv: speed, warm-up, final errors and memory of a trained run."""
    s = result.summary
    speed = median_speed(result)
    return {"depth": depth, "seed": seed, "iterations": s["iterations"], "activation_checkpointing": checkpointing,
            "train_seconds": s["train_seconds"], "train_images_per_s": None if math.isnan(speed) else speed,
            "warmup_end": s["warmup_end"], "final_train_error": s["final_train_error"],
            "final_test_error": s["final_test_error"], "peak_cuda_memory_bytes": s["peak_cuda_memory_bytes"],
            "run_dir": str(result.run_dir)}


def measure(params: Params) -> Measured:
    threads = params.base_config().threads
    if threads:
        torch.set_num_threads(threads)
    curves, runs = train_all(params)
    final = final_errors(curves)
    memory = measure_memory(params)
    measured, not_measured = what_was_measured(params, runs, memory)
    return Measured(
        tables={"curves": curves, "final_errors": final, "runs": runs, "memory": memory},
        dataset=params.family().name, data_source=data_source(runs.run_dir.iloc[0]), seeds=params.seeds,
        scale=f"ResNet-{params.shallow_depth} vs ResNet-{params.deep_depth}; {params.scale_text()}",
        extra={"measured": measured, "not_measured": not_measured, "memory": memory.to_dict(orient="records")},
    )


# --------------------------------------------------------------------------------------------------- claims
def why_not_measurable(params: Params) -> str:
    reasons = []
    if not params.paper_depths():
        reasons.append(f"this run trained ResNet-{params.shallow_depth} and ResNet-{params.deep_depth}, not the "
                       f"paper's {PAPER_DEPTHS[0]} and {PAPER_DEPTHS[1]}")
    if not params.at_paper_scale():
        reasons.append(f"overfitting shows only after the full CIFAR-10 protocol ({PROTOCOL['iterations']} "
                       f"iterations of batch {PROTOCOL['batch_size']}); this run: {params.family().name}, "
                       f"{params.scale_text()}")
    return "; ".join(reasons)


def overfitting_claims(params: Params, curves: pd.DataFrame) -> list[Claim]:
    """Fig. 6 right: similar training errors; Table 6: the deeper net has the higher test error. Per-seed
    effects of trained nets; both are claims about where the nets end (``ends_better``)."""
    s, d = params.shallow_depth, params.deep_depth
    measurable, why = params.paper_depths() and params.at_paper_scale(), why_not_measurable(params)
    deep, shallow = {"kind": "resnet", "depth": d}, {"kind": "resnet", "depth": s}
    gaps = [abs(e) for e in paired_effects(curves, deep, shallow, "train_error")]
    gates = training_gates(params, curves, {f"ResNet-{d}": deep, f"ResNet-{s}": shallow})
    where = {"at_paper_scale": params.at_paper_scale(), "ends_better": True, "budget": budget_of(params)}
    similar = f"ResNet-{d} and ResNet-{s} reach similar training error (within {SIMILAR_TRAIN_ERROR:g} points)"
    overfits = f"ResNet-{d} has higher test error than ResNet-{s} (overfitting)"
    paper_gap = round(paper.value("table6.error.resnet1202") - paper.value("table6.error.resnet110"), 2)
    return [
        statement_claim("fig6_right_similar_training_error", "Fig. 6 right, Sec. 4.2", similar,
                        [SIMILAR_TRAIN_ERROR - g for g in gaps], margin=0.0, measurable=measurable, why=why,
                        gates=gates, what=similar + " (|difference|, points)",
                        ours=round(sum(gaps) / len(gaps), 2) if gaps else None,
                        sampling_se=pair_sampling_se(params, curves, deep, shallow, "train_error"), **where),
        statement_claim("table6_resnet1202_overfits", "Table 6, Sec. 4.2", overfits,
                        paired_effects(curves, deep, shallow, "test_error", higher=True), margin=OVERFIT_MARGIN,
                        measurable=measurable, why=why, gates=gates, what=overfits + " (points)", paper=paper_gap,
                        sampling_se=pair_sampling_se(params, curves, deep, shallow, "test_error"), **where),
    ]


def claims_from(params: Params, curves: pd.DataFrame) -> list[Claim]:
    """The overfitting statements and Table 6's test errors; Table 6's parameter counts are the
    architectures notebook's (counted once)."""
    s, d = params.shallow_depth, params.deep_depth
    return overfitting_claims(params, curves) + table6_error_claims(params, final_errors(curves), [s, d],
                                                                    with_mean=False)


def what_was_measured(params: Params, runs: pd.DataFrame, memory: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Plain sentences for the notebook: what this run measured, and what it could not."""
    s, d = params.shallow_depth, params.deep_depth
    speed = runs.groupby("depth")["train_images_per_s"].median()
    device = memory["device"].iloc[0]
    measured = [
        f"training and test curves of ResNet-{s} and ResNet-{d} on {params.family().name}: {params.scale_text()}",
        f"training speed: ResNet-{s} {speed[s]:.1f} images/s, ResNet-{d} {speed[d]:.1f} images/s "
        f"(device {device}; median over the evaluation intervals)",
        f"activation memory of one training step at batch {params.memory_batch_size} of ResNet-"
        f"{', ResNet-'.join(map(str, params.memory_depths))}, with and without activation checkpointing",
        "parameter counts (exact at every scale)",
    ]
    if runs["peak_cuda_memory_bytes"].notna().any():
        measured.append("peak CUDA memory of every training run")
    return measured, not_measured_text(params)


def not_measured_text(params: Params) -> list[str]:
    not_measured = []
    if not (params.paper_depths() and params.at_paper_scale()):
        not_measured.append(
            f"whether ResNet-1202 overfits (Table 6: {paper.value('table6.error.resnet1202')}% vs "
            f"{paper.value('table6.error.resnet110')}% for ResNet-110) and reaches ResNet-110's training error: "
            + why_not_measurable(params))
    if not params.at_paper_scale():
        not_measured.append("the Table 6 test errors (they need CIFAR-10 and the full protocol)")
    return not_measured


def run(params: Params) -> Outcome:
    return run_experiment(params, measure, EXPERIMENT.claims)


#: This experiment as the runner reads it (resnetlib.experiments.declaration).
EXPERIMENT = Experiment(params=Params, measure=measure, planned_runs=planned_runs,
                        claims=lambda p, m: claims_from(p, m.tables["curves"]))
