"""Fig. 7: standard deviations of the 3x3 layers' responses of trained plain nets and ResNets.

The paper (Sec. 4.2, "Analysis of Layer Responses") measures the std of each 3x3 layer's output after
BN and before the ReLU/addition, on the CIFAR-10 test set. Its claims: ResNets have generally smaller
responses than their plain counterparts (residual functions are closer to zero), and the deeper the
ResNet, the smaller the responses. The nets are the ones the degradation notebook trained: with the
same training parameters the run cache hands them over instead of training them again.
"""

from __future__ import annotations

import pandas as pd
from pydantic import Field

from .. import data as datasets
from ..analysis import layer_response_std
from ..train import TrainConfig, cached_fit
from .base import Claim, Measured, Outcome, run_experiment, statement_claim
from .cifar_degradation import CifarDepths
from .training import MIN_EPOCHS, TrainingParams, data_source, net_label, train_config

#: A claimed difference in mean response std must exceed this many percent to count.
MARGIN_PERCENT = 5.0


class Params(TrainingParams):
    plain_depths: CifarDepths = Field(default_factory=lambda: [20, 32], description="paper: 20, 56")
    resnet_depths: CifarDepths = Field(default_factory=lambda: [20, 32], description="paper: 20, 56, 110")


def nets(params: Params) -> list[tuple[str, int, int]]:
    """(kind, depth, seed) of every net whose responses Fig. 7 compares."""
    kinds = [("plain", d) for d in params.plain_depths] + [("resnet", d) for d in params.resnet_depths]
    return [(kind, depth, seed) for kind, depth in kinds for seed in params.seeds]


def planned_runs(params: Params) -> list[TrainConfig]:
    """The configurations ``measure`` trains (the run queue of ``reproduce --jobs`` trains them first)."""
    return [train_config(params, f"cifar_{kind}{depth}", seed) for kind, depth, seed in nets(params)]


def measure_responses(params: Params) -> pd.DataFrame:
    """One row per (model, seed, layer): the response std on the test set."""
    rows = []
    test_batches = None
    for (kind, depth, seed), config in zip(nets(params), planned_runs(params)):
        result = cached_fit(config, params.runs_path())
        test_batches = test_batches or _test_batches(params, seed)  # reuses the degradation notebook's nets
        model = result.load_model("cpu")
        for layer, std in enumerate(layer_response_std(model, test_batches()), start=1):
            rows.append({"model": net_label(kind, depth), "kind": kind, "depth": depth, "seed": seed,
                         "layer": layer, "std": std, "run_dir": str(result.run_dir)})
    return pd.DataFrame(rows)


def _test_batches(params: Params, seed: int):
    d = params.base_config().data
    data = datasets.load(d.name, d.root or None, train_size=d.train_size, val_size=d.val_size,
                         test_size=d.test_size, seed=seed)
    batches = datasets.DeviceBatches(data.test, data.mean, min(500, len(data.test)), seed, "cpu", augment=False)
    return lambda: batches.eval_batches(500)


def measure(params: Params) -> Measured:
    responses = measure_responses(params)
    mean_over_seeds = responses.groupby(["model", "kind", "depth", "layer"], as_index=False, sort=False)["std"].mean()
    summary = mean_over_seeds.groupby("model", sort=False)["std"].agg(["mean", "max", "min"]).reset_index()
    return Measured(
        tables={"responses": mean_over_seeds, "response_summary": summary}, dataset=params.family().name,
        data_source=data_source(responses.run_dir.iloc[0]), seeds=params.seeds,
        scale=params.scale_text() + "; responses on the test set", scratch={"per_seed": responses},
        extra={"mean_std": {m: round(float(v), 4) for m, v in zip(summary["model"], summary["mean"])}},
    )


def _mean_std(responses: pd.DataFrame, kind: str, depth: int) -> float:
    return float(responses[(responses.kind == kind) & (responses.depth == depth)]["std"].mean())


def comparisons(params: Params) -> list[tuple[tuple[str, int], tuple[str, int]]]:
    """(smaller, larger-by-the-paper) pairs of trained nets: ResNet vs plain, deeper vs shallower ResNet."""
    same_depth = sorted(set(params.plain_depths) & set(params.resnet_depths))
    deeper = zip(params.resnet_depths, params.resnet_depths[1:])
    return [(("resnet", d), ("plain", d)) for d in same_depth] + [(("resnet", b), ("resnet", a)) for a, b in deeper]


def claims_from(params: Params, responses: pd.DataFrame) -> list[Claim]:
    measurable = params.real_data() and params.epochs() >= MIN_EPOCHS
    why = f"needs trained nets: real data and >= {MIN_EPOCHS:g} epochs (this run: {params.family().name}, " \
          f"{params.epochs():.1f} epochs); at initialisation BN makes every response std about 1"
    claims = []
    for (kind_a, depth_a), (kind_b, depth_b) in comparisons(params):
        a, b = _mean_std(responses, kind_a, depth_a), _mean_std(responses, kind_b, depth_b)
        name_a, name_b = net_label(kind_a, depth_a), net_label(kind_b, depth_b)
        claims.append(statement_claim(
            f"fig7_resnet{depth_a}_smaller_than_{kind_b}{depth_b}", "Fig. 7",
            f"{name_a} responses are smaller than {name_b}'s (mean std {a:.3f} vs {b:.3f})",
            100.0 * (1.0 - a / b), margin=MARGIN_PERCENT, measurable=measurable, why=why,
            what=f"{name_a} vs {name_b}: mean response std smaller by (%)", digits=1))
    return claims


def run(params: Params) -> Outcome:
    return run_experiment(params, measure, lambda p, m: claims_from(p, m.scratch["per_seed"]))
