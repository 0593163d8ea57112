"""The C4 Faster R-CNN: stride-16 trunk, conv5_x head, frozen BN, losses / detections, checkpoint loading."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from resnetlib import models
from resnetlib.detection.model import (
    BACKBONES,
    ResNetC4Backbone,
    ResNetC5Head,
    build_detector,
    count_macs,
    freeze_batchnorm,
)

SMALL = {
    "min_size": 64,
    "max_size": 64,
    "anchor_sizes": (16, 32),
    "aspect_ratios": (0.5, 1.0, 2.0),
    "rpn_pre_nms_top_n_train": 200,
    "rpn_post_nms_top_n_train": 100,
    "rpn_pre_nms_top_n_test": 100,
    "rpn_post_nms_top_n_test": 20,
    "box_batch_size_per_image": 32,
}


def small_batch(channels=3):
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(channels, 64, 64, generator=g) for _ in range(2)]
    targets = [
        {"boxes": torch.tensor([[4.0, 6.0, 30.0, 40.0]]), "labels": torch.tensor([1])},
        {
            "boxes": torch.tensor([[20.0, 10.0, 60.0, 50.0], [2.0, 2.0, 14.0, 20.0]]),
            "labels": torch.tensor([2, 1]),
        },
    ]
    return images, targets


def test_freeze_batchnorm_copies_statistics():
    bn = nn.BatchNorm2d(4)
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([0.1, -0.2, 0.3, 0.0]))
        bn.running_var.copy_(torch.tensor([1.5, 0.5, 2.0, 1.0]))
        bn.weight.copy_(torch.tensor([1.0, 2.0, 0.5, -1.0]))
        bn.bias.copy_(torch.tensor([0.0, 0.1, -0.1, 0.2]))
    net = nn.Sequential(nn.Conv2d(3, 4, 1), bn)
    x = torch.randn(2, 3, 5, 5)
    expected = net.eval()(x)
    frozen = freeze_batchnorm(net)
    assert isinstance(frozen[1], FrozenBatchNorm2d)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in frozen.modules())
    assert torch.allclose(frozen.train()(x), expected, atol=1e-6)  # fixed statistics even in train mode
    assert list(frozen[1].parameters()) == []


def test_c4_backbone_stride_and_head_is_layer4():
    model = build_detector("resnet18", 3, **SMALL)
    body, head = model.backbone, model.roi_heads.box_head
    assert isinstance(body, ResNetC4Backbone) and isinstance(head, ResNetC5Head)
    assert body.out_channels == 256 and head.out_channels == 512
    assert not hasattr(body, "layer4")
    with torch.no_grad():
        assert body(torch.zeros(1, 3, 64, 96)).shape == (1, 256, 4, 6)  # stride 16
        # conv5_x's first block has stride 2: 14x14 RoI features -> 7x7, then pooled to a vector
        assert head.layer4(torch.zeros(3, 256, 14, 14)).shape == (3, 512, 7, 7)
        assert head(torch.zeros(3, 256, 14, 14)).shape == (3, 512)
    assert head.layer4[0].conv1.stride == (2, 2)
    pool = model.roi_heads.box_roi_pool
    assert pool.featmap_names == ["0"] and tuple(pool.output_size) == (14, 14) and pool.sampling_ratio == 2
    predictor = model.roi_heads.box_predictor
    assert predictor.cls_score.in_features == 512 and predictor.cls_score.out_features == 3
    assert predictor.bbox_pred.out_features == 12
    assert model.rpn.anchor_generator.num_anchors_per_location() == [6]


def test_bottleneck_c4_channels():
    model = build_detector("resnet50", 5, **SMALL)
    assert model.backbone.out_channels == 1024
    assert model.roi_heads.box_predictor.cls_score.in_features == 2048


@pytest.mark.slow  # one training step: ~4 s alone, more on a busy machine
def test_batchnorm_is_frozen_and_not_trained():
    model = build_detector("resnet18", 3, shortcut="B", **SMALL)
    for part in (model.backbone, model.roi_heads.box_head):
        assert not any(isinstance(m, nn.BatchNorm2d) for m in part.modules())
    frozen = [m for m in model.modules() if isinstance(m, FrozenBatchNorm2d)]
    assert len(frozen) == 1 + 8 * 2 + 3  # stem + two per basic block + the three projection shortcuts
    assert all(list(m.parameters()) == [] for m in frozen)
    before = {k: v.clone() for k, v in model.state_dict().items() if "bn" in k or "downsample.1" in k}
    images, targets = small_batch()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    loss = sum(model(images, targets).values())
    loss.backward()
    opt.step()
    after = model.state_dict()
    assert before and all(torch.equal(v, after[k]) for k, v in before.items())


def test_trainable_batchnorm_option():
    model = build_detector("resnet18", 3, batchnorm="train", **SMALL)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.backbone.modules())
    small = build_detector("vgg_small", 3, batchnorm="train", **SMALL)
    assert any(isinstance(m, nn.BatchNorm2d) for m in small.backbone.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in build_detector("vgg_small", 3, **SMALL).modules())


def test_freeze_at_fixes_the_stem_and_conv2():
    model = build_detector("resnet18", 3, freeze_at=2, **SMALL)
    assert not any(p.requires_grad for p in model.backbone.conv1.parameters())
    assert not any(p.requires_grad for p in model.backbone.layer1.parameters())
    assert all(p.requires_grad for p in model.backbone.layer2.parameters())


def test_train_mode_returns_losses_and_eval_mode_detections():
    model = build_detector("resnet18", 3, in_channels=1, **SMALL)
    images, targets = small_batch(channels=1)
    assert len(model.transform.image_mean) == 1 and len(model.transform.image_std) == 1
    model.train()
    losses = model(images, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        out = model(images)
    assert len(out) == 2
    for o in out:
        assert set(o) == {"boxes", "scores", "labels"}
        assert o["boxes"].shape[-1] == 4 and len(o["scores"]) == len(o["labels"])


def test_vgg_small_backbone():
    model = build_detector("vgg_small", 4, **SMALL)
    with torch.no_grad():
        assert model.backbone(torch.zeros(1, 3, 64, 96)).shape == (1, 256, 4, 6)
    assert tuple(model.roi_heads.box_roi_pool.output_size) == (7, 7)
    cost = count_macs(build_detector("resnet18", 4, **SMALL), 224)
    small_cost = count_macs(model, 224)
    assert 0.7 < small_cost["backbone_macs"] / cost["backbone_macs"] < 1.5  # comparable trunks


def test_vgg_c4_runs_a_plain_conv_stage_on_each_roi():
    model = build_detector("vgg_c4", 4, batchnorm="train", roi_output_size=8, **SMALL)
    head = model.roi_heads.box_head
    assert tuple(model.roi_heads.box_roi_pool.output_size) == (8, 8)
    convs = [m for m in head.convs if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(256, 512)] + [(512, 512)] * 3
    assert any(isinstance(m, nn.BatchNorm2d) for m in head.modules())
    with torch.no_grad():
        assert head(torch.zeros(5, 256, 8, 8)).shape == (5, head.out_channels)
    images, targets = small_batch()
    assert torch.isfinite(sum(model(images, targets).values()))


def test_count_macs_counts_the_head_once_per_roi():
    cost = count_macs(build_detector("resnet18", 4, roi_output_size=8, **SMALL), 64)
    assert (cost["train_rois"], cost["test_rois"]) == (32, 20)
    per_image = cost["backbone_macs"] + cost["rpn_macs"]
    assert cost["train_macs"] == pytest.approx(per_image + 32 * cost["head_macs_per_roi"])
    assert cost["test_macs"] == pytest.approx(per_image + 20 * cost["head_macs_per_roi"])
    # conv5_x of ResNet-18 option A on 8x8 RoIs: a stride-2 3x3 256->512 conv and three 512->512, at 4x4
    conv5 = 16 * 9 * (256 * 512 + 3 * 512 * 512)
    assert conv5 < cost["head_macs_per_roi"] < 1.01 * conv5


@pytest.mark.slow
def test_vgg16_is_conv5_3_plus_fc6_fc7():
    model = build_detector("vgg16", 21, **SMALL)
    features = model.backbone.features
    assert not isinstance(features[-1], nn.MaxPool2d)  # pool5 removed: conv5_3 (+ReLU) at stride 16
    assert sum(isinstance(m, nn.MaxPool2d) for m in features) == 4
    assert sum(isinstance(m, nn.Conv2d) for m in features) == 13
    fcs = [m for m in model.roi_heads.box_head.modules() if isinstance(m, nn.Linear)]
    assert [(f.in_features, f.out_features) for f in fcs] == [(512 * 7 * 7, 4096), (4096, 4096)]
    assert model.roi_heads.box_predictor.cls_score.in_features == 4096
    with torch.no_grad():
        assert model.backbone(torch.zeros(1, 3, 64, 64)).shape == (1, 512, 4, 4)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown detection backbone 'resnet19'"):
        build_detector("resnet19", 3)
    with pytest.raises(ValueError, match="one value per input channel"):
        build_detector("resnet18", 3, in_channels=1, image_mean=[0.5, 0.5, 0.5], **SMALL)
    assert set(BACKBONES) >= {"resnet18", "resnet50", "resnet101", "vgg16", "vgg_small", "vgg_c4"}


# ------------------------------------------------------------------------------- checkpoint loading


@pytest.mark.parametrize("wrap", [True, False], ids=["dict_with_model", "raw_state_dict"])
def test_pretrained_resnetlib_checkpoint_loads(tmp_path, wrap):
    torch.manual_seed(1)
    net = models.build("resnet18", num_classes=10)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    path = tmp_path / "ckpt.pt"
    torch.save({"model": net.state_dict(), "iteration": 7} if wrap else net.state_dict(), path)
    model = build_detector("resnet18", 3, pretrained=str(path), **SMALL)
    assert torch.equal(model.backbone.conv1.weight, net.conv1.weight)
    assert torch.equal(model.roi_heads.box_head.layer4[1].conv2.weight, net.layer4[1].conv2.weight)
    # frozen with the checkpoint's statistics
    assert torch.equal(model.backbone.layer2[0].bn1.running_mean, net.layer2[0].bn1.running_mean)
    report = model.pretrained_report
    assert report["missing"] == [] and report["unexpected"] == [] and report["loaded"] > 0


def test_pretrained_grayscale_from_colour_checkpoint(tmp_path):
    net = models.build("resnet18")
    path = tmp_path / "rgb.pt"
    torch.save(net.state_dict(), path)
    model = build_detector("resnet18", 3, in_channels=1, pretrained=str(path), **SMALL)
    assert torch.allclose(model.backbone.conv1.weight, net.conv1.weight.sum(1, keepdim=True))


def test_pretrained_bad_path_and_wrong_architecture(tmp_path):
    with pytest.raises(FileNotFoundError, match="pretrained checkpoint not found: .*nope.pt"):
        build_detector("resnet18", 3, pretrained=str(tmp_path / "nope.pt"), **SMALL)
    path = tmp_path / "r50.pt"
    torch.save(models.build("resnet50").state_dict(), path)
    with pytest.raises(ValueError, match="does not fit this backbone"):
        build_detector("resnet18", 3, pretrained=str(path), **SMALL)
    junk = tmp_path / "junk.pt"
    torch.save({"something": torch.zeros(3)}, junk)
    with pytest.raises(ValueError, match="names a parameter of this network"):
        build_detector("resnet18", 3, pretrained=str(junk), **SMALL)


def test_pretrained_missing_keys_are_reported(tmp_path):
    # option-A ResNet-18 (resnetlib's default) loaded into a projection-shortcut (B) one
    path = tmp_path / "a.pt"
    torch.save(models.build("resnet18").state_dict(), path)
    with pytest.warns(UserWarning, match=r"keys missing .*downsample"):
        model = build_detector("resnet18", 3, shortcut="B", pretrained=str(path), **SMALL)
    assert any("downsample" in k for k in model.pretrained_report["missing"])
