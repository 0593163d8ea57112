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

import time

import pandas as pd
import torch
from pydantic import Field, field_validator, model_validator
from torch import nn

from .. import models, paper
from ..analysis import count_params
from ..models.cifar import blocks_per_stage
from ..report.verdicts import compare_number, judge_statement
from .base import Claim, write_results
from .cifar_degradation import TABLE6_TOLERANCE
from .training import PROTOCOL, TrainingParams, data_source, final_errors, train

#: The paper's pair.
PAPER_DEPTHS = (110, 1202)
#: "Both have similar training error": the final training errors must agree within this many points.
SIMILAR_TRAIN_ERROR = 0.5
#: ResNet-1202 overfits when its test error exceeds ResNet-110's by more than this many points (the paper's
#: gap is three times larger; Table 6's ResNet-110 std is a third of it).
OVERFIT_MARGIN = TABLE6_TOLERANCE


class Params(TrainingParams):
    shallow_depth: int = Field(20, description="6n+2; paper: 110")
    deep_depth: int = Field(32, description="6n+2; paper: 1202")
    activation_checkpointing: bool = Field(
        False, description="train the deep net recomputing each block's activations in backward (same result, "
        "less memory, about a third slower)"
    )
    memory_depths: list[int] = Field(default_factory=lambda: [110, 1202], min_length=1,
                                     description="nets whose activation memory is measured (with and without "
                                     "checkpointing)")
    memory_batch_size: int = Field(2, ge=1, description="images in the measured training step; paper: 128")

    @field_validator("shallow_depth", "deep_depth")
    @classmethod
    def _six_n_plus_two(cls, v: int) -> int:
        blocks_per_stage(v)
        return v

    @field_validator("memory_depths")
    @classmethod
    def _memory_depths(cls, v: list[int]) -> list[int]:
        for d in v:
            blocks_per_stage(d)
        return sorted(set(v))

    @model_validator(mode="after")
    def _shallow_below_deep(self):
        if self.shallow_depth >= self.deep_depth:
            raise ValueError(f"shallow_depth ({self.shallow_depth}) must be below deep_depth ({self.deep_depth})")
        return self

    def paper_depths(self) -> bool:
        return (self.shallow_depth, self.deep_depth) == PAPER_DEPTHS

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


# ------------------------------------------------------------------------------------------------- memory
def activation_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes of the tensors autograd keeps for backward after one training-mode forward pass of ``x``.

    Every tensor saved for backward passes through ``torch.autograd.graph.saved_tensors_hooks``; we sum
    the sizes of their storages, each storage once (views and in-place results share one), leaving out the
    parameters and buffers (weights are there whether or not anything is saved). With activation
    checkpointing (``torch.utils.checkpoint``, non-reentrant) only each block's input is saved; the
    recomputation in backward adds one block's activations at a time, which this does not count. The
    model is left in training mode; BN running statistics see one extra batch.
    """
    own = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    saved: dict[tuple[str, int], int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in own and storage.nbytes():
            key = (str(t.device), ptr)
            saved[key] = max(saved.get(key, 0), storage.nbytes())
        return t

    model.train()
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    del out  # frees the graph and what it saved
    return sum(saved.values())


def measure_memory(params: Params) -> pd.DataFrame:
    """Activation memory of one training step (batch ``memory_batch_size``, 3x32x32 CIFAR input) for each
    of ``memory_depths``, with and without activation checkpointing; on CUDA also the step's peak memory."""
    device = params.resolved_device()
    rows = []
    for depth in params.memory_depths:
        for checkpointing in (False, True):
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
                    torch.cuda.synchronize(device)
                    torch.cuda.reset_peak_memory_stats(device)
                    before = torch.cuda.memory_allocated(device)
                    net(x).float().logsumexp(1).mean().backward()
                    torch.cuda.synchronize(device)
                    row["peak_cuda_step_bytes"] = torch.cuda.max_memory_allocated(device) - before
            except torch.cuda.OutOfMemoryError:  # e.g. ResNet-1202 at batch 128 without checkpointing
                row["out_of_memory"] = True
            rows.append(row)
            del net
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------- training
def train_all(params: Params) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train the shallow and the deep net for every seed: (curves, one row per run)."""
    rows, runs = [], []
    for depth in (params.shallow_depth, params.deep_depth):
        options = {"activation_checkpointing": True} if (
            depth == params.deep_depth and params.activation_checkpointing) else {}
        for seed in params.seeds:
            result = train(params, f"cifar_resnet{depth}", seed, **options)
            speeds = [m["images_per_s"] for m in result.metrics]
            s = result.summary
            runs.append({"depth": depth, "seed": seed, "iterations": s["iterations"],
                         "activation_checkpointing": bool(options),
                         "train_seconds": s["train_seconds"],
                         "train_images_per_s": float(pd.Series(speeds).median()) if speeds else None,
                         "warmup_end": s["warmup_end"], "final_train_error": s["final_train_error"],
                         "final_test_error": s["final_test_error"],
                         "peak_cuda_memory_bytes": s["peak_cuda_memory_bytes"], "run_dir": str(result.run_dir)})
            for m in result.metrics:
                rows.append({"kind": "resnet", "depth": depth, "seed": seed, "run_dir": str(result.run_dir), **m})
    return pd.DataFrame(rows), pd.DataFrame(runs)


# --------------------------------------------------------------------------------------------------- claims
def _value(final: pd.DataFrame, depth: int, column: str) -> float:
    return float(final[final.depth == depth][column].iloc[0])


def why_not_measurable(params: Params) -> str:
    reasons = []
    if not params.paper_depths():
        reasons.append(f"this run trained ResNet-{params.shallow_depth} and ResNet-{params.deep_depth}, not the "
                       f"paper's {PAPER_DEPTHS[0]} and {PAPER_DEPTHS[1]}")
    if not params.at_paper_scale():
        reasons.append(f"overfitting shows only after the full CIFAR-10 protocol ({PROTOCOL['iterations']} "
                       f"iterations of batch {PROTOCOL['batch_size']}); this run: {params.dataset}, "
                       f"{params.scale_text()}")
    return "; ".join(reasons)


def claims_from(params: Params, final: pd.DataFrame) -> list[Claim]:
    s, d = params.shallow_depth, params.deep_depth
    measurable = params.paper_depths() and params.at_paper_scale()
    why = why_not_measurable(params)
    claims = []
    gap = abs(_value(final, d, "train_error") - _value(final, s, "train_error"))
    statement = f"ResNet-{d} and ResNet-{s} reach similar training error (within {SIMILAR_TRAIN_ERROR:g} points)"
    verdict, reason = judge_statement(SIMILAR_TRAIN_ERROR - gap, margin=0.0, measurable=measurable,
                                      statement=statement, why_not_measurable=why)
    claims.append(Claim(id="fig6_right_similar_training_error", ref="Fig. 6 right, Sec. 4.2",
                        what=statement + " (|difference|, points)", ours=round(gap, 2), paper="yes",
                        verdict=verdict, reason=reason))
    effect = _value(final, d, "test_error") - _value(final, s, "test_error")
    statement = f"ResNet-{d} has higher test error than ResNet-{s} (overfitting)"
    verdict, reason = judge_statement(effect, margin=OVERFIT_MARGIN, measurable=measurable, statement=statement,
                                      why_not_measurable=why)
    claims.append(Claim(id="table6_resnet1202_overfits", ref="Table 6, Sec. 4.2", what=statement + " (points)",
                        ours=round(effect, 2), paper=round(paper.value("table6.error.resnet1202")
                                                           - paper.value("table6.error.resnet110"), 2),
                        verdict=verdict, reason=reason))
    for depth in (s, d):
        key = f"table6.error.resnet{depth}"
        if key not in paper.REPORTED:
            continue
        ours = _value(final, depth, "test_error_best")
        verdict, reason = compare_number(ours, paper.value(key), at_paper_scale=params.at_paper_scale(),
                                         tolerance=TABLE6_TOLERANCE)
        claims.append(Claim(id=f"table6_resnet{depth}_test_error", ref="Table 6",
                            what=f"ResNet-{depth} test error, best of {len(params.seeds)} seed(s) (%)",
                            ours=round(ours, 2), paper=paper.value(key), verdict=verdict, reason=reason))
    for depth in sorted({s, d, *params.memory_depths}):
        key = f"table6.params.resnet{depth}"
        if key not in paper.REPORTED:
            continue
        with torch.device("meta"):
            ours = count_params(models.build(f"cifar_resnet{depth}")) / 1e6
        ref = paper.value(key) / 1e6
        half_unit = 0.005 if ref < 1 else 0.05  # the paper prints 0.27M but 1.7M and 19.4M
        verdict, reason = compare_number(ours, ref, at_paper_scale=True, tolerance=half_unit, lower_is_better=None)
        claims.append(Claim(id=f"table6_params_resnet{depth}", ref="Table 6", what=f"ResNet-{depth} parameters (M)",
                            ours=round(ours, 3), paper=ref, verdict=verdict, reason=reason))
    return claims


def what_was_measured(params: Params, runs: pd.DataFrame, memory: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Plain sentences for the notebook: what this run measured, and what it could not."""
    s, d = params.shallow_depth, params.deep_depth
    speed = runs.groupby("depth")["train_images_per_s"].median()
    device = memory["device"].iloc[0]
    measured = [
        f"training and test curves of ResNet-{s} and ResNet-{d} on {params.dataset}: {params.scale_text()}",
        f"training speed: ResNet-{s} {speed[s]:.1f} images/s, ResNet-{d} {speed[d]:.1f} images/s "
        f"(device {device}; median over the evaluation intervals)",
        f"activation memory of one training step at batch {params.memory_batch_size} of ResNet-"
        f"{', ResNet-'.join(map(str, params.memory_depths))}, with and without activation checkpointing",
        "parameter counts (exact at every scale)",
    ]
    if runs["peak_cuda_memory_bytes"].notna().any():
        measured.append("peak CUDA memory of every training run")
    not_measured = []
    if not (params.paper_depths() and params.at_paper_scale()):
        not_measured.append(
            f"whether ResNet-1202 overfits (Table 6: {paper.value('table6.error.resnet1202')}% vs "
            f"{paper.value('table6.error.resnet110')}% for ResNet-110) and reaches ResNet-110's training error: "
            + why_not_measurable(params))
    if not params.at_paper_scale():
        not_measured.append("the Table 6 test errors (they need CIFAR-10 and the full protocol)")
    return measured, not_measured


def run(params: Params) -> dict:
    start = time.perf_counter()
    if params.threads:
        torch.set_num_threads(params.threads)
    curves, runs = train_all(params)
    final = final_errors(curves)
    memory = measure_memory(params)
    out = params.out_path()
    curves.to_csv(out / "curves.csv", index=False)
    final.to_csv(out / "final_errors.csv", index=False)
    runs.to_csv(out / "runs.csv", index=False)
    memory.to_csv(out / "memory.csv", index=False)
    measured, not_measured = what_was_measured(params, runs, memory)
    return write_results(
        params, dataset=params.dataset, data_source=data_source(runs.run_dir.iloc[0]),
        scale=f"ResNet-{params.shallow_depth} vs ResNet-{params.deep_depth}; {params.scale_text()}",
        seeds=params.seeds, claims=claims_from(params, final), wall_seconds=time.perf_counter() - start,
        extra={"measured": measured, "not_measured": not_measured,
               "memory": memory.to_dict(orient="records")},
    )
