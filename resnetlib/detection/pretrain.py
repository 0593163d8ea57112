"""Classification pretraining of the detectors' backbones on the stand-in data (Sec. 4.3, appendix A).

The paper fine-tunes ImageNet-pretrained ResNet-101 and VGG-16; the small profiles have no ImageNet, so
each backbone is first trained as a 10-way Fashion-MNIST classifier (the scenes' own items: their
training images, never the test images the test scenes are cut from) and the detector starts from that
checkpoint (``load_classification_checkpoint``; the classifier's ``fc`` is dropped).

- ResNets: the Table 1 net itself (``resnet18``, 1 input channel). On 28 px images conv4_x ends on 2x2
  maps and conv5_x on 1x1; in the detector conv5_x runs on RoIs (4x4 at the cpu profile).
- ``vgg_c4``: ``VGGC4Classifier``, the detector's trunk and RoI head plus an fc; the 28 px image is
  zero-padded to 32 px so that the trunk ends on 2x2 maps like ResNet-18's conv4_x, and the head's
  max-pool leaves 1x1 like ResNet's conv5_x: both nets see the same spatial extents.

Training goes through the one run cache (``resnetlib.train.runs.cached_run`` with the classifiers'
``fit``), keyed by the ``TrainConfig`` and the code of ``DETECTOR_CODE`` (the ``vgg_c4`` classifier
lives in this package): a finished pretraining is reused by every detector run that names it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pydantic import Field
from torch import nn

from .. import models
from ..config import StrictModel
from ..train import checkpoint as ckpt
from ..train.config import DeviceData, ModelConfig, OptimConfig, TrainConfig, WarmupConfig
from ..train.loop import RunResult, fit
from ..train.runs import DETECTOR_CODE, cached_run, load_run, run_dir_for
from .model import RESNETS, VGG_SMALL_STAGES, vgg_c4_head, vgg_small_features

__all__ = [
    "PRETRAINABLE",
    "PretrainConfig",
    "VGGC4Classifier",
    "cached_pretrain",
    "checkpoint_of",
    "pretrain_config",
]

#: The classifier each pretrainable backbone is pretrained as (registered in ``resnetlib.models``).
PRETRAINABLE: dict[str, str] = {**{r: r for r in RESNETS}, "vgg_c4": "vgg_c4_classifier"}


class PretrainConfig(StrictModel):
    """How the small profiles pretrain each backbone on Fashion-MNIST (0 iterations: none)."""

    iterations: int = Field(0, ge=0, description="SGD iterations of the classifier; 0 = start from scratch")
    batch_size: int = Field(64, ge=1)
    lr: float = Field(0.05, gt=0, description="step lr, divided by 10 at 3/4 of the iterations")
    train_size: int = Field(10_000, ge=1, description="Fashion-MNIST training images used (a seeded subset)")
    test_size: int = Field(2_000, ge=1, description="Fashion-MNIST test images the classifier is measured on")


class VGGC4Classifier(nn.Module):
    """``vgg_c4`` as a classifier: zero-pad to 32 px, the detector's trunk and RoI head, then an fc.

    Its ``features`` and ``head`` carry the detector's names, so the checkpoint loads into ``vgg_c4``.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, **_: Any) -> None:
        super().__init__()
        self.pad = nn.ZeroPad2d(2)
        self.features = vgg_small_features(in_channels, batch_norm=True)
        self.head = vgg_c4_head(VGG_SMALL_STAGES[-1][0], batch_norm=True)
        self.fc = nn.Linear(self.head.out_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.head(self.features(self.pad(x))))


if "vgg_c4_classifier" not in models.names():
    models.register("vgg_c4_classifier", VGGC4Classifier, "cifar")  # "cifar": small images, any channels


def pretrain_config(
    backbone: str, pretrain: PretrainConfig, *, seed: int, device: str, root: str = ""
) -> TrainConfig:
    """The classifier run that pretrains ``backbone``: Fashion-MNIST, SGD with one step at 3/4."""
    if backbone not in PRETRAINABLE:
        raise ValueError(
            f"no classification pretraining for {backbone}; pretrainable: {', '.join(PRETRAINABLE)} "
            "(give a checkpoint under 'pretrained' instead)"
        )
    optim = OptimConfig(
        batch_size=pretrain.batch_size,
        lr=pretrain.lr,
        iterations=pretrain.iterations,
        milestones=[max(1, round(0.75 * pretrain.iterations))],
        warmup=WarmupConfig(mode="off"),
    )
    sizes = {"train_size": pretrain.train_size, "test_size": pretrain.test_size, "val_size": 0}
    data = DeviceData(name="fashion_mnist", root=root, **sizes)
    return TrainConfig(
        model=ModelConfig(name=PRETRAINABLE[backbone]),
        data=data,
        optim=optim,
        seed=seed,
        device=device,
        eval_every=pretrain.iterations,
        log="none",
    )


def cached_pretrain(config: TrainConfig, runs_dir: str | Path, *, force: bool = False) -> RunResult:
    """Train the classifier of ``config`` or reuse the finished run (``<runs_dir>/pretrain/...``)."""
    return cached_run(
        run_dir_for(config, Path(runs_dir) / "pretrain", DETECTOR_CODE),
        train=lambda run_dir, resume: fit(config, run_dir, resume=resume),
        load=lambda run_dir: load_run(run_dir, config),
        force=force,
    )


def checkpoint_of(run: RunResult) -> Path:
    """The finished classifier's weights alone (``<run>/backbone.pt``: the state dict under ``model``),
    written once.

    The training checkpoint also holds optimizer and RNG states that ``torch.load(weights_only=True)``
    refuses; the detector loads this file, and its content hash keys the detector runs.
    """
    path = run.run_dir / "backbone.pt"
    if not path.is_file():
        payload = ckpt.load_checkpoint(run.run_dir / "checkpoints" / "last.pt")
        ckpt.save_atomic({"model": {k: v.contiguous() for k, v in payload["model"].items()}}, path)
    return path
