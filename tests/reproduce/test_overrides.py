"""``reproduce --set KEY=VALUE``: applied to every selected experiment that has the key, else an error."""

from __future__ import annotations

import pytest

from resnetlib.config import ConfigError
from resnetlib.experiments import architectures, cifar_degradation, detection, shortcut_options
from resnetlib.reproduce.overrides import apply_overrides, model_keys, parse_set

MODELS = {"architectures": architectures.Params, "cifar_degradation": cifar_degradation.Params,
          "detection": detection.Params}


def test_keys_walk_partial_sections_unions_and_optional_models():
    keys, free = model_keys(shortcut_options.Params)
    assert {"train.optim.iterations", "train.data.train_size", "train.data.crop", "stand_in.dataset"} <= keys
    assert "pretrained" in model_keys(detection.Params)[1] and not free


def test_applied_where_the_key_exists_and_recorded():
    merged, applied = apply_overrides(parse_set(["train.optim.iterations=2000", "seeds=[0]"]), MODELS,
                                      {name: {} for name in MODELS})
    assert merged["cifar_degradation"] == {"train": {"optim": {"iterations": 2000}}, "seeds": [0]}
    assert merged["detection"] == {"train": {"optim": {"iterations": 2000}}, "seeds": [0]}
    assert merged["architectures"] == {}  # no train section, no seeds: nothing applies
    assert applied == {"architectures": [], "cifar_degradation": ["train.optim.iterations=2000", "seeds=[0]"],
                       "detection": ["train.optim.iterations=2000", "seeds=[0]"]}


def test_a_key_no_experiment_has_names_the_closest():
    with pytest.raises(ConfigError, match="no selected experiment has 'train.optim.iteratons'; did you mean "
                                          "'train.optim.iterations'"):
        apply_overrides(parse_set(["train.optim.iteratons=5"]), MODELS, {name: {} for name in MODELS})


def test_values_read_as_in_files_and_runner_keys_refused():
    (amp,) = parse_set(["train.amp=off"])
    assert amp.value == {"train": {"amp": "off"}}
    with pytest.raises(ConfigError, match="'profile' cannot be set: use --profile"):
        parse_set(["profile=paper"])
    with pytest.raises(ConfigError, match="--set expects key=value"):
        parse_set(["seeds"])
