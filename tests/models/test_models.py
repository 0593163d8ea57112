"""Every network of the paper: shapes, Table 6 sizes, shortcut options, torchvision compatibility."""

import pytest
import torch
import torchvision
from torch import nn

from resnetlib import models, paper
from resnetlib.analysis import count_params, count_weighted_layers
from resnetlib.models.blocks import ShortcutA


def small_input(name: str, channels: int = 3) -> torch.Tensor:
    size = 32 if models.family(name) == "cifar" else 64
    return torch.randn(2, channels, size, size)


@pytest.mark.parametrize("name", [n for n in models.names() if n not in {"cifar_resnet1202", "vgg16", "vgg19"}])
def test_every_registered_model_runs_forward(name):
    net = models.build(name, num_classes=7).eval()
    with torch.no_grad():
        out = net(small_input(name))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


@pytest.mark.slow
def test_resnet1202_and_vgg_forward():
    with torch.no_grad():
        assert models.build("cifar_resnet1202").eval()(torch.randn(1, 3, 32, 32)).shape == (1, 10)
        # VGG needs 224x224 inputs for its fc layers only up to adaptive pooling; 32x32 works.
        assert models.build("vgg16", num_classes=5).eval()(torch.randn(1, 3, 32, 32)).shape == (1, 5)


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110, 1202])
def test_cifar_params_round_to_table6(depth):
    n = count_params(models.build(f"cifar_resnet{depth}"))
    reported = paper.value(f"table6.params.resnet{depth}")
    digits = 2 if reported < 1e6 else 1  # the paper prints 0.27M but 1.7M and 19.4M
    assert round(n / 1e6, digits) == pytest.approx(reported / 1e6)


@pytest.mark.parametrize("depth", [20, 56, 110])
def test_cifar_depth_counts_weighted_layers(depth):
    for kind in ("resnet", "plain"):
        assert count_weighted_layers(models.build(f"cifar_{kind}{depth}")) == depth


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "plain34"])
def test_imagenet_depth_counts_weighted_layers(name):
    assert count_weighted_layers(models.build(name)) == int(name.removeprefix("resnet").removeprefix("plain"))


def test_plain_and_residual_cifar_have_the_same_parameters():
    assert count_params(models.build("cifar_plain56")) == count_params(models.build("cifar_resnet56"))


def test_any_6n_plus_2_depth_builds_and_others_fail_clearly():
    assert count_weighted_layers(models.cifar_resnet(26)) == 26
    assert count_weighted_layers(models.build("cifar_plain14")) == 14
    for bad in (21, 4, 0, 111):
        with pytest.raises(ValueError, match="6n\\+2"):
            models.cifar_resnet(bad)
    with pytest.raises(ValueError, match="6n\\+2"):
        models.build("cifar_resnet21")


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError) as err:
        models.build("resnet51")
    assert "resnet50" in str(err.value) and "cifar_resnet110" in str(err.value)


def test_bad_options_fail_clearly():
    with pytest.raises(ValueError, match="shortcut must be one of"):
        models.build("resnet34", shortcut="D")
    with pytest.raises(ValueError, match="bad option"):
        models.build("cifar_resnet20", colour=True)
    with pytest.raises(ValueError, match="plain nets have no shortcuts"):
        models.build("plain34", shortcut="B")
    with pytest.raises(ValueError, match="depth"):
        models.resnet(42)


def projection_blocks(net: nn.Module) -> list[str]:
    return [n for n, m in net.named_modules() if n.endswith("downsample") and isinstance(m, nn.Sequential)]


def test_shortcut_options_A_B_C_parameters():
    """Table 3: A is parameter-free, B projects only where dimensions change, C projects everywhere."""
    a, b, c = (models.build("resnet34", shortcut=s) for s in "ABC")
    plain = models.build("plain34")
    assert count_params(a) == count_params(plain)
    assert projection_blocks(a) == []
    assert projection_blocks(b) == ["layer2.0.downsample", "layer3.0.downsample", "layer4.0.downsample"]
    blocks = sum(len(getattr(c, f"layer{i}")) for i in range(1, 5))
    assert len(projection_blocks(c)) == blocks == 16
    assert count_params(a) < count_params(b) < count_params(c)


def test_cifar_option_A_is_a_named_zero_padding_module():
    net = models.build("cifar_resnet20")
    assert isinstance(net.layer2[0].downsample, ShortcutA)
    assert net.layer1[0].downsample is None
    assert "ShortcutA(16, 32, stride=2, zero-padding)" in repr(net)
    x = torch.randn(2, 16, 8, 8)
    y = net.layer2[0].downsample(x)
    assert y.shape == (2, 32, 4, 4)
    assert torch.equal(y[:, :16], x[:, :, ::2, ::2]) and not y[:, 16:].any()


def test_bottleneck_stride_placement():
    v1 = models.build("resnet50")
    v15 = models.build("resnet50", stride_in_1x1=False)
    assert v1.layer2[0].conv1.stride == (2, 2) and v1.layer2[0].conv2.stride == (1, 1)
    assert v15.layer2[0].conv1.stride == (1, 1) and v15.layer2[0].conv2.stride == (2, 2)


def test_imagenet_defaults_follow_the_paper():
    assert models.build("resnet34").shortcut == "A"
    assert models.build("resnet50").shortcut == "B"
    assert models.build("resnet18").fc.out_features == 1000


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_torchvision_weights_load_strictly_and_give_the_same_logits(name):
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)(weights=None).eval()
    ours = models.build(name, stride_in_1x1=False, shortcut="B").eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(ours(x), reference(x), atol=1e-5, rtol=1e-4)


def test_in_channels_for_grayscale():
    net = models.build("cifar_resnet20", in_channels=1).eval()
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_he_initialization_scale():
    conv = models.build("cifar_resnet20").layer3[0].conv2
    fan_out = conv.out_channels * 9
    assert conv.weight.std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.1)


def test_activation_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    a = models.build("cifar_resnet20")
    b = models.build("cifar_resnet20", activation_checkpointing=True)
    b.load_state_dict(a.state_dict())
    x = torch.randn(4, 3, 32, 32)
    a(x).sum().backward()
    b(x).sum().backward()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.allclose(pa.grad, pb.grad, atol=1e-5)
