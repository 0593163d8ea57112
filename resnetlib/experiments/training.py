"""Shared by the experiments that train CIFAR-style nets (Fig. 1, Fig. 6, Fig. 7, Table 3, Table 6).

``TrainingParams`` holds the protocol knobs every such notebook exposes; ``train_config`` turns them
into the engine's ``TrainConfig`` for one network and seed. Two notebooks with the same training
parameters produce the same configurations, hence the same run-cache keys: the layer-response
notebook reuses the nets the degradation notebook trained instead of training them again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import Field, model_validator

from .. import paper
from ..report.verdicts import judge_statement
from ..train import TrainConfig, cached_fit
from ..train.loop import RunResult
from .base import Claim, ExperimentParams

PROTOCOL = paper.CIFAR_PROTOCOL

#: Qualitative claims need real data and a few passes over it before the curves separate; below
#: this many epochs the verdict is "not measurable at this scale".
MIN_EPOCHS = 3.0
#: A training/test error difference must exceed this many percentage points to count.
MARGIN = 1.0


class TrainingParams(ExperimentParams):
    """The Sec. 4.2 protocol, scaled by the profile (defaults: a smoke run of seconds)."""

    dataset: Literal["cifar10", "fashion_mnist", "synthetic"] = "fashion_mnist"
    train_size: int | None = Field(512, ge=1, description="None = the whole training set")
    val_size: int = Field(0, ge=0, description="paper: 5000 held out of CIFAR-10's 50k")
    test_size: int | None = Field(256, ge=1, description="None = the whole test set")
    batch_size: int = Field(64, ge=1, description="paper: 128")
    iterations: int = Field(16, ge=1, description="paper: 64000")
    milestones: list[int] = Field(default_factory=lambda: [8, 12], description="paper: [32000, 48000]")
    lr: float = Field(0.1, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    eval_every: int = Field(4, ge=1, description="iterations between points of the curves")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    amp: Literal["off", "bf16", "fp16"] = Field("off", description="bf16 is faster on recent CPUs and GPUs")
    threads: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _milestones_within_run(self):
        if any(m >= self.iterations for m in self.milestones):
            raise ValueError(f"milestones {self.milestones} must be below iterations ({self.iterations})")
        return self

    def at_paper_scale(self) -> bool:
        """True when the run is the paper's CIFAR-10 protocol, so its numbers compare with Table 6."""
        return (
            self.dataset == "cifar10"
            and self.train_size in (None, PROTOCOL["train_size"], 50_000 - self.val_size)
            and self.test_size is None
            and self.iterations >= PROTOCOL["iterations"]
            and self.batch_size == PROTOCOL["batch_size"]
        )

    def epochs(self) -> float:
        n = self.train_size or (50_000 if self.dataset == "cifar10" else 60_000) - self.val_size
        return self.iterations * self.batch_size / n

    def real_data(self) -> bool:
        return self.dataset != "synthetic"

    def scale_text(self) -> str:
        n = self.train_size or "all"
        return (
            f"{n} train images, {self.iterations} iterations of batch {self.batch_size} "
            f"({self.epochs():.1f} epochs), lr steps at {self.milestones}"
        )


def train_config(params: TrainingParams, model: str, seed: int, **model_options) -> TrainConfig:
    """The engine configuration for training ``model`` with ``seed`` under ``params``."""
    depth = model.rsplit("resnet", 1)[-1]
    warmup = {"mode": "off"}
    if depth.isdigit() and int(depth) >= 110 and params.lr > 0.01:
        warmup = {"mode": "until_error"}  # Sec. 4.2: ResNet-110 (and 1202) warm up at lr 0.01
    return TrainConfig.model_validate({
        "model": {"name": model, **model_options},
        "data": {"name": params.dataset, "root": params.data_root, "train_size": params.train_size,
                 "val_size": params.val_size, "test_size": params.test_size},
        "optim": {"batch_size": params.batch_size, "iterations": params.iterations, "milestones": params.milestones,
                  "lr": params.lr, "weight_decay": params.weight_decay, "warmup": warmup},
        "seed": seed,
        "device": params.device,
        "amp": params.amp,
        "threads": params.threads,
        "eval_every": params.eval_every,
        "checkpoint_every": max(params.eval_every, min(params.iterations, 2000)),
        "log": "lines",
    })


def train(params: TrainingParams, model: str, seed: int, **model_options) -> RunResult:
    """Train (or fetch from the run cache) ``model`` with ``seed``."""
    return cached_fit(train_config(params, model, seed, **model_options), params.runs_path(), force=params.force)


def data_source(run_dir: str | Path) -> str:
    """Where the run read its data from, as its environment.json recorded it."""
    return json.loads((Path(run_dir) / "environment.json").read_text())["data_source"]


def trained_enough(params: TrainingParams, depths: list[int] | None = None) -> tuple[bool, str]:
    """Can this scale test a qualitative claim? (measurable, and the reason when it cannot)."""
    two_depths = depths is None or min(depths) != max(depths)
    ok = params.real_data() and params.epochs() >= MIN_EPOCHS and two_depths
    why = (
        f"needs real data, >= {MIN_EPOCHS:g} epochs{' and two depths' if depths is not None else ''} "
        f"(this run: {params.dataset}, {params.epochs():.1f} epochs"
        f"{f', depths {depths}' if depths is not None else ''})"
    )
    return ok, why


def final_errors(curves: pd.DataFrame) -> pd.DataFrame:
    """Last evaluation of each run, then mean and std over seeds, per (kind, depth)."""
    last = curves.sort_values("iteration").groupby(["kind", "depth", "seed"]).tail(1)
    agg = last.groupby(["kind", "depth"]).agg(
        train_error=("train_error", "mean"),
        test_error=("test_error", "mean"),
        test_error_std=("test_error", "std"),
        test_error_best=("test_error", "min"),
        seeds=("seed", "count"),
    )
    return agg.reset_index()


def final_value(final: pd.DataFrame, kind: str, depth: int, column: str) -> float:
    return float(final[(final.kind == kind) & (final.depth == depth)][column].iloc[0])


def statement_claims(
    statements: list[tuple[str, str, str, float]], *, measurable: bool, why: str, margin: float = MARGIN
) -> list[Claim]:
    """Claims for (id, paper reference, statement, effect in percentage points) tuples."""
    claims = []
    for cid, ref, statement, effect in statements:
        verdict, reason = judge_statement(effect, margin=margin, measurable=measurable, statement=statement,
                                          why_not_measurable=why)
        claims.append(Claim(id=cid, ref=ref, what=statement + " (percentage points)", ours=round(effect, 2),
                            paper="yes", verdict=verdict, reason=reason))
    return claims
