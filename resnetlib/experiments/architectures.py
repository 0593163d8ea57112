"""Table 1 and Table 6 recomputed: depth, parameters and multiply-adds of every network.

These are properties of the architectures alone, so they are measurable at every scale: the verdicts
compare our counts with the paper's (Table 1 FLOPs within 3%, Table 6 parameters to the paper's
rounding).
"""

from __future__ import annotations

import time

import pandas as pd
import torch
from pydantic import Field

from .. import models, paper
from ..analysis import count_macs, count_params, count_weighted_layers
from ..report.verdicts import compare_number
from .base import Claim, ExperimentParams, write_results

MACS_TOLERANCE = 0.03  # relative; Table 1 prints 2-3 significant digits


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


def measure(params: Params) -> pd.DataFrame:
    """One row per network: weighted layers, parameters and multiply-adds, with the paper's values."""
    rows = []
    size = params.image_size
    names = list(params.imagenet_models) + (["vgg19"] if params.include_vgg19 else [])
    for name in names:
        row = _row(name, (3, size, size))
        key = f"table1.macs.{name}"
        row["paper_macs"] = paper.value(key) if key in paper.REPORTED and size == 224 else None
        row["paper_params"] = None
        rows.append(row)
    for depth in params.cifar_depths:
        row = _row(f"cifar_resnet{depth}", (3, 32, 32))
        key = f"table6.params.resnet{depth}"
        row["paper_params"] = paper.value(key) if key in paper.REPORTED else None
        row["paper_macs"] = None
        rows.append(row)
    return pd.DataFrame(rows)


def claims_from(table: pd.DataFrame) -> list[Claim]:
    claims = []
    for row in table.itertuples():
        if row.paper_macs is not None and pd.notna(row.paper_macs):
            ours, ref = row.macs / 1e9, row.paper_macs / 1e9
            verdict, reason = compare_number(
                ours, ref, at_paper_scale=True, tolerance=MACS_TOLERANCE * ref, lower_is_better=None
            )
            claims.append(Claim(id=f"table1_macs_{row.model}", ref="Table 1", what=f"{row.model} multiply-adds (G)",
                                ours=round(ours, 3), paper=ref, verdict=verdict, reason=reason))
        if row.paper_params is not None and pd.notna(row.paper_params):
            ours, ref = row.params / 1e6, row.paper_params / 1e6
            half_unit = 0.005 if ref < 1 else 0.05  # the paper prints 0.27M but 1.7M and 19.4M
            verdict, reason = compare_number(ours, ref, at_paper_scale=True, tolerance=half_unit, lower_is_better=None)
            claims.append(Claim(id=f"table6_params_{row.model}", ref="Table 6", what=f"{row.model} parameters (M)",
                                ours=round(ours, 3), paper=ref, verdict=verdict, reason=reason))
    return claims


def run(params: Params) -> dict:
    start = time.perf_counter()
    table = measure(params)
    table.to_csv(params.out_path() / "architectures.csv", index=False)
    return write_results(
        params,
        dataset="none (architecture only)",
        data_source="-",
        scale=f"exact counts, ImageNet nets at {params.image_size}x{params.image_size}, CIFAR nets at 32x32",
        seeds=[],
        claims=claims_from(table),
        wall_seconds=time.perf_counter() - start,
    )
