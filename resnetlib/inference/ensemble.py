"""Table 5: an ensemble's prediction is the average of its members' class probabilities."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .testing import Predictions


def ensemble(members: Sequence[Predictions]) -> Predictions:
    """Average the members' softmax probabilities (the members must have predicted the same images)."""
    if not members:
        raise ValueError("an ensemble needs at least one member")
    labels = members[0].labels
    for m in members[1:]:
        if m.probs.shape != members[0].probs.shape or not torch.equal(m.labels, labels):
            raise ValueError("ensemble members must have predicted the same images, in the same order, "
                             f"with the same classes; got shapes {[tuple(x.probs.shape) for x in members]}")
    return Predictions(torch.stack([m.probs for m in members]).mean(0), labels)
