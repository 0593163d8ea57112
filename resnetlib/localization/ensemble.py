"""Appendix C, Tables 13 and 14: an ensemble of localizers ("RPN+RCNN, ensemble": top-5 localization error
8.9% on ImageNet val, 9.0% on test).

The paper ensembles "networks for both classification and localization" without saying how their boxes
combine. Here, per image: the class scores are the members' mean (the classification ensemble); each
class's box is the members' boxes for that class averaged with their box scores as weights (the box
voting of Table 9's improvements, one box per member), its box score the members' mean. Members are the
outputs of ``PerClassRPN`` or ``RCNNStage`` (one dict per image: ``class_scores``, ``boxes``,
``box_scores``), e.g. one per fine-tuning seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

__all__ = ["combine", "ensemble_outputs"]


def combine(members: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """One image's ensemble output from its members' outputs (see the module's docstring)."""
    scores = torch.stack([m["class_scores"] for m in members])  # (M, K+1)
    boxes = torch.stack([m["boxes"] for m in members])  # (M, K+1, 4)
    box_scores = torch.stack([m["box_scores"] for m in members])  # (M, K+1)
    weights = box_scores.clamp(min=0) + 1e-12  # all-zero scores (the background row): a plain mean
    voted = (boxes * weights[..., None]).sum(0) / weights.sum(0)[..., None]
    return {"class_scores": scores.mean(0), "boxes": voted, "box_scores": box_scores.mean(0)}


def ensemble_outputs(members: Sequence[Sequence[Mapping[str, torch.Tensor]]]) -> list[dict[str, torch.Tensor]]:
    """Per image, ``combine`` of every member's output for it; ``members[m][i]`` is member m's for image i."""
    if not members:
        raise ValueError("an ensemble needs at least one member")
    if len({len(m) for m in members}) != 1:
        raise ValueError(f"the members predicted different numbers of images: {[len(m) for m in members]}")
    return [combine(per_image) for per_image in zip(*members)]
