"""Fig. 1, Fig. 6 (left, middle) and Table 6: plain vs residual nets of growing depth.

The paper's claims: a deeper *plain* net has higher training error than a shallower one (the
degradation problem, Fig. 1 and Fig. 6 left); with identity shortcuts the deeper net has *lower*
error (Fig. 6 middle); Table 6 gives the test errors of ResNet-20 to 110 on CIFAR-10.
"""

from __future__ import annotations

import time
from functools import partial

import pandas as pd
from pydantic import Field, field_validator

from .. import paper
from ..models.cifar import blocks_per_stage
from ..report.verdicts import compare_number
from .base import Claim, write_results
from .training import (
    TrainingParams,
    data_source,
    final_errors,
    final_value,
    statement_claims,
    train,
    trained_enough,
)

#: Table 6 reports the best of 5 runs; mean +- std of ResNet-110 is 6.61 +- 0.16.
TABLE6_TOLERANCE = 0.5


class Params(TrainingParams):
    depths: list[int] = Field(default_factory=lambda: [20, 32], min_length=1, description="6n+2 depths")

    @field_validator("depths")
    @classmethod
    def _valid_depths(cls, v: list[int]) -> list[int]:
        for d in v:
            blocks_per_stage(d)
        return sorted(set(v))


def train_all(params: Params) -> pd.DataFrame:
    """Train plain and residual nets of every depth and seed; one row per evaluation."""
    rows = []
    for depth in params.depths:
        for kind in ("plain", "resnet"):
            for seed in params.seeds:
                result = train(params, f"cifar_{kind}{depth}", seed)
                for m in result.metrics:
                    rows.append({"kind": kind, "depth": depth, "seed": seed, "run_dir": str(result.run_dir), **m})
    return pd.DataFrame(rows)


def claims_from(params: Params, final: pd.DataFrame) -> list[Claim]:
    shallow, deep = min(params.depths), max(params.depths)
    measurable, why = trained_enough(params, params.depths)
    v = partial(final_value, final)
    claims = statement_claims([
        ("fig1_plain_degradation", "Fig. 1, Fig. 6 left",
         f"plain-{deep} has higher training error than plain-{shallow}",
         v("plain", deep, "train_error") - v("plain", shallow, "train_error")),
        ("fig6_resnet_deeper_lower_train_error", "Fig. 6 middle",
         f"ResNet-{deep} has lower training error than ResNet-{shallow}",
         v("resnet", shallow, "train_error") - v("resnet", deep, "train_error")),
        ("table6_resnet_deeper_lower_test_error", "Table 6",
         f"ResNet-{deep} has lower test error than ResNet-{shallow}",
         v("resnet", shallow, "test_error") - v("resnet", deep, "test_error")),
        ("fig6_residual_beats_plain", "Fig. 6 left vs middle",
         f"ResNet-{deep} has lower training error than plain-{deep}",
         v("plain", deep, "train_error") - v("resnet", deep, "train_error")),
    ], measurable=measurable, why=why)
    for depth in params.depths:
        key = f"table6.error.resnet{depth}"
        if key not in paper.REPORTED:
            continue
        ours = v("resnet", depth, "test_error_best")
        verdict, reason = compare_number(ours, paper.value(key), at_paper_scale=params.at_paper_scale(),
                                         tolerance=TABLE6_TOLERANCE)
        claims.append(Claim(id=f"table6_resnet{depth}_test_error", ref="Table 6",
                            what=f"ResNet-{depth} test error, best of {len(params.seeds)} seed(s) (%)",
                            ours=round(ours, 2), paper=paper.value(key), verdict=verdict, reason=reason))
    if 110 in params.depths and len(params.seeds) >= 2:
        ours = v("resnet", 110, "test_error")
        verdict, reason = compare_number(ours, paper.value("table6.error.resnet110_mean"),
                                         at_paper_scale=params.at_paper_scale(), tolerance=TABLE6_TOLERANCE)
        claims.append(Claim(id="table6_resnet110_mean_test_error", ref="Table 6",
                            what=f"ResNet-110 test error, mean of {len(params.seeds)} seeds (%)",
                            ours=round(ours, 2), paper=paper.value("table6.error.resnet110_mean"),
                            verdict=verdict, reason=reason))
    return claims


def run(params: Params) -> dict:
    start = time.perf_counter()
    curves = train_all(params)
    final = final_errors(curves)
    out = params.out_path()
    curves.to_csv(out / "curves.csv", index=False)
    final.to_csv(out / "final_errors.csv", index=False)
    source = data_source(curves.run_dir.iloc[0])
    return write_results(
        params, dataset=params.dataset, data_source=source, scale=params.scale_text(), seeds=params.seeds,
        claims=claims_from(params, final), wall_seconds=time.perf_counter() - start,
    )

