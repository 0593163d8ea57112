"""The ensemble of Tables 13/14: mean class scores, each class's box the box-score-weighted mean."""

from __future__ import annotations

import pytest
import torch

from resnetlib.localization.ensemble import combine, ensemble_outputs


def member(scores, box, box_score):
    boxes = torch.zeros(3, 4)
    boxes[1] = torch.tensor(box)
    return {"class_scores": torch.tensor(scores), "boxes": boxes, "box_scores": torch.tensor([0.0, box_score, 0.0])}


def test_scores_average_and_boxes_are_weighted_by_their_box_scores():
    a, b = member([0, 0.8, 0.2], [0.0, 0.0, 10.0, 10.0], 0.75), member([0, 0.4, 0.6], [4.0, 4.0, 14.0, 14.0], 0.25)
    out = combine([a, b])
    assert torch.allclose(out["class_scores"], torch.tensor([0.0, 0.6, 0.4]))
    assert torch.allclose(out["boxes"][1], torch.tensor([1.0, 1.0, 11.0, 11.0]))
    assert torch.allclose(out["box_scores"], torch.tensor([0.0, 0.5, 0.0]))
    assert torch.equal(out["boxes"][0], torch.zeros(4))  # zero scores: a plain mean, no NaN


def test_one_member_is_itself_and_members_must_agree_on_the_images():
    a = member([0, 0.8, 0.2], [0.0, 0.0, 10.0, 10.0], 0.75)
    (out,) = ensemble_outputs([[a]])
    assert all(torch.allclose(out[k], a[k]) for k in a)
    with pytest.raises(ValueError, match="different numbers"):
        ensemble_outputs([[a], [a, a]])
    with pytest.raises(ValueError, match="at least one"):
        ensemble_outputs([])
