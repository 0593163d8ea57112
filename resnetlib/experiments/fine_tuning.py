"""What the appendix experiments share: one ResNet backbone, pretrained once, fine-tuned with several seeds.

The paper fine-tunes one ImageNet model for detection (appendix A) and localization (appendix C); the
seeds of ``detection_improvements`` and ``localization`` vary the fine-tuning (initialisation of the new
layers, data order, sampling), never the pretrained backbone, which comes from a named checkpoint or is
pretrained here once, as a Fashion-MNIST classifier, from ``data_seed`` (the detection notebook's
pretraining: one cached run serves all three notebooks).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from ..detection.model import RESNETS
from ..detection.pretrain import PretrainConfig, cached_pretrain, checkpoint_of, pretrain_config
from . import detection
from .base import ExperimentParams

__all__ = ["FineTuningParams", "pretrained_backbone"]


class FineTuningParams(ExperimentParams):
    """The backbone, where its weights come from, and the fine-tuning seeds."""

    backbone: str = Field("resnet18", description=f"a ResNet backbone: {', '.join(RESNETS)}")
    pretrained: str = Field("", description="classification checkpoint of the backbone ('' = pretrain here)")
    pretrain: PretrainConfig = Field(
        default_factory=lambda: PretrainConfig(**detection.SMOKE_PRETRAIN),
        description="Fashion-MNIST classification pretraining of the backbone (once, from data_seed); "
        "iterations 0 = from scratch",
    )
    seeds: list[int] = Field(default_factory=lambda: [0], description="fine-tuning seeds")
    data_seed: int = Field(0, ge=0, description="the stand-in data set and the backbone's pretraining")

    @field_validator("backbone")
    @classmethod
    def _resnet(cls, v: str) -> str:
        if v not in RESNETS:
            raise ValueError(f"backbone must be a ResNet ({', '.join(RESNETS)}), got {v!r}")
        return v

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, v: list[int]) -> list[int]:
        if not v or len(set(v)) != len(v) or min(v) < 0:
            raise ValueError(f"seeds must be distinct non-negative integers, got {v}")
        return v


def pretrained_backbone(params: FineTuningParams) -> tuple[str, dict[str, Any] | None]:
    """(checkpoint path, what its pretraining measured): the checkpoint named, else the backbone pretrained
    here once through the run cache, else ('', None) for training from scratch."""
    if params.pretrained:
        return detection.checkpoint_path(params.pretrained, params.data_root), None
    if not params.pretrain.iterations:
        return "", None
    config = pretrain_config(params.backbone, params.pretrain, seed=params.data_seed, device=params.device,
                             root=params.data_root)
    run = cached_pretrain(config, params.runs_path(), force=params.force)
    print(f"{params.backbone}: pretrained as a Fashion-MNIST classifier, {params.pretrain.iterations} iterations, "
          f"test error {run.summary.get('final_test_error')}%", flush=True)
    keys = ("final_train_error", "final_test_error", "train_seconds")
    return str(checkpoint_of(run)), {"classifier": config.model.name, **{k: run.summary.get(k) for k in keys}}
