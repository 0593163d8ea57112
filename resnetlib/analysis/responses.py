"""Layer responses of Fig. 7: the standard deviation of each 3x3 layer's output.

Sec. 4.2 ("Analysis of Layer Responses"): the responses are the outputs of each 3x3 layer after BN
and before the other nonlinearity (ReLU) and the addition. Models expose those BN modules, in depth
order, through ``response_layers()``. The paper does not say over what the std is taken, and the
verdict can depend on it, so both definitions are measured in one pass, accumulated in float64 so
neither depends on the batch size:

- ``whole``: the std over every element (samples, channels, positions) of the evaluated set; a
  per-channel offset (BN's beta, a channel's mean) counts as response;
- ``per_channel``: the std of each channel over samples and positions, averaged over channels; per-
  channel offsets do not count.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["DEFINITIONS", "layer_response_std", "layer_response_stds"]

#: The two readings of "std of the layer response" (see the module docstring).
DEFINITIONS = ("whole", "per_channel")


class _Moments:
    """Running per-channel sums of x and x^2 and the element count of one layer's outputs."""

    def __init__(self) -> None:
        self.sums: torch.Tensor | None = None
        self.sq_sums: torch.Tensor | None = None
        self.count = 0  # elements per channel

    def add(self, output: torch.Tensor) -> None:
        out = output.detach().double().transpose(0, 1).flatten(1)  # [C, N*H*W]
        sums, sq = out.sum(1).cpu(), (out * out).sum(1).cpu()
        self.sums = sums if self.sums is None else self.sums + sums
        self.sq_sums = sq if self.sq_sums is None else self.sq_sums + sq
        self.count += out.shape[1]

    def whole_std(self) -> float:
        n = self.count * len(self.sums)
        mean = self.sums.sum() / n
        return float((self.sq_sums.sum() / n - mean * mean).clamp_min(0).sqrt())

    def per_channel_std(self) -> float:
        mean = self.sums / self.count
        return float((self.sq_sums / self.count - mean * mean).clamp_min(0).sqrt().mean())


@torch.no_grad()
def layer_response_stds(
    model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
) -> dict[str, list[float]]:
    """Both definitions of each response layer's std over all ``batches`` (model in eval mode), in
    layer order: ``{"whole": [...], "per_channel": [...]}``."""
    if not hasattr(model, "response_layers"):
        raise TypeError(f"{type(model).__name__} does not expose response_layers(); use a resnetlib model")
    layers: list[nn.Module] = list(model.response_layers())
    moments = [_Moments() for _ in layers]
    handles = [layer.register_forward_hook(lambda _m, _i, out, k=k: moments[k].add(out))
               for k, layer in enumerate(layers)]
    was_training = model.training
    model.eval()
    try:
        for x, _y in batches:
            model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    if any(m.count == 0 for m in moments):
        raise ValueError("no batches were given: cannot measure layer responses")
    return {"whole": [m.whole_std() for m in moments], "per_channel": [m.per_channel_std() for m in moments]}


def layer_response_std(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> list[float]:
    """Whole-tensor std of each response layer's output (the ``whole`` definition), in layer order."""
    return layer_response_stds(model, batches)["whole"]
