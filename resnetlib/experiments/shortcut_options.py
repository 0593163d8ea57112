"""Table 3: identity vs projection shortcuts (options A, B, C) at equal depth, beside the plain net.

Sec. 3.3 and 4.1: (A) zero-padding shortcuts where the dimensions grow, all shortcuts parameter-free;
(B) projection shortcuts where the dimensions grow, identity elsewhere; (C) projections everywhere.
The paper's claims: all three are considerably better than the plain counterpart; B is slightly better
than A (the zero-padded dimensions of A learn no residual); C is marginally better than B (attributed to
the extra parameters of its thirteen extra projections), so projections are "not essential".

The paper trains ResNet-34 on ImageNet (Table 3 reports 10-crop top-1 validation error). The nets follow
the data family of ``train.data``: class folders (``imagefolder``, with an optional ``stand_in``) train the
Table 1 nets; a data set on the device trains the CIFAR-style nets of Sec. 4.2 (the CPU profiles, on
Fashion-MNIST): the option A net and the plain net are then the very runs ``cifar_degradation`` trains
with the same training parameters (shared through the run cache). Parameter counts are properties of the
architectures, exact at every scale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import torch
from pydantic import Field, model_validator
from torch import nn

from .. import models, paper
from ..analysis import count_params
from ..models.cifar import blocks_per_stage
from ..models.imagenet import default_shortcut
from ..train import TrainConfig
from ..train.config import FolderData
from ..claims import Claim, architecture_claim, compare_claim, difference_se, number_claim, statement_claim
from ..claims.rules import MARGIN_POINTS as MARGIN
from ..claims.rules import MARGIN_TABLE3_ORDER as ORDER_MARGIN
from ..claims.rules import TOLERANCE_IMAGENET_TOP1 as TABLE3_TOLERANCE
from .base import Measured, Outcome, run_experiment
from .class_folders import ClassFolderParams, StandIn, class_folders, folder_data, folder_source
from .class_folders import table1_depth
from .training import (
    Net,
    budget_of,
    net_rows,
    data_source,
    metric_rows,
    pair_sampling_se,
    paired_effects,
    train,
    train_config,
    trained_enough,
    training_gates,
)
from .training import final_errors as final_errors_by
from .declaration import Experiment

OPTIONS = ("A", "B", "C")
#: Table 3's nets: ResNet-34 and plain-34 on ImageNet.
TABLE3_DEPTH = 34
#: The depth from which the plain net degrades, per model family: Table 3's claim "A, B, C are all
#: considerably better than the plain counterpart" is the paper's at 34 layers, where plain-34 is worse
#: than plain-18 (Table 2); on the CIFAR-style nets the budget study shows plain-56 degrading against
#: plain-20. At shallower depth the paper says instead (Sec. 4.1, 18 layers) that plain and residual nets
#: are comparably accurate and the ResNet converges faster.
DEGRADING_DEPTH = {"imagenet": TABLE3_DEPTH, "cifar": 56}
#: "Faster convergence" is read from the training error at this fraction of the budget.
EARLY_FRACTION = 0.25


class Params(ClassFolderParams):
    """Shortcut options at one depth; the nets follow the data family (class folders: Table 1 nets)."""

    TRAIN_DEFAULTS: ClassVar[dict[str, Any]] = {
        "data": {"name": "fashion_mnist", "train_size": 512, "test_size": 64},
        "optim": {"batch_size": 32, "iterations": 16, "milestones": [0.5, 0.75]},
        "eval_every": 8,
    }
    DATA_FAMILIES: ClassVar[tuple[str, ...]] = ("device", "imagefolder")

    stand_in: StandIn | None = Field(None, description="class-folder runs only: folders exported from this small data set; "
                          "None: ImageNet folders at data_root")
    depth: int = Field(20, description="CIFAR nets: 6n+2 layers; class folders: 18, 34, 50, 101 or 152 (paper: 34)")

    @model_validator(mode="after")
    def _depth_fits_family(self):
        if self.model_family() == "cifar":
            blocks_per_stage(self.depth)
        else:
            table1_depth(self.depth)
        return self

    def model_family(self) -> str:
        """``imagenet`` (Table 1 nets) on class folders, ``cifar`` (Sec. 4.2 nets) on a data set on the device."""
        return "imagenet" if isinstance(self.base_config().data, FolderData) else "cifar"

    def at_paper_scale(self) -> bool:
        """Table 3's setting: ResNet-34 on ImageNet with the Sec. 3.4 protocol."""
        return self.model_family() == "imagenet" and self.depth == TABLE3_DEPTH and self.family().at_paper_scale()

    def scale_text(self) -> str:
        return f"{self.family_label()} nets of depth {self.depth}; {self.family().scale_text()}"

    def family_label(self) -> str:
        return "CIFAR-style (Sec. 4.2)" if self.model_family() == "cifar" else "ImageNet-style (Table 1)"

    def model_names(self) -> tuple[str, str]:
        """(residual, plain) registry names."""
        if self.model_family() == "cifar":
            return f"cifar_resnet{self.depth}", f"cifar_plain{self.depth}"
        return f"resnet{self.depth}", f"plain{self.depth}"

    def default_option(self) -> str:
        """The option the residual net is built with when none is given (A for CIFAR and 18/34 layers)."""
        return "A" if self.model_family() == "cifar" else default_shortcut(self.depth)


def paper_top1() -> dict[str, float]:
    """Table 3's 10-crop top-1 errors of plain-34 and ResNet-34 A/B/C, keyed by option."""
    return {"plain": paper.value(f"table3.top1.plain{TABLE3_DEPTH}"),
            **{o: paper.value(f"table3.top1.resnet{TABLE3_DEPTH}_{o}") for o in OPTIONS}}


# ------------------------------------------------------------------------------------- parameter counts
def projection_shortcuts(net: nn.Module) -> int:
    """Number of projection (1x1 conv) shortcuts: the ``downsample`` modules holding a convolution."""
    return sum(
        1 for name, m in net.named_modules()
        if name.endswith("downsample") and any(isinstance(c, nn.Conv2d) for c in m.modules())
    )


def option_counts(resnet: str, plain: str, label: str, **build_options) -> pd.DataFrame:
    """Parameters of the plain net and of the residual net with each option; built on the meta device."""
    rows = []
    with torch.device("meta"):
        for option in ("plain", *OPTIONS):
            net = models.build(plain, **build_options) if option == "plain" else models.build(
                resnet, shortcut=option, **build_options)
            rows.append({"net": label, "option": option, "params": count_params(net),
                         "projection_shortcuts": projection_shortcuts(net)})
    table = pd.DataFrame(rows)
    table["extra_params_vs_plain"] = table["params"] - int(table.loc[table.option == "plain", "params"].iloc[0])
    return table


def table3_counts() -> pd.DataFrame:
    """The Table 3 nets: plain-34 and ResNet-34 A/B/C with 1000 classes."""
    return option_counts(f"resnet{TABLE3_DEPTH}", f"plain{TABLE3_DEPTH}",
                         f"ResNet-{TABLE3_DEPTH} (Table 3, 1000 classes)")


# ------------------------------------------------------------------------------------------------ training
def train_all(params: Params) -> tuple[pd.DataFrame, dict[str, int], Path | None]:
    """Train the plain net and the residual net with options A, B, C for every seed.

    Returns one row per evaluation, the input (channels, classes) the nets were built for, and the
    class folders they trained on (None for the CIFAR-style nets).
    """
    root = class_folders(params) if params.model_family() == "imagenet" else None
    data = folder_data(params, root) if root is not None else None
    rows, shape = [], {}
    for option, name, opts, seed in nets(params):
        result = train(params, name, seed, data=data, **opts)
        shape = {"in_channels": result.summary["in_channels"], "num_classes": result.summary["num_classes"]}
        rows += metric_rows(result, option=option, kind="plain" if option == "plain" else "resnet",
                            depth=params.depth, seed=seed)
    return pd.DataFrame(rows), shape, root


def nets(params: Params) -> list[tuple[str, str, dict[str, Any], int]]:
    """(option, model name, model options, seed) of every run: the plain net and options A, B, C."""
    resnet, plain = params.model_names()
    out = []
    for option in ("plain", *OPTIONS):
        # The default option is not passed, so these runs share the cache with the other notebooks' nets.
        opts = {} if option in ("plain", params.default_option()) else {"shortcut": option}
        out += [(option, plain if option == "plain" else resnet, opts, seed) for seed in params.seeds]
    return out


def planned_runs(params: Params) -> list[TrainConfig]:
    """The CIFAR-style configurations ``measure`` trains, for the run queue of ``reproduce --jobs``; none for
    the ImageNet-style nets, whose class folders are exported by the notebook itself (they train there)."""
    if params.model_family() == "imagenet":
        return []
    return [train_config(params, name, seed, **opts) for _, name, opts, seed in nets(params)]


def final_errors(curves: pd.DataFrame, counts: pd.DataFrame) -> pd.DataFrame:
    """Last evaluation of each run, mean and std over seeds per option, with the trained nets' sizes."""
    speed = curves.groupby("option")["images_per_s"].median().rename("train_images_per_s").reset_index()
    table = final_errors_by(curves, by=("option",)).merge(speed, on="option")
    table = table.merge(counts[["option", "params", "extra_params_vs_plain", "projection_shortcuts"]], on="option")
    order = {o: i for i, o in enumerate(("plain", *OPTIONS))}
    return table.sort_values("option", key=lambda s: s.map(order)).reset_index(drop=True)


def measure(params: Params) -> Measured:
    curves, shape, root = train_all(params)
    resnet, plain = params.model_names()
    trained = option_counts(resnet, plain, f"our {params.family_label()} nets, depth {params.depth}", **shape)
    table3 = table3_counts()
    if root is not None:
        dataset, source = params.family().label(), folder_source(params, root)
    else:
        dataset, source = params.family().name, data_source(curves.run_dir.iloc[0])
    return Measured(
        tables={"curves": curves, "final_errors": final_errors(curves, trained),
                "parameters": pd.concat([table3, trained], ignore_index=True)},
        dataset=dataset, data_source=source, scale=params.scale_text(), seeds=params.seeds,
        extra={"model_family": params.model_family(), "depth": params.depth}, scratch={"table3": table3},
    )


# --------------------------------------------------------------------------------------------------- claims
def _get(final: pd.DataFrame, option: str, column: str) -> float:
    return float(final.loc[final.option == option, column].iloc[0])


def option_nets(params: Params, options: tuple[str, ...]) -> dict[str, Net]:
    """The runs of each option, labelled for a gate's reason (plain-20, ResNet-20 A, ...)."""
    return {(f"plain-{params.depth}" if o == "plain" else f"ResNet-{params.depth} {o}"): {"option": o}
            for o in options}


def beats_plain_claim(params: Params, curves: pd.DataFrame) -> Claim:
    """Table 3 as the paper states it at this depth: where the plain net degrades (``DEGRADING_DEPTH``),
    all three options beat it (``options_beat_plain_claim``); at shallower depth, the options converge
    faster than the plain net (``faster_convergence_claim``)."""
    if params.depth >= DEGRADING_DEPTH[params.model_family()]:
        return options_beat_plain_claim(params, curves)
    return faster_convergence_claim(params, curves)


def options_beat_plain_claim(params: Params, curves: pd.DataFrame) -> Claim:
    """1. all three options beat the plain net (Table 3, Sec. 4.1; 34 layers): per seed, plain minus the worst
    option's test error, at an equal budget; every net must have trained."""
    measurable, why = trained_enough(params)
    plain = {"option": "plain"}
    per_option = [paired_effects(curves, {"option": o}, plain, "test_error") for o in OPTIONS]
    effects = [min(seed) for seed in zip(*per_option, strict=True)]
    se = max(pair_sampling_se(params, curves, {"option": o}, plain, "test_error") for o in OPTIONS)
    statement = f"ResNet-{params.depth} with option A, B and C each has lower test error than plain-{params.depth}"
    return statement_claim("table3_all_options_beat_plain", "Table 3", statement + " (plain minus the worst option)",
                           effects, margin=MARGIN, measurable=measurable, why=why, sampling_se=se,
                           gates=training_gates(params, curves, option_nets(params, ("plain", *OPTIONS))),
                           at_paper_scale=params.at_paper_scale(), budget=budget_of(params))


def early_errors(curves: pd.DataFrame, net: Net, iteration: float) -> pd.Series:
    """Per seed, ``net``'s training error at its last evaluation at or before ``iteration``."""
    rows = net_rows(curves, net)
    rows = rows[rows.iteration <= iteration].sort_values("iteration")
    return rows.groupby("seed")["train_error"].last()


def faster_convergence_claim(params: Params, curves: pd.DataFrame) -> Claim:
    """1'. at shallow depth (Sec. 4.1: "the 18-layer plain/residual nets are comparably accurate, but the
    18-layer ResNet converges faster"): per seed, plain minus the worst option's training error at
    ``EARLY_FRACTION`` of the budget; every net must have trained by the end."""
    measurable, why = trained_enough(params)
    config = params.base_config()
    at = EARLY_FRACTION * config.optim.iterations
    plain = early_errors(curves, {"option": "plain"}, at)
    options = [early_errors(curves, {"option": o}, at) for o in OPTIONS]
    seeds = sorted(set(plain.index).intersection(*(set(o.index) for o in options)))
    effects = [min(float(plain[s] - o[s]) for o in options) for s in seeds]
    if not seeds:
        measurable, why = False, f"no evaluation at or before {at:.0f} iterations ({EARLY_FRACTION:g} of the budget)"
    n = config.eval_every * config.optim.batch_size
    se = difference_se((float(plain.mean()), n), (float(max(o.mean() for o in options)), n)) if seeds else None
    statement = (f"ResNet-{params.depth} with option A, B and C each converges faster than plain-{params.depth}: "
                 f"lower training error at {EARLY_FRACTION:g} of the budget ({at:.0f} iterations)")
    return statement_claim("table3_options_converge_faster", "Table 3 / Sec. 4.1", statement + " (plain minus "
                           "the worst option)", effects, margin=MARGIN, measurable=measurable, why=why, sampling_se=se,
                           gates=training_gates(params, curves, option_nets(params, ("plain", *OPTIONS))),
                           at_paper_scale=params.at_paper_scale(), budget=budget_of(params))


def why_order_not_measurable(final: pd.DataFrame) -> str:
    top1 = paper_top1()
    stds = final.loc[final.option.isin(OPTIONS), "test_error_std"].dropna()
    noise = (f"our seed-to-seed std is up to {stds.max():.2f} points" if len(stds) else
             f"one seed gives no noise estimate; even Table 6's ResNet-110 varies by "
             f"{paper.value('table6.error.resnet110_std'):.2f} points (std) on full CIFAR-10")
    return (
        f"the paper's steps (A-B {top1['A'] - top1['B']:.2f}, B-C {top1['B'] - top1['C']:.2f} points of ImageNet "
        f"top-1 error) are below the seed-to-seed noise of a reduced-scale run ({noise}); judged only at the "
        "paper's scale (ResNet-34, ImageNet, Sec. 3.4 protocol)"
    )


def order_claims(params: Params, curves: pd.DataFrame, final: pd.DataFrame) -> list[Claim]:
    """2. B slightly better than A, C marginally better than B: steps of about half a point and less;
    per-seed test error differences of trained nets, judged at the paper's scale only."""
    top1, why = paper_top1(), why_order_not_measurable(final)
    claims = []
    for cid, better, worse, word in (("table3_B_better_than_A", "B", "A", "slightly"),
                                     ("table3_C_better_than_B", "C", "B", "marginally")):
        statement = f"option {better} is {word} better than option {worse}"
        a, b = {"option": better}, {"option": worse}
        claims.append(statement_claim(
            cid, "Table 3", statement, paired_effects(curves, a, b, "test_error"), margin=ORDER_MARGIN,
            measurable=params.at_paper_scale(), why=why, sampling_se=pair_sampling_se(params, curves, a, b, "test_error"),
            gates=training_gates(params, curves, option_nets(params, (better, worse))),
            at_paper_scale=params.at_paper_scale(), budget=budget_of(params),
            what=statement + " (test error difference, points)", paper=round(top1[worse] - top1[better], 2)))
    return claims


def top1_claims(params: Params, final: pd.DataFrame) -> list[Claim]:
    """3. Table 3's numbers (10-crop top-1 validation error of ResNet-34 A/B/C and plain-34)."""
    ours_label = f"{'ResNet' if params.model_family() == 'imagenet' else 'CIFAR ResNet'}-{params.depth}"
    claims = []
    for option in ("plain", *OPTIONS):
        net = "plain" if option == "plain" else f"resnet{TABLE3_DEPTH}_{option}"
        name = f"plain-{TABLE3_DEPTH}" if option == "plain" else f"ResNet-{TABLE3_DEPTH} {option}"
        ours_name = ours_label.replace("ResNet", "plain") if option == "plain" else f"{ours_label} {option}"
        claims.append(number_claim(
            f"table3.top1.{'plain34' if option == 'plain' else net}", _get(final, option, "test_error"),
            at_paper_scale=params.at_paper_scale(), tolerance=TABLE3_TOLERANCE, id=f"table3_{net}_top1",
            n_seeds=len(params.seeds), spread=_get(final, option, "test_error_std"),
            what=f"{name} top-1 error (%); ours: {ours_name}, mean of {len(params.seeds)} seed(s)"))
    return claims


def parameter_claims(table3: pd.DataFrame) -> list[Claim]:
    """4. parameters of the Table 3 nets: exact at every scale."""
    extra = {o: int(table3.loc[table3.option == o, "extra_params_vs_plain"].iloc[0]) for o in OPTIONS}
    free = compare_claim(
        "table3_option_A_parameter_free", "Sec. 3.3 / Table 3", f"extra parameters of ResNet-{TABLE3_DEPTH} A over "
        f"plain-{TABLE3_DEPTH} ('entirely parameter-free')", float(extra["A"]), 0.0, at_paper_scale=True,
        tolerance=0.0, lower_is_better=None, kind="architecture")
    p = {o: int(table3.loc[table3.option == o, "params"].iloc[0]) for o in OPTIONS}
    steps = (extra["B"] - extra["A"], extra["C"] - extra["B"])
    growing = architecture_claim(
        "table3_projection_parameters", "Sec. 4.1 / Table 3", f"ResNet-{TABLE3_DEPTH} parameters, A < B < C",
        min(steps) > 0, ours=" < ".join(f"{o} {p[o] / 1e6:.2f}M" for o in OPTIONS),
        reason=f"projections add parameters: B adds {steps[0]:,} over A (projections where dimensions grow), "
               f"C {steps[1]:,} over B (all projections)")
    return [free, growing]


def claims_from(params: Params, curves: pd.DataFrame, table3: pd.DataFrame) -> list[Claim]:
    final = final_errors_by(curves, by=("option",))
    return [beats_plain_claim(params, curves), *order_claims(params, curves, final), *top1_claims(params, final),
            *parameter_claims(table3)]


def run(params: Params) -> Outcome:
    return run_experiment(params, measure, EXPERIMENT.claims)


#: This experiment as the runner reads it (resnetlib.experiments.declaration).
EXPERIMENT = Experiment(params=Params, measure=measure, planned_runs=planned_runs,
                        claims=lambda p, m: claims_from(p, m.tables["curves"], m.scratch["table3"]))
