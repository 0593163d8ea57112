"""Curves tables with known per-seed final errors, for the claim builders' tests."""

import pandas as pd
import pytest


def curves_table(finals, *, iterations, last_milestone, test_offset=1.0, moving=(), num_classes=10, by="kind"):
    """One run per (net, seed): ``finals`` maps a net ((kind, depth), or an option when ``by="option"``) to
    its per-seed final training errors. Eight evaluations; each curve is flat after ``last_milestone``
    unless its net is in ``moving`` (then it still falls 20 points over the last phase)."""
    rows = []
    for net, errors in finals.items():
        labels = {"option": net, "kind": "plain" if net == "plain" else "resnet", "depth": 20} if by == "option" \
            else {"kind": net[0], "depth": net[1]}
        for seed, final in enumerate(errors):
            for it in range(iterations // 8, iterations + 1, iterations // 8):
                late = max(0, iterations - it) / (iterations - last_milestone) * 20 if net in moving else 0
                early = max(0, last_milestone - it) / 10
                err = final + early + late
                rows.append(dict(labels, seed=seed, iteration=it, train_loss=err / 50, train_error=err,
                                 test_error=err + test_offset, num_classes=num_classes))
    return pd.DataFrame(rows)


@pytest.fixture
def make_curves():
    return curves_table
