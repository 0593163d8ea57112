"""Fig. 7's claims: response magnitudes a trained net cannot have make a comparison not measurable (the
notebook never fails on how well a net trained)."""

import math

import pandas as pd
import pytest

from resnetlib.experiments import layer_responses
from resnetlib.claims import verdicts


def responses(plain_stds, resnet_stds, seeds=(0, 1, 2)):
    """Rows of ``measure_responses`` for plain-20 and ResNet-20: the given per-layer stds at every seed (ResNet's
    2% larger per seed, so the seeds' effects differ: identical effects have no spread to judge by)."""
    rows = []
    for kind, stds in (("plain", plain_stds), ("resnet", resnet_stds)):
        for seed in seeds:
            rows += [{"model": f"{kind}-20", "kind": kind, "depth": 20, "seed": seed, "definition": "whole",
                      "layer": layer, "std": std * (1 + 0.02 * seed if kind == "resnet" else 1)}
                     for layer, std in enumerate(stds, start=1)]
    return pd.DataFrame(rows)


def judged(table):
    gates = layer_responses.response_gates(table, [("resnet", 20), ("plain", 20)], "whole")
    return layer_responses._response_claim(layer_responses.Params(), table, ("resnet", 20), ("plain", 20), "whole", True, "", gates)


def test_trained_responses_pass_the_gate_and_are_judged():
    claim = judged(responses([2.0, 3.0], [1.0, 1.5]))
    assert claim.verdict == "reproduced", claim.reason  # 50% smaller at every seed, margin 5%


@pytest.mark.parametrize("bad", [0.0, 5e3, math.inf, math.nan])
def test_a_response_std_no_trained_net_has_is_not_measurable_with_a_reason(bad):
    claim = judged(responses([2.0, bad], [1.0, 1.5]))
    assert claim.verdict == verdicts.NOT_MEASURABLE, claim.verdict
    assert "plain-20" in claim.reason and "layer 2" in claim.reason, claim.reason
