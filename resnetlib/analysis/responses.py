"""Layer responses of Fig. 7: the standard deviation of each 3x3 layer's output.

Sec. 4.2 ("Analysis of Layer Responses"): the responses are the outputs of each 3x3 layer after BN
and before the other nonlinearity (ReLU) and the addition. Models expose those BN modules, in depth
order, through ``response_layers()``. The std is taken over every element (samples, channels,
positions) of the evaluated set, accumulated in float64 so it does not depend on batch size.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["layer_response_std"]


@torch.no_grad()
def layer_response_std(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> list[float]:
    """Std of each response layer's output over all ``batches`` (model in eval mode), in layer order."""
    if not hasattr(model, "response_layers"):
        raise TypeError(f"{type(model).__name__} does not expose response_layers(); use a resnetlib model")
    layers: list[nn.Module] = list(model.response_layers())
    sums = torch.zeros(len(layers), dtype=torch.float64)
    sq_sums = torch.zeros(len(layers), dtype=torch.float64)
    count = torch.zeros(len(layers), dtype=torch.float64)

    def hook(index: int):
        def record(_module, _inputs, output):
            out = output.detach().double()
            sums[index] += out.sum().cpu()
            sq_sums[index] += (out * out).sum().cpu()
            count[index] += out.numel()

        return record

    handles = [layer.register_forward_hook(hook(i)) for i, layer in enumerate(layers)]
    was_training = model.training
    model.eval()
    try:
        for x, _y in batches:
            model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    if not count.all():
        raise ValueError("no batches were given: cannot measure layer responses")
    mean = sums / count
    var = (sq_sums / count - mean * mean).clamp_min(0)
    return var.sqrt().tolist()
