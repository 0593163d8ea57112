"""Sec. 4.2 learning rate: a pure function of (iteration, warm-up state)."""

import pytest

from resnetlib.train import OptimConfig
from resnetlib.train.schedule import learning_rate, warmup_finished


def test_paper_steps_at_32k_and_48k():
    o = OptimConfig()
    assert [learning_rate(i, o, True) for i in (0, 31_999, 32_000, 47_999, 48_000, 63_999)] == [
        0.1, 0.1, 0.01, 0.01, 0.001, 0.001
    ]


def test_warmup_until_error_then_back_to_0_1():
    o = OptimConfig.model_validate({"warmup": {"mode": "until_error"}})
    assert learning_rate(0, o, warmup_done=False) == 0.01
    assert learning_rate(399, o, warmup_done=False) == 0.01
    assert learning_rate(400, o, warmup_done=True) == 0.1
    assert learning_rate(32_000, o, warmup_done=True) == 0.01
    assert not warmup_finished(85.0, o) and warmup_finished(79.9, o)


def test_warmup_by_iterations():
    o = OptimConfig.model_validate({"warmup": {"mode": "iterations", "iterations": 400}})
    assert learning_rate(399, o, warmup_done=False) == 0.01
    assert learning_rate(400, o, warmup_done=False) == 0.1


@pytest.mark.parametrize("it", [0, 10, 32_000, 50_000])
def test_no_warmup_ignores_state(it):
    o = OptimConfig()
    assert learning_rate(it, o, False) == learning_rate(it, o, True)
