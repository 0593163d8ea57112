"""The one translator from an experiment's parameters to the engine's TrainConfig."""

import pytest

from resnetlib.config import ConfigError, deep_merge, validate
from resnetlib.experiments import cifar_degradation, imagenet_plain_vs_residual
from resnetlib.experiments.class_folders import folder_data
from resnetlib.experiments.training import train_config
from resnetlib.train import TrainConfig


def test_train_section_is_a_partial_train_config_over_the_smoke_defaults():
    params = cifar_degradation.Params(train={"optim": {"iterations": 312}, "eval_every": 26}, device="cpu",
                                      data_root="/data")
    config = train_config(params, "cifar_resnet20", 3)
    assert (config.model.name, config.seed, config.device, config.data.root) == ("cifar_resnet20", 3, "cpu", "/data")
    assert (config.data.name, config.data.train_size, config.optim.batch_size) == ("fashion_mnist", 512, 64)
    assert config.optim.milestones == [156, 234] and config.checkpoint_every == 312 and config.log == "lines"


def test_every_train_config_setting_passes_through_unchanged():
    """A new TrainConfig setting needs no edit here: any key of TrainConfig is a key of ``train``."""
    fields = {"channels_last": False, "compile": True, "deterministic": True, "amp": "bf16", "eval_batch_size": 7,
              "checkpoint_every": 5, "data": {"augment": False, "padding": 2},
              "optim": {"momentum": 0.5, "lr_decay": 0.5, "warmup": {"mode": "iterations", "iterations": 3}}}
    config = train_config(cifar_degradation.Params(train=fields), "cifar_plain20", 0)
    assert deep_merge(config.model_dump(), fields) == config.model_dump()


def test_deep_cifar_resnets_warm_up_unless_the_train_section_says_otherwise():
    params = cifar_degradation.Params()
    assert train_config(params, "cifar_resnet110", 0).optim.warmup.mode == "until_error"  # Sec. 4.2
    assert train_config(params, "cifar_resnet56", 0).optim.warmup.mode == "off"
    assert train_config(params, "cifar_plain110", 0).optim.warmup.mode == "off"
    low = cifar_degradation.Params(train={"optim": {"lr": 0.01}})
    assert train_config(low, "cifar_resnet110", 0).optim.warmup.mode == "off"
    off = cifar_degradation.Params(train={"optim": {"warmup": {"mode": "off"}}})
    assert train_config(off, "cifar_resnet110", 0).optim.warmup.mode == "off"


def test_settings_the_experiment_owns_are_refused_in_train():
    for train, match in (({"seed": 1}, "seeds"), ({"device": "cpu"}, "device"), ({"model": {"name": "x"}}, "nets"),
                         ({"data": {"root": "/x"}}, "data_root")):
        with pytest.raises(ConfigError, match=match):
            validate(cifar_degradation.Params, {"train": train})


def test_class_folders_of_a_stand_in_hold_exactly_the_chosen_subsets(tmp_path):
    params = imagenet_plain_vs_residual.Params()
    config = train_config(params, "resnet18", 0, data=folder_data(params, tmp_path))
    assert (config.data.name, config.data.root, config.data.train_size, config.data.test_size) == (
        "imagefolder", str(tmp_path), None, None)
    assert (config.data.scale, config.data.crop, config.eval_batch_size) == ((32, 40), 32, 128)
    imagenet = imagenet_plain_vs_residual.Params(stand_in=None, train={"data": {"train_size": 100}})
    assert train_config(imagenet, "resnet18", 0, data=folder_data(imagenet, tmp_path)).data.train_size == 100
