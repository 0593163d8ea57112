"""Typed parameters: misspelt keys, wrong types and YAML quirks fail early and clearly."""

import pytest

from resnetlib.config import ConfigError, load_yaml, parse_overrides
from resnetlib.train import TrainConfig, load_config


def write(path, text):
    path.write_text(text)
    return path


def test_defaults_are_the_paper_protocol():
    c = TrainConfig()
    assert (c.optim.batch_size, c.optim.lr, c.optim.momentum, c.optim.weight_decay) == (128, 0.1, 0.9, 1e-4)
    assert (c.optim.milestones, c.optim.iterations) == ([32_000, 48_000], 64_000)
    assert c.data.padding == 4 and c.optim.warmup.lr == 0.01 and c.optim.warmup.train_error_below == 80.0


def test_unknown_key_names_it_and_the_closest_valid_one(tmp_path):
    f = write(tmp_path / "p.yaml", "optim:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError) as err:
        load_config(f)
    msg = str(err.value)
    assert "optim.lrr" in msg and "did you mean 'lr'" in msg


def test_top_level_typo(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'seed'"):
        load_config(write(tmp_path / "p.yaml", "sed: 3\n"))


def test_wrong_type_and_range_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match="optim.batch_size"):
        load_config(write(tmp_path / "p.yaml", "optim:\n  batch_size: lots\n"))
    with pytest.raises(ConfigError, match="optim.momentum"):
        load_config(write(tmp_path / "p.yaml", "optim:\n  momentum: 1.5\n"))
    with pytest.raises(ConfigError, match="model.name"):
        load_config(write(tmp_path / "p.yaml", "model:\n  name: resnet51\n"))
    with pytest.raises(ConfigError, match="milestones"):
        load_config(write(tmp_path / "p.yaml", "optim:\n  milestones: [48000, 32000]\n"))


def test_yaml_exponent_without_dot_is_a_float(tmp_path):
    c = load_config(write(tmp_path / "p.yaml", "optim:\n  weight_decay: 1e-3\n  lr: 5E-2\n"))
    assert c.optim.weight_decay == pytest.approx(1e-3) and isinstance(c.optim.weight_decay, float)
    assert c.optim.lr == pytest.approx(0.05)
    assert load_yaml(write(tmp_path / "q.yaml", "a: 1e-3\nb: 3\nc: '1e-3'\n")) == {"a": 1e-3, "b": 3, "c": "1e-3"}


def test_base_yaml_is_merged_underneath(tmp_path):
    write(tmp_path / "_base.yaml", "seed: 7\noptim:\n  lr: 0.05\n  iterations: 100\n")
    c = load_config(write(tmp_path / "smoke.yaml", "optim:\n  iterations: 10\n"))
    assert (c.seed, c.optim.lr, c.optim.iterations) == (7, 0.05, 10)


def test_set_overrides_win_and_are_typed(tmp_path):
    c = load_config(write(tmp_path / "p.yaml", "seed: 1\n"), ["seed=4", "optim.lr=1e-2", "model.name=cifar_plain56"])
    assert (c.seed, c.optim.lr, c.model.name) == (4, 0.01, "cifar_plain56")
    assert parse_overrides(["a.b.c=[1, 2]"]) == {"a": {"b": {"c": [1, 2]}}}
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["seed"])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path / "bad.yaml", "optim: [\n"))
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write(tmp_path / "list.yaml", "- 1\n- 2\n"))


def test_fp16_on_cpu_is_refused():
    with pytest.raises(ConfigError, match="fp16"):
        load_config(None, ["amp=fp16", "device=cpu"])


def test_example_params_files_validate():
    from pathlib import Path

    examples = sorted((Path(__file__).resolve().parents[2] / "params" / "examples").glob("*.yaml"))
    assert examples
    for path in examples:
        load_config(path)


def test_milestones_may_be_fractions_of_the_iterations():
    c = load_config(None, ["optim.iterations=312", "optim.milestones=[0.5, 0.75]"])
    assert c.optim.milestones == [156, 234]
    assert TrainConfig.model_validate({"optim": {"milestones": [0.5, 0.75]}}).optim.milestones == [32_000, 48_000]
    assert load_config(None, ["optim.iterations=600000", "optim.milestones=[0.25, 0.5]"]).optim.milestones == [
        150_000, 300_000]
    assert load_config(None, ["optim.iterations=20", "optim.milestones=[10, 15]"]).optim.milestones == [10, 15]
    with pytest.raises(ConfigError, match="milestones"):
        load_config(None, ["optim.milestones=[0.75, 0.5]"])


def test_each_data_family_has_only_its_own_fields():
    assert TrainConfig().data.name == "cifar10" and TrainConfig().data.padding == 4
    folders = load_config(None, ["data.name=imagefolder", "data.scale=[32, 40]", "data.crop=32"])
    assert (folders.data.scale, folders.data.crop, folders.data.ten_crop) == ((32, 40), 32, True)
    assert not hasattr(folders.data, "padding") and not hasattr(TrainConfig().data, "crop")
    with pytest.raises(ConfigError, match="unknown parameter 'data.crop'"):
        load_config(None, ["data.name=fashion_mnist", "data.crop=32"])
    with pytest.raises(ConfigError, match="unknown parameter 'data.val_size'"):
        load_config(None, ["data.name=imagefolder", "data.val_size=5000"])
    with pytest.raises(ConfigError, match="did you mean 'train_size'"):
        load_config(None, ["data.trian_size=10"])
    with pytest.raises(ConfigError, match="crop 300 is larger"):
        load_config(None, ["data.name=imagefolder", "data.crop=300"])


def test_checkpoint_every_defaults_to_at_most_2000_iterations_but_not_below_eval_every():
    assert TrainConfig().checkpoint_every == 2000
    assert load_config(None, ["optim.iterations=312", "eval_every=26"]).checkpoint_every == 312
    assert load_config(None, ["optim.iterations=600000", "eval_every=10000"]).checkpoint_every == 10_000
    assert load_config(None, ["optim.iterations=312", "checkpoint_every=52"]).checkpoint_every == 52
