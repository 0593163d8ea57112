"""Device-resident batches for the small data sets (airbench style): the whole split lives on the
training device as uint8, and each batch is gathered, normalised and augmented there with batched
tensor ops, with no data-loader processes.

Batch ``i`` of an iteration-based schedule is a pure function of ``(seed, i)``:

- epoch ``e = i // batches_per_epoch`` (drop-last: ``batches_per_epoch = len(split) // batch_size``)
  visits the samples in the order ``torch.randperm`` draws from a CPU generator seeded by ``(seed, e)``;
- the augmentation of iteration ``i`` is drawn from a CPU generator seeded by ``(seed, i)``.

So resuming from a checkpoint at iteration ``i`` needs no data-loader state and is bit-exact.

Augmentation is the CIFAR-10 protocol of Sec. 4.2: "4 pixels are padded on each side, and a 32x32
crop is randomly sampled from the padded image or its horizontal flip". Inputs are normalised first
(``x = images / 255 - mean``, the per-pixel mean of Sec. 4.2) and the padding is zeros of the
normalised input, as in the authors' Torch code (fb.resnet.torch) and airbench.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from .common import Split, derive_seed

__all__ = ["DeviceBatches", "crop_flip", "normalize"]

_ORDER_STREAM, _AUGMENT_STREAM = 5, 6


def normalize(images: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """uint8 images [B,C,H,W] -> float32 ``images / 255 - mean`` (Sec. 4.2, per-pixel mean subtracted)."""
    return images.float().div_(255).sub_(mean)


def crop_flip(
    x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor, padding: int
) -> torch.Tensor:
    """Zero-pad ``x`` [B,C,H,W] by ``padding``, crop HxW at per-sample offsets (dy, dx) in
    [0, 2*padding], and mirror the samples where ``flip`` is True: one F.pad and one gather."""
    b, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding)) if padding else x
    width = w + 2 * padding
    rows = dy[:, None] + torch.arange(h, device=x.device)  # [B,H]
    cols_fwd = torch.arange(w, device=x.device)
    cols = dx[:, None] + torch.where(flip[:, None], cols_fwd.flip(0), cols_fwd)  # [B,W]
    flat = (rows[:, :, None] * width + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    return padded.reshape(b, c, -1).gather(2, flat).view(b, c, h, w)


class DeviceBatches:
    """Serve batch ``i`` (or a rank's share of it) of one split held on ``device``."""

    def __init__(
        self,
        split: Split,
        mean: torch.Tensor,
        batch_size: int,
        seed: int,
        device: torch.device | str,
        augment: bool = True,
        padding: int = 4,
        flip: bool = True,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
        if len(split) < batch_size:
            raise ValueError(
                f"batch_size {batch_size} is larger than the split ({len(split)} samples): with drop-last "
                f"epochs there would be no batch at all; use a smaller batch or more data"
            )
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ValueError(f"padding must be an integer >= 0; got {padding!r}")
        if tuple(mean.shape) != tuple(split.images.shape[1:]):
            raise ValueError(
                f"mean has shape {list(mean.shape)} but the images are {list(split.images.shape[1:])} (C,H,W)"
            )
        self.device = torch.device(device)
        self.images = split.images.to(self.device)
        self.labels = split.labels.to(self.device)
        self.mean = mean.to(self.device, torch.float32)
        self.batch_size, self.seed = batch_size, int(seed)
        self.augment, self.padding, self.flip = augment, padding, flip
        self._order_epoch: int | None = None
        self._order: torch.Tensor | None = None

    @property
    def num_samples(self) -> int:
        return len(self.labels)

    @property
    def batches_per_epoch(self) -> int:
        return self.num_samples // self.batch_size

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """The sample order of ``epoch`` (on the device), from a generator seeded by (seed, epoch); cached."""
        if self._order_epoch != epoch:
            g = torch.Generator().manual_seed(derive_seed(self.seed, _ORDER_STREAM, epoch))
            self._order = torch.randperm(self.num_samples, generator=g).to(self.device)
            self._order_epoch = epoch
        return self._order

    def _draws(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Crop offsets (dy, dx) and flip mask for the whole global batch of iteration ``i``."""
        g = torch.Generator().manual_seed(derive_seed(self.seed, _AUGMENT_STREAM, i))
        offsets = torch.randint(0, 2 * self.padding + 1, (2, self.batch_size), generator=g)
        flips = torch.rand(self.batch_size, generator=g) < 0.5
        if not self.flip:
            flips = torch.zeros_like(flips)
        return offsets[0], offsets[1], flips

    def batch(self, i: int, rank: int = 0, world: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Rank ``rank``'s share ``global_batch[rank::world]`` of global batch ``i``: (x float32, y int64).

        The augmentation is drawn for the whole global batch and then sliced, so the ranks' shares
        together are exactly the batch one process would see.
        """
        if isinstance(i, bool) or not isinstance(i, int) or i < 0:
            raise ValueError(f"batch index must be an integer >= 0; got {i!r}")
        if not (isinstance(world, int) and world >= 1 and isinstance(rank, int) and 0 <= rank < world):
            raise ValueError(f"need 0 <= rank < world; got rank={rank!r}, world={world!r}")
        if self.batch_size % world:
            raise ValueError(
                f"the global batch size {self.batch_size} is not divisible by the world size {world}; "
                f"every rank must get the same share"
            )
        epoch, j = divmod(i, self.batches_per_epoch)
        index = self.epoch_order(epoch)[j * self.batch_size : (j + 1) * self.batch_size][rank::world]
        x = normalize(self.images[index], self.mean)
        if self.augment:
            dy, dx, flips = (d[rank::world].to(self.device) for d in self._draws(i))
            x = crop_flip(x, dy, dx, flips, self.padding)
        return x, self.labels[index]

    def eval_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Every sample once, in order, without augmentation (the last batch may be smaller)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
        for start in range(0, self.num_samples, batch_size):
            yield (
                normalize(self.images[start : start + batch_size], self.mean),
                self.labels[start : start + batch_size],
            )

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __repr__(self) -> str:
        return (
            f"DeviceBatches({self.num_samples} samples on {self.device}, batch {self.batch_size}, "
            f"{self.batches_per_epoch}/epoch, seed {self.seed}, augment={self.augment})"
        )
