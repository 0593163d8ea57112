"""``reproduce --data NAME=DIR`` and ``$RESNETLIB_DATA_ROOTS``: parsing, precedence and the layout check."""

from __future__ import annotations

import pytest

from resnetlib.config import ConfigError
from resnetlib.reproduce.data_roots import ENV_VAR, data_root_problems, parse_data_roots


def test_environment_then_flags_later_wins():
    env = {ENV_VAR: "cifar10=/env/cifar, imagenet=/env/ilsvrc"}
    assert parse_data_roots(["cifar10=/flag/cifar", "voc=/v"], env) == {
        "cifar10": "/flag/cifar", "imagenet": "/env/ilsvrc", "voc": "/v"}
    assert parse_data_roots(None, {}) == {}


@pytest.mark.parametrize("item,message", [
    ("cifar10", "--data expects NAME=DIR"),
    ("cifar=/p", "unknown data set 'cifar'; did you mean 'cifar10'?"),
    ("imagenet=", "--data expects NAME=DIR"),
])
def test_a_malformed_item_is_one_clear_error(item, message):
    with pytest.raises(ConfigError, match=message):
        parse_data_roots([item], {})


def test_a_bad_environment_entry_names_the_variable():
    with pytest.raises(ConfigError, match=f"\\${ENV_VAR}: unknown data set 'coc'"):
        parse_data_roots([], {ENV_VAR: "coc=/p"})


def test_problems_name_the_experiments_and_the_fix(tmp_path, cifar_root):
    problems = data_root_problems({
        "cifar_degradation": ("cifar10", str(tmp_path / "nowhere")),
        "layer_responses": ("cifar10", str(tmp_path / "nowhere")),
        "resnet1202": ("cifar10", str(cifar_root)),  # the real layout: fine
        "imagenet_deeper": ("imagenet", str(tmp_path)),  # exists, but no train/ val/
        "architectures": (None, ""),  # reads nothing
    })
    assert len(problems) == 2
    assert "does not exist (cifar_degradation, layer_responses read it)" in problems[0]
    assert "--data cifar10=DIR naming the folder holding cifar-10-batches-py/" in problems[0]
    assert "lacks train, val (imagenet_deeper read it)" in problems[1]
