"""Loading the repository's real params files with ``--set`` and ``--data`` (no notebook runs)."""

from __future__ import annotations

import pytest

from resnetlib.config import ConfigError
from resnetlib.reproduce import load_profile

PAIR = ["cifar_degradation", "layer_responses"]


def test_paper_profile_shrunk_with_set_and_data(cifar_root):
    loaded = load_profile("paper", PAIR, set_items=["train.optim.iterations=24", "seeds=[0]", "train.amp=off"],
                          data_items=[f"cifar10={cifar_root}"], environ={})
    for name in PAIR:
        inject, params = loaded.inject[name], loaded.params[name]
        assert inject["data_root"] == str(cifar_root) and params.data_root == str(cifar_root)
        assert params.train["optim"]["iterations"] == 24 and params.seeds == [0]
        assert params.train["amp"] == "off"  # written bare, read as the enum value
    assert loaded.data_problems == []
    assert loaded.applied() == {"train.optim.iterations=24": PAIR, "seeds=[0]": PAIR, "train.amp=off": PAIR}


def test_environment_roots_and_explicit_set_data_root_wins(cifar_root, tmp_path):
    env = {"RESNETLIB_DATA_ROOTS": f"cifar10={tmp_path / 'elsewhere'}"}
    loaded = load_profile("paper", ["cifar_degradation"], environ=env)
    assert loaded.params["cifar_degradation"].data_root == str(tmp_path / "elsewhere")
    assert "CIFAR-10 not found" in loaded.data_problems[0] and "(cifar_degradation read it)" in loaded.data_problems[0]
    loaded = load_profile("paper", ["cifar_degradation"], environ=env, set_items=[f"data_root={cifar_root}"])
    assert loaded.params["cifar_degradation"].data_root == str(cifar_root) and not loaded.data_problems


def test_set_values_are_validated_like_files():
    with pytest.raises(ConfigError, match="parameter 'train.optim.iterations'|iterations"):
        load_profile("paper", ["cifar_degradation"], set_items=["train.optim.iterations=lots"], environ={})
    with pytest.raises(ConfigError, match="did you mean 'train.optim.iterations'"):
        load_profile("paper", PAIR, set_items=["train.optim.iteratons=24"], environ={})


def test_a_key_of_another_data_family_applies_only_where_it_fits():
    loaded = load_profile("smoke", ["cifar_degradation", "imagenet_deeper"], environ={},
                          set_items=["train.data.crop=32", "train.optim.iterations=8"])
    assert loaded.overrides == {"cifar_degradation": ["train.optim.iterations=8"],
                                "imagenet_deeper": ["train.data.crop=32", "train.optim.iterations=8"]}
    assert "crop" not in loaded.inject["cifar_degradation"]["train"].get("data", {})
    with pytest.raises(ConfigError, match="no selected experiment has this key for its data"):
        load_profile("smoke", ["cifar_degradation"], environ={}, set_items=["train.data.crop=32"])


def test_profiles_file_names_known_experiments_and_each_left_out_one_has_a_reason():
    """params/profiles.yaml (each profile's budget, what it leaves out and why) names only experiments that
    exist, and the cpu profile's default selection runs none of them."""
    from resnetlib.reproduce import profile

    known = set(profile.discover_experiments())
    for name, budget in profile.BUDGETS.items():
        assert set(budget.left_out) <= known, name
        assert all(why.strip() for why in budget.left_out.values())
    cpu = profile._select(None, profile.discover_experiments(), "cpu")
    assert not set(cpu) & set(profile.LEFT_OUT_OF["cpu"]) and "cifar_degradation" in cpu
    listed = profile.not_run_in("cpu", ran=["cifar_degradation", "shortcut_options"])
    assert "shortcut_options" not in [n["what"] for n in listed]  # named with --only: it ran
    assert "imagenet_deeper" in [n["what"] for n in listed] and len(listed) > len(profile.LEFT_OUT_OF["cpu"]) - 1


def test_a_misspelt_key_in_the_profiles_file_is_an_error_naming_it(tmp_path):
    from resnetlib.reproduce import profile

    path = tmp_path / "profiles.yaml"
    path.write_text("cpu:\n  budget: 1 core-hour\n  left_ot: {}\n")
    with pytest.raises(ConfigError, match="left_ot"):
        profile.load_budgets(path)
