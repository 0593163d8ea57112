"""What the localizer tests share: two 64 px greyscale canvases, one box each."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def canvases():
    """(images, targets): two random 1x64x64 canvases with one box each, of classes 2 and 3."""
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(1, 64, 64, generator=g) for _ in range(2)]
    targets = [{"boxes": torch.tensor([[8.0, 10.0, 40.0, 50.0]]), "labels": torch.tensor([2])},
               {"boxes": torch.tensor([[20.0, 4.0, 60.0, 36.0]]), "labels": torch.tensor([3])}]
    return images, targets


def sgd_steps(model, images, targets, keys: set[str], steps: int = 8) -> tuple[float, float]:
    """(total loss before, after) ``steps`` SGD steps on the trainable parameters, each step's losses
    checked: exactly ``keys``, all finite."""
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    first = None
    for _ in range(steps):
        losses = model(images, targets)
        assert set(losses) == keys and all(torch.isfinite(v) for v in losses.values())
        total = sum(losses.values())
        first = float(total.detach()) if first is None else first
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    with torch.no_grad():
        return first, float(sum(model(images, targets).values()))


@pytest.fixture
def train_steps():
    """``sgd_steps``, for the tests (a conftest is not imported by name)."""
    return sgd_steps
