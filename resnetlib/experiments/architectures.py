"""Table 1 and Table 6 recomputed: depth, parameters and multiply-adds of every network.

These are properties of the architectures alone, so they are measurable at every scale: the verdicts
compare our counts with the paper's (Table 1 FLOPs within 3%, Table 6 parameters to the paper's
rounding).
"""

from __future__ import annotations

import pandas as pd
import torch
from pydantic import Field

from .. import models, paper
from ..analysis import count_macs, count_params, count_weighted_layers
from ..claims import Claim, number_claim
from ..claims.rules import TOLERANCE_MACS_FRACTION as MACS_TOLERANCE
from .base import ExperimentParams, Measured, Outcome, run_experiment
from .declaration import Experiment


class Params(ExperimentParams):
    imagenet_models: list[str] = Field(
        default_factory=lambda: ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "plain18", "plain34"],
        description="Table 1 nets to count at 224x224",
    )
    include_vgg19: bool = Field(False, description="VGG-19 of Fig. 3 (19.6G multiply-adds; 143M parameters)")
    cifar_depths: list[int] = Field(default_factory=lambda: [20, 32, 44, 56, 110, 1202])
    image_size: int = Field(224, ge=32)


def _row(name: str, input_shape: tuple[int, int, int]) -> dict:
    with torch.device("meta"):  # shapes only: no memory, no arithmetic, so even VGG-19 counts in ms
        net = models.build(name)
    return {
        "model": name,
        "family": models.family(name),
        "layers": count_weighted_layers(net),
        "params": count_params(net),
        "macs": count_macs(net, input_shape),
    }


def _reported(key: str) -> float | None:
    return paper.value(key) if key in paper.REPORTED else None


def count_table(params: Params) -> pd.DataFrame:
    """One row per network: weighted layers, parameters and multiply-adds, with the paper's values."""
    size = params.image_size
    names = list(params.imagenet_models) + (["vgg19"] if params.include_vgg19 else [])
    rows = [{**_row(name, (3, size, size)), "paper_macs": _reported(f"table1.macs.{name}") if size == 224 else None,
             "paper_params": None} for name in names]
    rows += [{**_row(f"cifar_resnet{depth}", (3, 32, 32)), "paper_params": _reported(f"table6.params.resnet{depth}"),
              "paper_macs": None} for depth in params.cifar_depths]
    return pd.DataFrame(rows)


def measure(params: Params) -> Measured:
    return Measured(
        tables={"architectures": count_table(params)}, dataset="none (architecture only)", data_source="-",
        scale=f"exact counts, ImageNet nets at {params.image_size}x{params.image_size}, CIFAR nets at 32x32",
        seeds=[],
    )


def half_unit(reported: float) -> float:
    """Half a unit of the paper's last printed digit: it prints 0.27M but 1.7M and 19.4M."""
    return 0.005 if reported < 1 else 0.05


def params_claim(key: str, count: int, *, id: str, what: str) -> Claim:
    """A Table 6 parameter count (in M, to the paper's printed precision; exact at every scale)."""
    return number_claim(key, count / 1e6, at_paper_scale=True, tolerance=half_unit(paper.value(key) / 1e6),
                        lower_is_better=None, id=id, what=what, digits=3, per=1e6, kind="architecture")


def macs_claim(model: str, macs: float) -> Claim:
    """A Table 1 multiply-add count (in G, within 3%; exact at every scale)."""
    key = f"table1.macs.{model}"
    return number_claim(key, macs / 1e9, at_paper_scale=True, tolerance=MACS_TOLERANCE * (paper.value(key) / 1e9),
                        lower_is_better=None, id=f"table1_macs_{model}", what=f"{model} multiply-adds (G)",
                        ref="Table 1", digits=3, per=1e9, kind="architecture")


def claims_from(table: pd.DataFrame) -> list[Claim]:
    claims = []
    for row in table.itertuples():
        if row.paper_macs is not None and pd.notna(row.paper_macs):
            claims.append(macs_claim(row.model, row.macs))
        if row.paper_params is not None and pd.notna(row.paper_params):
            claims.append(params_claim(f"table6.params.{row.model.removeprefix('cifar_')}", row.params,
                                       id=f"table6_params_{row.model}", what=f"{row.model} parameters (M)"))
    return claims


def run(params: Params) -> Outcome:
    return run_experiment(params, measure, EXPERIMENT.claims)


#: This experiment as the runner reads it (resnetlib.experiments.declaration).
EXPERIMENT = Experiment(params=Params, measure=measure,
                        claims=lambda p, m: claims_from(m.tables["architectures"]))
