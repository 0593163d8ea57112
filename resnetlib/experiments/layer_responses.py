"""Fig. 7: standard deviations of the 3x3 layers' responses of trained plain nets and ResNets.

The paper (Sec. 4.2, "Analysis of Layer Responses") measures the std of each 3x3 layer's output after
BN and before the ReLU/addition, on the CIFAR-10 test set. Its claims: ResNets have generally smaller
responses than their plain counterparts (residual functions are closer to zero), and the deeper the
ResNet, the smaller the responses. The nets are the ones the degradation notebook trained: with the
same training parameters the run cache hands them over instead of training them again.

The paper does not say over what the std is taken, and the verdict can depend on it, so every table has
a ``definition`` column and every comparison is read under both (``analysis.responses.DEFINITIONS``): the
std over the whole response tensor (``whole``) and each channel's std averaged over channels
(``per_channel``, where BN's per-channel offsets do not count as response). The two are readings of one
claim, not two claims: its verdict needs both to agree (``claims.readings_claim``).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from pydantic import Field

from .. import data as datasets
from ..analysis.responses import DEFINITIONS, layer_response_stds
from ..claims import Claim, Gate, readings_claim, statement_claim
from ..claims.rules import MARGIN_RESPONSE_PERCENT, MAX_RESPONSE_STD, MIN_EPOCHS
from ..train import TrainConfig, cached_fit
from .base import Measured, Outcome, run_experiment
from .cifar_degradation import CifarDepths
from .training import (
    TrainingParams,
    budget_of,
    data_source,
    metric_rows,
    net_label,
    train_config,
    training_gates,
)
from .declaration import Experiment


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


def measure_responses(params: Params) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per (model, seed, definition, layer): the response std on the test set; and the training
    curves of the nets measured (for the training gates)."""
    rows, curves = [], []
    test_batches = None
    for (kind, depth, seed), config in zip(nets(params), planned_runs(params)):
        result = cached_fit(config, params.runs_path())
        test_batches = test_batches or _test_batches(params, seed)  # reuses the degradation notebook's nets
        curves += metric_rows(result, kind=kind, depth=depth, seed=seed)
        labels = {"model": net_label(kind, depth), "kind": kind, "depth": depth, "seed": seed}
        rows += _response_rows(layer_response_stds(result.load_model("cpu"), test_batches()), labels,
                               str(result.run_dir))
    return pd.DataFrame(rows), pd.DataFrame(curves)


def _response_rows(stds: dict[str, list[float]], labels: dict, run_dir: str) -> list[dict]:
    return [{**labels, "definition": definition, "layer": layer, "std": std, "run_dir": run_dir}
            for definition in DEFINITIONS for layer, std in enumerate(stds[definition], start=1)]


def _test_batches(params: Params, seed: int):
    d = params.base_config().data
    data = datasets.load(d.name, d.root or None, train_size=d.train_size, val_size=d.val_size,
                         test_size=d.test_size, seed=seed, image_size=d.image_size)
    batches = datasets.DeviceBatches(data.test, data.mean, min(500, len(data.test)), seed, "cpu", augment=False)
    return lambda: batches.eval_batches(500)


def measure(params: Params) -> Measured:
    responses, curves = measure_responses(params)
    keys = ["model", "kind", "depth", "definition", "layer"]
    mean_over_seeds = responses.groupby(keys, as_index=False, sort=False)["std"].mean()
    summary = mean_over_seeds.groupby(["model", "definition"], sort=False)["std"].agg(["mean", "max", "min"])
    summary = summary.reset_index()
    return Measured(
        tables={"responses": mean_over_seeds, "response_summary": summary}, dataset=params.family().name,
        data_source=data_source(responses.run_dir.iloc[0]), seeds=params.seeds,
        scale=params.scale_text() + "; responses on the test set", scratch={"per_seed": responses, "curves": curves},
        extra={"mean_std": {d: {m: round(float(v), 4) for m, v in zip(part["model"], part["mean"])}
                            for d, part in summary.groupby("definition", sort=False)}},
    )


def per_seed_mean_std(responses: pd.DataFrame, kind: str, depth: int, definition: str) -> pd.Series:
    """Mean over layers of the response std of each seed's net, indexed by seed."""
    part = responses[(responses.kind == kind) & (responses.depth == depth) & (responses.definition == definition)]
    return part.groupby("seed")["std"].mean()


def comparisons(params: Params) -> list[tuple[tuple[str, int], tuple[str, int]]]:
    """(smaller, larger-by-the-paper) pairs of trained nets: ResNet vs plain, deeper vs shallower ResNet."""
    same_depth = sorted(set(params.plain_depths) & set(params.resnet_depths))
    deeper = zip(params.resnet_depths, params.resnet_depths[1:])
    return [(("resnet", d), ("plain", d)) for d in same_depth] + [(("resnet", b), ("resnet", a)) for a, b in deeper]


def claims_from(params: Params, responses: pd.DataFrame, curves: pd.DataFrame) -> list[Claim]:
    """One claim per Fig. 7 comparison, read under both std definitions: per seed, how much smaller (%) the
    first net's mean response std is. Both nets must have trained; "the deeper ResNet has smaller
    responses" is about where the nets end (``ends_better``)."""
    measurable = params.real_data() and params.epochs() >= MIN_EPOCHS
    why = f"needs trained nets: real data and >= {MIN_EPOCHS:g} epochs (this run: {params.family().name}, " \
          f"{params.epochs():.1f} epochs); at initialisation BN makes every response std about 1"
    claims = []
    for a, b in comparisons(params):
        nets = {net_label(*n): {"kind": n[0], "depth": n[1]} for n in (a, b)}
        gates = training_gates(params, curves, nets)
        readings = [(d, _response_claim(params, responses, a, b, d, measurable, why,
                                        gates + response_gates(responses, (a, b), d))) for d in DEFINITIONS]
        claims.append(readings_claim(
            f"fig7_resnet{a[1]}_smaller_than_{b[0]}{b[1]}", f"{net_label(*a)} vs {net_label(*b)}: mean response std "
            f"smaller by (%), read as whole-tensor and per-channel std", readings))
    return claims


def response_gates(responses: pd.DataFrame, nets: Sequence[tuple[str, int]], definition: str) -> list[Gate]:
    """Every layer's response std of each net is finite, above 0 and below ``MAX_RESPONSE_STD``; otherwise
    the comparison is not measurable (how well a net trained is never a notebook failure)."""
    gates = []
    for kind, depth in nets:
        part = responses[(responses.kind == kind) & (responses.depth == depth) & (responses.definition == definition)]
        bad = part[~part["std"].between(0, MAX_RESPONSE_STD, inclusive="neither")]
        reason = "" if bad.empty else (
            f"{net_label(kind, depth)}: {len(bad)} of {len(part)} layer responses have a std outside (0, "
            f"{MAX_RESPONSE_STD:g}) (e.g. layer {bad.layer.iloc[0]}, seed {bad.seed.iloc[0]}: {bad['std'].iloc[0]:.3g}):"
            " not a trained net's responses")
        gates.append(Gate(bad.empty, reason))
    return gates


def _response_claim(params: Params, responses: pd.DataFrame, a: tuple[str, int], b: tuple[str, int],
                    definition: str, measurable: bool, why: str, gates: list[Gate]) -> Claim:
    sa, sb = (per_seed_mean_std(responses, *net, definition) for net in (a, b))
    seeds = sorted(set(sa.index) & set(sb.index))
    effects = [100.0 * (1.0 - sa[s] / sb[s]) for s in seeds]
    name_a, name_b = net_label(*a), net_label(*b)
    return statement_claim(
        f"fig7_resnet{a[1]}_smaller_than_{b[0]}{b[1]}_{definition}", "Fig. 7",
        f"{name_a} responses are smaller than {name_b}'s, {definition} std (mean std {sa.mean():.3f} vs "
        f"{sb.mean():.3f})", effects, margin=MARGIN_RESPONSE_PERCENT, measurable=measurable, why=why, gates=gates,
        what=f"{name_a} vs {name_b}: mean response std ({definition.replace('_', '-')}) smaller by (%)", digits=1,
        at_paper_scale=params.at_paper_scale(), ends_better=a[0] == b[0], budget=budget_of(params))


def run(params: Params) -> Outcome:
    return run_experiment(params, measure, EXPERIMENT.claims)


#: This experiment as the runner reads it (resnetlib.experiments.declaration).
EXPERIMENT = Experiment(params=Params, measure=measure, planned_runs=planned_runs,
                        claims=lambda p, m: claims_from(p, m.scratch["per_seed"], m.scratch["curves"]))
