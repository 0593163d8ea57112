"""How an experiment module declares itself to the runner: one ``EXPERIMENT = Experiment(...)`` at its bottom.

The runner (``resnetlib.reproduce``) reads this one object instead of probing the module: the typed
``Params`` it validates params files against, what the experiment trains before its notebook runs
(``planned_runs``, for the run queue and ``reproduce --plan``; None where the runs need the notebook first)
and which data set its ``data_root`` must hold (for ``reproduce --data``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Experiment", "data_set_of", "downloads"]

#: ``train.data.name`` of an experiment -> the data set its ``data_root`` must hold (None: nothing on disk).
DATA_SET_OF_NAME = {"cifar10": "cifar10", "fashion_mnist": "fashion_mnist", "imagefolder": "imagenet",
                    "voc07": "voc", "voc12": "voc", "coco": "coco", "ilsvrc_loc": "ilsvrc_loc",
                    "scenes": "fashion_mnist", "loc_scenes": "fashion_mnist", "synthetic": None}


def _data_section(params: Any) -> Mapping[str, Any]:
    train = getattr(params, "train", None)
    data = train.get("data", {}) if isinstance(train, Mapping) else {}
    return data if isinstance(data, Mapping) else {}


def data_set_of(params: Any) -> str | None:
    """The data set (a key of ``reproduce --data``) that an experiment with these parameters reads from its
    ``data_root``: ``train.data.name``'s, or a class-folder stand-in's (exported from that data set); None
    where nothing is read from disk (architectures, synthetic data)."""
    name = _data_section(params).get("name")
    stand_in = getattr(params, "stand_in", None)
    if name == "imagefolder" and stand_in is not None:
        return stand_in.dataset
    return DATA_SET_OF_NAME.get(name)


def downloads(params: Any) -> bool:
    """True when the experiment's loader fetches a missing data set itself (``train.data.download: true``)."""
    return bool(_data_section(params).get("download"))


@dataclass(frozen=True)
class Experiment:
    """One experiment as the runner sees it.

    ``params``: its typed ``Params``; ``measure(params) -> Measured`` and ``claims(params, measured)`` (what the
    module's ``run`` times and writes through ``experiments.base.run_experiment``); ``planned_runs(params) ->
    list[TrainConfig]``: the configurations ``measure`` trains, known before it runs (None: trained inside
    the notebook); ``data_set(params)``: the data set its ``data_root`` must hold.
    """

    params: type
    measure: Callable[[Any], Any] | None = None
    claims: Callable[[Any, Any], list[Any]] | None = None
    planned_runs: Callable[[Any], list[Any]] | None = None
    data_set: Callable[[Any], str | None] = data_set_of
