"""Fig. 4 and Table 2: plain-18/34 against ResNet-18/34 on ImageNet-style class folders.

The paper's claims (Sec. 4.1): the 34-layer *plain* net has higher training (and validation) error
than the 18-layer one, the degradation problem (Fig. 4 left); with identity shortcuts (option A) the
34-layer ResNet has lower error than the 18-layer one (Fig. 4 right) and beats plain-34 (Table 2, 10-crop
top-1 validation error).

At the paper's scale the nets train on ILSVRC2012 class folders; the CPU profiles train on Fashion-MNIST
exported as class folders (``stand_in``) through the same ImageNet pipeline (``class_folders``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from pydantic import Field

from .. import paper
from ..train import TrainConfig
from ..claims import Claim, number_claim
from ..claims.rules import TOLERANCE_IMAGENET_TOP1 as TABLE2_TOLERANCE
from .base import Measured, Outcome, run_experiment
from .class_folders import ClassFolderParams, Table1Depths, class_folders, folder_data, folder_source
from .training import (
    Lower,
    comparison_claims,
    final_errors,
    final_value,
    metric_rows,
    net_label,
    train,
    train_config,
)
from .declaration import Experiment



class Params(ClassFolderParams):
    depths: Table1Depths = Field(default_factory=lambda: [18, 34], min_length=1, description="Table 1 depths")


def nets(params: Params) -> list[tuple[str, int, int]]:
    """(kind, depth, seed) of every run: plain and residual (option A) nets of every depth."""
    return [(kind, depth, seed) for depth in params.depths for kind in ("plain", "resnet") for seed in params.seeds]


def planned_runs(params: Params) -> list[TrainConfig]:
    """The configurations ``measure`` trains (the run queue of ``reproduce --jobs`` trains them first)."""
    data = folder_data(params, class_folders(params))
    return [train_config(params, f"{kind}{depth}", seed, data=data) for kind, depth, seed in nets(params)]


def train_all(params: Params, root: Path) -> pd.DataFrame:
    """Train plain and residual (option A) nets of every depth and seed; one row per evaluation."""
    rows = []
    for kind, depth, seed in nets(params):
        result = train(params, f"{kind}{depth}", seed, data=folder_data(params, root))
        rows += metric_rows(result, with_speed=True, kind=kind, depth=depth, seed=seed)
    return pd.DataFrame(rows)


def measure(params: Params) -> Measured:
    root = class_folders(params)
    curves = train_all(params, root)
    speed = curves.groupby(["kind", "depth"], as_index=False)["train_images_per_s"].median()
    final = final_errors(curves).merge(speed, on=["kind", "depth"])
    family = params.family()
    return Measured(
        tables={"curves": curves, "final_errors": final}, dataset=family.label(),
        data_source=folder_source(params, root), scale=params.scale_text(), seeds=params.seeds,
        extra={"stand_in": params.stand_in is not None, "data": family.data_text()},
    )


def table2_claims(params: Params, final: pd.DataFrame) -> list[Claim]:
    """Table 2's top-1 errors of the nets we trained (mean over seeds)."""
    return [
        number_claim(f"table2.top1.{kind}{depth}", final_value(final, kind, depth, "test_error"),
                     at_paper_scale=params.at_paper_scale(), tolerance=TABLE2_TOLERANCE, id=f"table2_{kind}{depth}_top1",
                     n_seeds=len(params.seeds), spread=final_value(final, kind, depth, "test_error_std"),
                     what=f"{net_label(kind, depth)} top-1 validation error, mean of {len(params.seeds)} seed(s) (%)")
        for depth in params.depths for kind in ("plain", "resnet") if f"table2.top1.{kind}{depth}" in paper.REPORTED
    ]


def claims_from(params: Params, curves: pd.DataFrame) -> list[Claim]:
    """Fig. 4 / Table 2 statements from the per-seed final errors (plain degradation and ResNet-vs-plain at
    equal depth and budget; deeper-ResNet-is-better is about where the nets end: ``ends_better``), then Table 2's numbers."""
    s, d = min(params.depths), max(params.depths)
    return comparison_claims(params, curves, params.depths, [
        Lower("fig4_plain_degradation", "Fig. 4 left", ("plain", d), ("plain", s), "train_error", "training error",
              higher=True),
        Lower("fig4_resnet_deeper_lower_train_error", "Fig. 4 right", ("resnet", d), ("resnet", s), "train_error",
              "training error", ends_better=True),
        Lower("table2_resnet_beats_plain", "Table 2", ("resnet", d), ("plain", d), "test_error", "validation error"),
    ]) + table2_claims(params, final_errors(curves))


def run(params: Params) -> Outcome:
    return run_experiment(params, measure, EXPERIMENT.claims)


#: This experiment as the runner reads it (resnetlib.experiments.declaration).
EXPERIMENT = Experiment(params=Params, measure=measure, planned_runs=planned_runs,
                        claims=lambda p, m: claims_from(p, m.tables["curves"]))
