"""Fig. 7: standard deviations of the 3x3 layers' responses of trained plain nets and ResNets.

The paper (Sec. 4.2, "Analysis of Layer Responses") measures the std of each 3x3 layer's output after
BN and before the ReLU/addition, on the CIFAR-10 test set. Its claims: ResNets have generally smaller
responses than their plain counterparts (residual functions are closer to zero), and the deeper the
ResNet, the smaller the responses. The nets are the ones the degradation notebook trained: with the
same training parameters the run cache hands them over instead of training them again.
"""

from __future__ import annotations

import time

import pandas as pd
from pydantic import Field, field_validator

from .. import data as datasets
from ..analysis import layer_response_std
from ..models.cifar import blocks_per_stage
from ..report.verdicts import judge_statement
from ..train import cached_fit
from .base import Claim, write_results
from .training import MIN_EPOCHS, TrainingParams, data_source, train_config

#: A claimed difference in mean response std must exceed this many percent to count.
MARGIN_PERCENT = 5.0


class Params(TrainingParams):
    plain_depths: list[int] = Field(default_factory=lambda: [20, 32], description="paper: 20, 56")
    resnet_depths: list[int] = Field(default_factory=lambda: [20, 32], description="paper: 20, 56, 110")

    @field_validator("plain_depths", "resnet_depths")
    @classmethod
    def _valid_depths(cls, v: list[int]) -> list[int]:
        for d in v:
            blocks_per_stage(d)
        return sorted(set(v))


def measure(params: Params) -> pd.DataFrame:
    """One row per (model, seed, layer): the response std on the test set."""
    rows = []
    nets = [("plain", d) for d in params.plain_depths] + [("resnet", d) for d in params.resnet_depths]
    test_batches = None
    for kind, depth in nets:
        for seed in params.seeds:
            config = train_config(params, f"cifar_{kind}{depth}", seed)
            result = cached_fit(config, params.runs_path())  # reuses the degradation notebook's nets
            if test_batches is None:
                test_batches = _test_batches(params, seed)
            model = result.load_model("cpu")
            for layer, std in enumerate(layer_response_std(model, test_batches()), start=1):
                rows.append({"model": f"{'plain' if kind == 'plain' else 'ResNet'}-{depth}", "kind": kind,
                             "depth": depth, "seed": seed, "layer": layer, "std": std,
                             "run_dir": str(result.run_dir)})
    return pd.DataFrame(rows)


def _test_batches(params: Params, seed: int):
    d = datasets.load(params.dataset, params.data_root or None, train_size=params.train_size,
                      val_size=params.val_size, test_size=params.test_size, seed=seed)
    batches = datasets.DeviceBatches(d.test, d.mean, min(500, len(d.test)), seed, "cpu", augment=False)
    return lambda: batches.eval_batches(500)


def _mean_std(responses: pd.DataFrame, kind: str, depth: int) -> float:
    return float(responses[(responses.kind == kind) & (responses.depth == depth)]["std"].mean())


def claims_from(params: Params, responses: pd.DataFrame) -> list[Claim]:
    measurable = params.real_data() and params.epochs() >= MIN_EPOCHS
    why = f"needs trained nets: real data and >= {MIN_EPOCHS:g} epochs (this run: {params.dataset}, " \
          f"{params.epochs():.1f} epochs); at initialisation BN makes every response std about 1"
    comparisons = [  # (smaller, larger-by-the-paper): each a (kind, depth) of trained nets
        (("resnet", d), ("plain", d)) for d in sorted(set(params.plain_depths) & set(params.resnet_depths))
    ] + [
        (("resnet", deep), ("resnet", shallow))
        for shallow, deep in zip(params.resnet_depths, params.resnet_depths[1:])
    ]
    claims = []
    for (kind_a, depth_a), (kind_b, depth_b) in comparisons:
        a, b = _mean_std(responses, kind_a, depth_a), _mean_std(responses, kind_b, depth_b)
        name_a, name_b = f"ResNet-{depth_a}", f"{'plain' if kind_b == 'plain' else 'ResNet'}-{depth_b}"
        effect = 100.0 * (1.0 - a / b)
        statement = f"{name_a} responses are smaller than {name_b}'s (mean std {a:.3f} vs {b:.3f})"
        verdict, reason = judge_statement(effect, margin=MARGIN_PERCENT, measurable=measurable,
                                          statement=statement, why_not_measurable=why)
        claims.append(Claim(id=f"fig7_resnet{depth_a}_smaller_than_{kind_b}{depth_b}",
                            ref="Fig. 7", what=f"{name_a} vs {name_b}: mean response std smaller by (%)",
                            ours=round(effect, 1), paper="yes", verdict=verdict, reason=reason))
    return claims


def run(params: Params) -> dict:
    start = time.perf_counter()
    responses = measure(params)
    mean_over_seeds = responses.groupby(["model", "kind", "depth", "layer"], as_index=False, sort=False)["std"].mean()
    mean_over_seeds.to_csv(params.out_path() / "responses.csv", index=False)
    summary = mean_over_seeds.groupby("model", sort=False)["std"].agg(["mean", "max", "min"]).reset_index()
    summary.to_csv(params.out_path() / "response_summary.csv", index=False)
    return write_results(
        params, dataset=params.dataset, data_source=data_source(responses.run_dir.iloc[0]),
        scale=params.scale_text() + "; responses on the test set", seeds=params.seeds,
        claims=claims_from(params, responses), wall_seconds=time.perf_counter() - start,
        extra={"mean_std": {m: round(float(v), 4) for m, v in zip(summary["model"], summary["mean"])}},
    )
