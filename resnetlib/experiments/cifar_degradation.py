"""Fig. 1, Fig. 6 (left, middle) and Table 6: plain vs residual nets of growing depth.

The paper's claims: a deeper *plain* net has higher training error than a shallower one (the
degradation problem, Fig. 1 and Fig. 6 left); with identity shortcuts the deeper net has *lower*
error (Fig. 6 middle); Table 6 gives the test errors of ResNet-20 to 110 on CIFAR-10.
"""

from __future__ import annotations

from typing import Annotated

import pandas as pd
from pydantic import AfterValidator, Field

from .. import paper
from ..models.cifar import blocks_per_stage
from ..train import TrainConfig
from ..claims import Claim, number_claim
from ..claims.rules import TOLERANCE_TABLE6 as TABLE6_TOLERANCE
from .base import Measured, Outcome, run_experiment
from .training import (
    Lower,
    TrainingParams,
    comparison_claims,
    data_source,
    final_errors,
    final_value,
    metric_rows,
    train,
    train_config,
)
from .declaration import Experiment

#: Table 6's one row that is a best of several runs: ResNet-110, "best (mean +- std)" of 5 runs; the
#: other depths are single numbers, compared with our mean over seeds.
BEST_OF_RUNS_DEPTH = 110


def six_n_plus_two(depth: int) -> int:
    """A CIFAR depth: 6n+2 layers (Sec. 4.2)."""
    blocks_per_stage(depth)
    return depth


#: A CIFAR net's depth, and a sorted set of them.
CifarDepth = Annotated[int, AfterValidator(six_n_plus_two)]
CifarDepths = Annotated[list[CifarDepth], AfterValidator(lambda v: sorted(set(v)))]


class Params(TrainingParams):
    depths: CifarDepths = Field(default_factory=lambda: [20, 32], min_length=1, description="6n+2 depths")
    resnet_depths: CifarDepths | None = Field(
        default=None, description="residual nets' depths; None (YAML null): the same as depths")


def depths_of(params: Params, kind: str) -> list[int]:
    """The depths trained of one kind: ``depths`` for plain nets; ``resnet_depths`` (default ``depths``) for
    residual ones, so a profile sized by cost can leave out a net whose claims it cannot decide."""
    if kind == "resnet" and params.resnet_depths is not None:
        return params.resnet_depths
    return params.depths


def nets(params: Params) -> list[tuple[str, int, int]]:
    """(kind, depth, seed) of every run: plain and residual nets of every depth (Fig. 6 left, middle)."""
    return [(kind, depth, seed) for depth in sorted({*params.depths, *depths_of(params, "resnet")})
            for kind in ("plain", "resnet") if depth in depths_of(params, kind) for seed in params.seeds]


def planned_runs(params: Params) -> list[TrainConfig]:
    """The configurations ``measure`` trains (the run queue of ``reproduce --jobs`` trains them first)."""
    return [train_config(params, f"cifar_{kind}{depth}", seed) for kind, depth, seed in nets(params)]


def train_all(params: Params) -> pd.DataFrame:
    """Train plain and residual nets of every depth and seed; one row per evaluation."""
    rows = []
    for kind, depth, seed in nets(params):
        result = train(params, f"cifar_{kind}{depth}", seed)
        rows += metric_rows(result, kind=kind, depth=depth, seed=seed)
    return pd.DataFrame(rows)


def measure(params: Params) -> Measured:
    curves = train_all(params)
    return Measured(
        tables={"curves": curves, "final_errors": final_errors(curves)}, dataset=params.family().name,
        data_source=data_source(curves.run_dir.iloc[0]), scale=params.scale_text(), seeds=params.seeds,
    )


def table6_error_claims(params: TrainingParams, final: pd.DataFrame, depths: list[int], *,
                        with_mean: bool = True) -> list[Claim]:
    """Table 6's test errors of the ResNets we trained: ResNet-110 as the best over seeds (the paper's
    6.43 is the best of 5 runs) and, ``with_mean``, its mean over seeds (6.61 +- 0.16); every other depth as
    our mean over seeds (the paper gives one number, not a best of several)."""
    n = len(params.seeds)
    claims = []
    for d in depths:
        if f"table6.error.resnet{d}" not in paper.REPORTED:
            continue
        best = d == BEST_OF_RUNS_DEPTH
        column, how = ("test_error_best", f"best of {n} seed(s), the paper's best of 5") if best else (
            "test_error", f"mean of {n} seed(s)")
        spread = None if best else final_value(final, "resnet", d, "test_error_std")
        claims.append(number_claim(
            f"table6.error.resnet{d}", final_value(final, "resnet", d, column), at_paper_scale=params.at_paper_scale(),
            tolerance=TABLE6_TOLERANCE, n_seeds=n, spread=spread, id=f"table6_resnet{d}_test_error",
            what=f"ResNet-{d} test error, {how} (%)"))
    if with_mean and BEST_OF_RUNS_DEPTH in depths and n >= 2:
        claims.append(number_claim(
            "table6.error.resnet110_mean", final_value(final, "resnet", 110, "test_error"),
            at_paper_scale=params.at_paper_scale(), tolerance=TABLE6_TOLERANCE, n_seeds=n,
            spread=final_value(final, "resnet", 110, "test_error_std"),
            id="table6_resnet110_mean_test_error", what=f"ResNet-110 test error, mean of {n} seeds (%)"))
    return claims


def statements(params: Params) -> list[Lower]:
    """Fig. 1/6 statements between the shallowest and deepest net of each kind, those whose two nets train
    here (a profile that leaves out ResNet-56 states neither of its comparisons)."""
    plain, resnet = depths_of(params, "plain"), depths_of(params, "resnet")
    s, d = min(plain), max(plain)
    rs, rd = min(resnet), max(resnet)
    candidates = [
        Lower("fig1_plain_degradation", "Fig. 1, Fig. 6 left", ("plain", d), ("plain", s), "train_error",
              "training error", higher=True),
        Lower("fig6_resnet_deeper_lower_train_error", "Fig. 6 middle", ("resnet", rd), ("resnet", rs), "train_error",
              "training error", ends_better=True),
        Lower("table6_resnet_deeper_lower_test_error", "Table 6", ("resnet", rd), ("resnet", rs), "test_error",
              "test error", ends_better=True),
        Lower("fig6_residual_beats_plain", "Fig. 6 left vs middle", ("resnet", d), ("plain", d), "train_error",
              "training error"),
    ]
    trained = {(kind, depth) for kind, depth, _ in nets(params)}
    return [c for c in candidates if c.a != c.b and c.a in trained and c.b in trained]


def claims_from(params: Params, curves: pd.DataFrame) -> list[Claim]:
    """Fig. 1/6 statements from the per-seed final errors (degradation and residual-vs-plain at an equal
    budget; deeper-ResNet-is-better is about where the nets end: ``ends_better``), then Table 6's numbers."""
    return comparison_claims(params, curves, params.depths, statements(params)) + table6_error_claims(
        params, final_errors(curves), depths_of(params, "resnet"))


def run(params: Params) -> Outcome:
    return run_experiment(params, measure, EXPERIMENT.claims)


#: This experiment as the runner reads it (resnetlib.experiments.declaration).
EXPERIMENT = Experiment(params=Params, measure=measure, planned_runs=planned_runs,
                        claims=lambda p, m: claims_from(p, m.tables["curves"]))
