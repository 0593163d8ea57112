"""Classification pretraining of the detectors' backbones (the small profiles' stand-in for ImageNet)."""

from __future__ import annotations

import pytest
import torch

from resnetlib.config import ConfigError, validate
from resnetlib.detection.model import build_detector
from resnetlib.detection.pretrain import (
    PretrainConfig,
    VGGC4Classifier,
    cached_pretrain,
    checkpoint_of,
    pretrain_config,
)
from resnetlib.experiments import detection as exp

DETECTOR = {"min_size": 64, "max_size": 64, "anchor_sizes": (16, 32), "roi_output_size": 8}
DETECTOR["batchnorm"] = "train"


def test_vgg_c4_classifier_checkpoint_fills_the_whole_detector_backbone_and_head(tmp_path):
    torch.manual_seed(0)
    classifier = VGGC4Classifier(num_classes=10, in_channels=1)
    assert classifier(torch.zeros(2, 1, 28, 28)).shape == (2, 10)  # 28 px -> 32 px -> 2x2 -> 1x1
    path = tmp_path / "vgg_c4.pt"
    torch.save({"model": classifier.state_dict()}, path)
    model = build_detector("vgg_c4", 11, in_channels=1, pretrained=str(path), **DETECTOR)
    report = model.pretrained_report
    assert report["missing"] == [] and report["unexpected"] == []
    first = model.roi_heads.box_head.convs[1].weight
    assert torch.equal(first, classifier.head.convs[1].weight)
    assert torch.equal(model.backbone.features[0].weight, classifier.features[0].weight)


def test_pretrain_config_is_a_fashion_mnist_classifier_run():
    config = pretrain_config("vgg_c4", PretrainConfig(iterations=200), seed=2, device="cpu")
    assert (config.model.name, config.data.name, config.seed) == ("vgg_c4_classifier", "fashion_mnist", 2)
    assert config.optim.milestones == [150] and config.eval_every == 200
    resnet = pretrain_config("resnet18", PretrainConfig(iterations=4), seed=0, device="cpu")
    assert resnet.model.name == "resnet18"
    with pytest.raises(ValueError, match="no classification pretraining for vgg_small"):
        pretrain_config("vgg_small", PretrainConfig(iterations=4), seed=0, device="cpu")


def test_params_pretrain_only_backbones_without_a_checkpoint(tmp_path):
    params = exp.Params(pretrained={"resnet18": "r.pt"})
    assert params.pretrained_here() == ["vgg_c4"]
    assert exp.Params(pretrain={"iterations": 0}).pretrained_here() == []
    with pytest.raises(ConfigError, match="cannot be pretrained here"):
        validate(exp.Params, {"backbones": ["resnet18", "vgg_small"]})
    validate(exp.Params, {"backbones": ["resnet18", "vgg_small"], "pretrain": {"iterations": 0}})


def test_cached_pretrain_trains_once_and_the_detector_loads_it(tmp_path, capsys):
    small = PretrainConfig(iterations=2, batch_size=8, train_size=64, test_size=32)
    config = pretrain_config("resnet18", small, seed=0, device="cpu")
    run = cached_pretrain(config, tmp_path)
    path = checkpoint_of(run)
    assert run.run_dir.parent == tmp_path / "pretrain" and path.is_file()
    again = cached_pretrain(config, tmp_path)
    assert again.run_dir == run.run_dir and checkpoint_of(again).stat().st_mtime == path.stat().st_mtime
    model = build_detector("resnet18", 11, in_channels=1, pretrained=str(path), **DETECTOR)
    assert model.pretrained_report["missing"] == []
    trained = torch.load(path, weights_only=True)["model"]["layer3.0.conv1.weight"]
    assert torch.equal(model.backbone.layer3[0].conv1.weight, trained)
