"""Shared by the experiments that train classifiers (Fig. 1, 4, 6, 7, Tables 2, 3, 6).

An experiment's ``Params`` holds what the experiment varies (depths, nets, ``seeds``) and ``train``: a
*partial* ``TrainConfig`` (the same keys as ``resnetlib train`` params files) merged over the
experiment's smoke-scale ``TRAIN_DEFAULTS``. ``train_config`` is the one translator from an experiment's
parameters to the engine's ``TrainConfig`` of one net and seed. Two notebooks with the same ``train``
section therefore train the same configurations, hence hit the same run-cache entries: the
layer-response notebook reuses the nets the degradation notebook trained.

The data family is the ``train.data`` section's (a discriminated union on ``name``, see
``resnetlib.train.config``): CIFAR-style data sets live on the device (``DeviceFamily`` here); class
folders read through a DataLoader (``class_folders.FolderFamily``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

import pandas as pd
from pydantic import Field, field_validator

from .. import paper
from ..config import PartialOf, deep_merge
from ..train import TrainConfig, cached_fit
from ..train.config import data_family
from ..train.loop import RunResult
from ..claims import Budget, Claim, Gate, difference_se, statement_claim, trained_gate
from ..claims.rules import MARGIN_POINTS as MARGIN
from ..claims.rules import MIN_EPOCHS
from .base import ExperimentParams

PROTOCOL = paper.CIFAR_PROTOCOL

# MIN_EPOCHS (the floor below which no comparison is attempted) and MARGIN (points a difference must
# exceed) are the judge's: resnetlib.claims.rules.
#: Training images of the whole small data sets (for epochs when ``train_size`` is not given).
FULL_TRAIN_IMAGES = {"cifar10": 50_000, "fashion_mnist": 60_000, "synthetic": 512}
#: Test images of the whole data sets (for the sampling error when ``test_size`` is not given).
FULL_TEST_IMAGES = {"cifar10": 10_000, "fashion_mnist": 10_000, "imagefolder": 50_000}
#: What every run an experiment trains has in common, beneath its ``train`` section.
EXPERIMENT_LAYER: dict[str, Any] = {"log": "lines"}
#: Keys of ``train`` that the experiment sets itself (``model``, ``seed``) or that are top-level
#: parameters of every notebook (``device``, ``data_root``).
NOT_IN_TRAIN = {"model": "the experiment chooses the nets", "seed": "set seeds",
                "device": "set device (top level)"}

#: The smoke scale of a CIFAR-style experiment: seconds on 2 cores (tiny Fashion-MNIST subsets).
SMOKE_TRAIN: dict[str, Any] = {
    "data": {"name": "fashion_mnist", "train_size": 512, "test_size": 256},
    "optim": {"batch_size": 64, "iterations": 16, "milestones": [0.5, 0.75]},
    "eval_every": 4,
}

TrainSection = Annotated[dict[str, Any], PartialOf(TrainConfig)]


class TrainingParams(ExperimentParams):
    """What the experiment varies plus ``train``, a partial TrainConfig over ``TRAIN_DEFAULTS``."""

    TRAIN_DEFAULTS: ClassVar[dict[str, Any]] = SMOKE_TRAIN
    #: The data families (``device``, ``imagefolder``) this experiment can train on.
    DATA_FAMILIES: ClassVar[tuple[str, ...]] = ("device",)

    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1, description="one run per seed")
    train: TrainSection = Field(
        default_factory=dict, validate_default=True,
        description="training settings (keys of resnetlib.train.TrainConfig); a params file's train: is merged "
        "over these",
    )

    @field_validator("train", mode="before")
    @classmethod
    def _over_defaults(cls, value: Any) -> dict[str, Any]:
        return merge_train(cls.TRAIN_DEFAULTS, value or {})

    @field_validator("train")
    @classmethod
    def _valid_train(cls, value: dict[str, Any]) -> dict[str, Any]:
        check_train_keys(value)
        config = TrainConfig.model_validate(deep_merge(EXPERIMENT_LAYER, value))
        check_family(config, cls.DATA_FAMILIES)
        check_milestones(config)
        return value

    def base_config(self) -> TrainConfig:
        """The configuration every run of this experiment shares, before a net and a seed are chosen."""
        top = {"device": self.device, "data": {"root": self.data_root}}
        return TrainConfig.model_validate(deep_merge(deep_merge(EXPERIMENT_LAYER, self.train), top))

    def family(self) -> "DeviceFamily":
        """The data family's rules: epochs, the paper's scale, how to describe the scale."""
        return DeviceFamily(self.base_config())

    def epochs(self) -> float:
        return self.family().epochs()

    def at_paper_scale(self) -> bool:
        """True when the run is the paper's protocol on the paper's data, so its numbers compare."""
        return self.family().at_paper_scale()

    def real_data(self) -> bool:
        return self.family().name != "synthetic"

    def scale_problem(self) -> str | None:
        """What else makes this scale unable to test a qualitative claim (None: nothing); the class-folder
        experiments refuse crops that leave Table 1's last stage without spatial extent."""
        return None

    def scale_text(self) -> str:
        return self.family().scale_text()


def merge_train(defaults: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` over ``defaults``; a data section of another family replaces the defaults' one whole."""
    if not isinstance(given, Mapping):
        raise ValueError(f"train must be a mapping of TrainConfig keys, got {type(given).__name__}")
    merged = deep_merge(defaults, given)
    data = given.get("data")
    if isinstance(data, Mapping) and "name" in data and data_family(data) != data_family(defaults.get("data", {})):
        merged["data"] = dict(data)
    return merged


def check_train_keys(train: Mapping[str, Any]) -> None:
    for key, where in NOT_IN_TRAIN.items():
        if key in train:
            raise ValueError(f"'{key}' is not a train setting here: {where}")
    if "root" in train.get("data", {}):
        raise ValueError("'data.root' is not a train setting here: set data_root (top level)")


def check_family(config: TrainConfig, families: tuple[str, ...]) -> None:
    if data_family(config.data) not in families:
        names = "a data set on the device (cifar10, fashion_mnist, synthetic)" if families == ("device",) \
            else "class folders (data.name: imagefolder)"
        raise ValueError(f"data.name '{config.data.name}': this experiment trains on {names}")


def check_milestones(config: TrainConfig) -> None:
    optim = config.optim
    if any(m >= optim.iterations for m in optim.milestones):
        raise ValueError(f"milestones {optim.milestones} must be below iterations ({optim.iterations})")


def cifar_warmup(model: str, lr: float) -> dict[str, Any]:
    """Sec. 4.2: ResNet-110 (and deeper) start at lr 0.01 until the training error is below 80%."""
    depth = model.removeprefix("cifar_resnet")
    if model.startswith("cifar_resnet") and depth.isdigit() and int(depth) >= 110 and lr > 0.01:
        return {"optim": {"warmup": {"mode": "until_error"}}}
    return {}


def train_config(
    params: TrainingParams, model: str, seed: int, *, data: Mapping[str, Any] | None = None, **model_options
) -> TrainConfig:
    """The engine configuration for training ``model`` with ``seed`` under ``params`` (the one translator).

    Layers, later ones winning: TrainConfig's defaults, ``EXPERIMENT_LAYER``, the paper's warm-up for
    deep CIFAR ResNets, ``params.train``, then the net, the seed, ``device``, ``data_root`` and ``data``
    (what the experiment decides about the data, e.g. the folder of exported class folders).
    """
    layers = deep_merge(EXPERIMENT_LAYER, cifar_warmup(model, params.base_config().optim.lr))
    layers = deep_merge(deep_merge(layers, params.train), {"model": {"name": model, **model_options}, "seed": seed})
    top = {"device": params.device, "data": {"root": params.data_root, **(data or {})}}
    return TrainConfig.model_validate(deep_merge(layers, top))


def train(params: TrainingParams, model: str, seed: int, *, data: Mapping[str, Any] | None = None,
          **model_options) -> RunResult:
    """Train (or fetch from the run cache) ``model`` with ``seed``."""
    config = train_config(params, model, seed, data=data, **model_options)
    return cached_fit(config, params.runs_path(), force=params.force)


# ------------------------------------------------------------------------------------------- data family
@dataclass(frozen=True)
class DeviceFamily:
    """A small data set on the training device (CIFAR-10, Fashion-MNIST, synthetic), Sec. 4.2."""

    config: TrainConfig

    @property
    def name(self) -> str:
        return self.config.data.name

    def train_images(self) -> int:
        d = self.config.data
        return d.train_size or FULL_TRAIN_IMAGES[d.name] - d.val_size

    def epochs(self) -> float:
        return self.config.optim.iterations * self.config.optim.batch_size / self.train_images()

    def at_paper_scale(self) -> bool:
        """The paper's CIFAR-10 protocol, so the numbers compare with Table 6."""
        d, o = self.config.data, self.config.optim
        return (
            d.name == "cifar10"
            and d.train_size in (None, PROTOCOL["train_size"], 50_000 - d.val_size)
            and d.test_size is None
            and o.iterations >= PROTOCOL["iterations"]
            and o.batch_size == PROTOCOL["batch_size"]
        )

    def scale_text(self) -> str:
        return schedule_text(self.config, self.config.data.train_size or "all", self.epochs())


def schedule_text(config: TrainConfig, images: int | str, epochs: float) -> str:
    o = config.optim
    size = getattr(config.data, "image_size", None)
    resized = f" resized to {size} px" if size else ""
    precision = f", amp {config.amp}" if config.amp != "off" else ""
    return (f"{images} train images{resized}, {o.iterations} iterations of batch {o.batch_size} ({epochs:.1f} "
            f"epochs), lr steps at {o.milestones}{precision}")


def data_source(run_dir: str | Path) -> str:
    """Where the run read its data from, as its environment.json recorded it."""
    return json.loads((Path(run_dir) / "environment.json").read_text())["data_source"]


# ------------------------------------------------------------------------------------------ curves, claims
def metric_rows(result: RunResult, *, with_speed: bool = False, **labels: Any) -> list[dict[str, Any]]:
    """One row per evaluation of a trained run: ``labels`` (kind, depth, seed, ...), its folder, (its median
    training speed,) then the metrics."""
    speed = {"train_images_per_s": median_speed(result)} if with_speed else {}
    classes = {"num_classes": result.summary["num_classes"]}
    return [{**labels, "run_dir": str(result.run_dir), **classes, **speed, **m} for m in result.metrics]


def median_speed(result: RunResult) -> float:
    """Median training images/s over the evaluation intervals (NaN when nothing was evaluated)."""
    speeds = [m["images_per_s"] for m in result.metrics]
    return float(pd.Series(speeds).median()) if speeds else float("nan")


def trained_enough(params: TrainingParams, depths: list[int] | None = None) -> tuple[bool, str]:
    """Can this scale test a qualitative claim? (measurable, and the reason when it cannot)."""
    two_depths = depths is None or min(depths) != max(depths)
    epochs = params.epochs()
    problem = params.scale_problem()
    ok = params.real_data() and epochs >= MIN_EPOCHS and two_depths and problem is None
    why = (
        f"needs real data, >= {MIN_EPOCHS:g} epochs{' and two depths' if depths is not None else ''} "
        f"(this run: {params.family().name}, {epochs:.1f} epochs"
        f"{f', depths {depths}' if depths is not None else ''})"
    )
    return ok, (f"{why}; {problem}" if problem else why)


def final_errors(curves: pd.DataFrame, by: tuple[str, ...] = ("kind", "depth")) -> pd.DataFrame:
    """Last evaluation of each run, then mean and std over seeds, per ``by``."""
    last = curves.sort_values("iteration").groupby([*by, "seed"]).tail(1)
    agg = last.groupby(list(by)).agg(
        train_error=("train_error", "mean"),
        test_error=("test_error", "mean"),
        train_error_std=("train_error", "std"),
        test_error_std=("test_error", "std"),
        test_error_best=("test_error", "min"),
        seeds=("seed", "count"),
    )
    return agg.reset_index()


def final_value(final: pd.DataFrame, kind: str, depth: int, column: str) -> float:
    return float(final[(final.kind == kind) & (final.depth == depth)][column].iloc[0])


def net_label(kind: str, depth: int) -> str:
    return f"{'plain' if kind == 'plain' else 'ResNet'}-{depth}"


# ------------------------------------------------------------------------------- per-seed effects, gates
#: Selects one net's rows of a curves table: column -> value, e.g. {"kind": "plain", "depth": 34}.
Net = Mapping[str, Any]


def net_rows(curves: pd.DataFrame, net: Net) -> pd.DataFrame:
    mask = pd.Series(True, index=curves.index)
    for column, value in net.items():
        mask &= curves[column] == value
    return curves[mask]


def last_by_seed(curves: pd.DataFrame, net: Net) -> pd.DataFrame:
    """The last evaluation of each of ``net``'s runs, indexed by seed."""
    return net_rows(curves, net).sort_values("iteration").groupby("seed").tail(1).set_index("seed")


def paired_effects(curves: pd.DataFrame, a: Net, b: Net, column: str, *, higher: bool = False) -> list[float]:
    """Per seed both nets share: ``b - a`` of the final ``column`` (``a`` lower is the claim), or ``a - b``
    (``higher``: ``a`` higher is the claim). Pairing by seed removes what the seed shares (data order)."""
    la, lb = last_by_seed(curves, a), last_by_seed(curves, b)
    diffs = [float(la.at[s, column] - lb.at[s, column]) for s in sorted(set(la.index) & set(lb.index))]
    return diffs if higher else [-d for d in diffs]


def last_interval(iterations: int, eval_every: int) -> int:
    """Iterations behind the last evaluation's training error: the loop also evaluates at the end, so with
    ``iterations`` not a multiple of ``eval_every`` the last interval is the remainder (300 by 37: 4)."""
    return iterations % eval_every or min(eval_every, iterations)


def counted_images(params: TrainingParams, column: str) -> int:
    """Images behind one final ``column`` value: the last evaluation interval's training images (a short
    remainder when ``eval_every`` does not divide the iterations), or the test set; the binomial sampling error of one seed's error rate is over these."""
    config = params.base_config()
    if column == "train_error":
        return last_interval(config.optim.iterations, config.eval_every) * config.optim.batch_size
    d = config.data
    return getattr(d, "test_size", None) or FULL_TEST_IMAGES.get(d.name, 10_000)


def pair_sampling_se(params: TrainingParams, curves: pd.DataFrame, a: Net, b: Net, column: str) -> float:
    """Sampling standard error of one seed's ``a`` vs ``b`` difference of ``column`` (binomial)."""
    n = counted_images(params, column)
    errors = [float(last_by_seed(curves, net)[column].mean()) for net in (a, b)]
    return difference_se((errors[0], n), (errors[1], n))


def training_gates(params: TrainingParams, curves: pd.DataFrame, nets: Mapping[str, Net]) -> list[Gate]:
    """Before two trained nets are compared, every run of each must have trained (``trained_gate``: final
    training error at most half of chance, no divergence)."""
    gates = []
    for label, net in nets.items():
        for seed, run in net_rows(curves, net).sort_values("iteration").groupby("seed"):
            last = run.iloc[-1]
            loss = float(last.get("train_loss", 0.0))
            gates.append(trained_gate(f"{label} (seed {seed})", float(last["train_error"]),
                                      int(last.get("num_classes", 10)), diverged=not math.isfinite(loss)))
    return gates


def budget_of(params: TrainingParams) -> Budget:
    """What every net of ``params`` trains with: the budget the ends-better rule compares."""
    config = params.base_config()
    return Budget(dataset=config.data.name, iterations=config.optim.iterations,
                  batch_size=config.optim.batch_size, image_size=getattr(config.data, "image_size", None))


@dataclass(frozen=True)
class Lower:
    """The paper's statement "net ``a`` has lower ``noun`` than net ``b``" (``higher=True``: higher).

    ``ends_better``: the claim is about which net ends better (deeper ResNet lower error): a contradiction
    stands only where a budget >= 3x larger replicates it (``claims.budget``); claims at an equal budget
    (the degradation, residual vs plain at equal depth) do not need it."""

    id: str
    ref: str
    a: tuple[str, int]
    b: tuple[str, int]
    column: str
    noun: str
    higher: bool = False
    ends_better: bool = False

    def statement(self) -> str:
        word = "higher" if self.higher else "lower"
        return f"{net_label(*self.a)} has {word} {self.noun} than {net_label(*self.b)}"

    def nets(self) -> dict[str, Net]:
        return {net_label(*n): {"kind": n[0], "depth": n[1]} for n in (self.a, self.b)}

    def claim(self, params: TrainingParams, curves: pd.DataFrame, measurable: bool, why: str) -> Claim:
        a, b = self.nets().values()
        return statement_claim(
            self.id, self.ref, self.statement(), paired_effects(curves, a, b, self.column, higher=self.higher),
            margin=MARGIN, measurable=measurable, why=why, gates=training_gates(params, curves, self.nets()),
            sampling_se=pair_sampling_se(params, curves, a, b, self.column), at_paper_scale=params.at_paper_scale(),
            ends_better=self.ends_better, budget=budget_of(params))


def comparison_claims(params: TrainingParams, curves: pd.DataFrame, depths: list[int],
                      statements: list[Lower]) -> list[Claim]:
    """The degradation block of Fig. 1/4/6 and Tables 2/6: each statement judged on the per-seed final
    errors of the ``curves`` table, behind the scale's and the training gates."""
    measurable, why = trained_enough(params, depths)
    return [s.claim(params, curves, measurable, why) for s in statements]
