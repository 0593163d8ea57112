"""Every experiment declares itself once (``EXPERIMENT = Experiment(...)``), and the runner reads only that."""

from __future__ import annotations

import importlib

import pytest

from resnetlib import reproduce
from resnetlib.experiments.declaration import Experiment, data_set_of


@pytest.mark.parametrize("name", reproduce.discover_experiments())
def test_each_experiment_declares_its_params_measure_claims_and_planned_runs(name):
    module = importlib.import_module(f"resnetlib.experiments.{name}")
    experiment = reproduce.default_experiment(name)
    assert isinstance(experiment, Experiment) and experiment.params is module.Params
    assert experiment.measure is module.measure and callable(experiment.claims)
    assert (experiment.planned_runs is not None) == hasattr(module, "planned_runs")


@pytest.mark.parametrize("profile,name,expected", [
    ("paper", "cifar_degradation", "cifar10"), ("paper", "imagenet_deeper", "imagenet"),
    ("paper", "detection", "voc"), ("paper", "detection_improvements", "coco"),
    ("paper", "localization", "ilsvrc_loc"), ("paper", "architectures", None),
    ("cpu", "imagenet_deeper", "fashion_mnist"),  # class folders exported from the stand-in
])
def test_the_data_set_each_experiment_reads(profile, name, expected):
    params = reproduce.load_profile(profile, [name], environ={}).params[name]
    assert data_set_of(params) == expected
