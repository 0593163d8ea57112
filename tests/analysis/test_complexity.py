"""Table 1 FLOPs through torch.utils.flop_counter, Fig. 7 responses."""

import pytest
import torch
from torch import nn

from resnetlib import models, paper
from resnetlib.analysis import count_macs, count_params, layer_response_std
from resnetlib.analysis.responses import layer_response_stds


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "vgg19"])
def test_macs_within_3_percent_of_table1(name):
    macs = count_macs(models.build(name), (3, 224, 224))
    assert macs == pytest.approx(paper.value(f"table1.macs.{name}"), rel=0.03)


def test_macs_counts_multiply_adds_of_a_known_layer():
    conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False))
    assert count_macs(conv, (3, 10, 10)) == 8 * 10 * 10 * 3 * 9
    with pytest.raises(ValueError, match="input_shape"):
        count_macs(conv, (10, 10))


def test_macs_leaves_training_mode_alone():
    net = models.build("cifar_resnet20").train()
    count_macs(net, (3, 32, 32))
    assert net.training


def test_count_params_trainable_only():
    net = nn.Linear(3, 2)
    net.bias.requires_grad_(False)
    assert count_params(net) == 8 and count_params(net, trainable_only=True) == 6


def test_layer_responses_one_per_3x3_layer_and_match_direct_std():
    torch.manual_seed(0)
    net = models.build("cifar_resnet20")
    x = torch.randn(16, 3, 32, 32)
    stds = layer_response_std(net, [(x[:7], None), (x[7:], None)])
    assert len(stds) == 19  # the first conv and 2 per block, 9 blocks
    net.eval()
    with torch.no_grad():
        first = net.bn1(net.conv1(x))
    assert stds[0] == pytest.approx(first.double().std(unbiased=False).item(), rel=1e-6)


def test_layer_responses_need_batches():
    with pytest.raises(ValueError, match="no batches"):
        layer_response_std(models.build("cifar_resnet20"), [])


def test_layer_responses_both_definitions_match_direct_computation():
    """whole = std over every element; per_channel = each channel's std over (N, H, W), averaged."""
    torch.manual_seed(0)
    net = models.build("cifar_resnet20").eval()
    x = torch.randn(12, 3, 32, 32)
    outputs = []
    first = next(iter(net.response_layers()))
    handle = first.register_forward_hook(lambda _m, _i, out: outputs.append(out.double()))
    with torch.no_grad():
        net(x)
    handle.remove()
    out = outputs[0]
    stds = layer_response_stds(net, [(x[:5], None), (x[5:], None)])
    assert stds["whole"][0] == pytest.approx(out.std(unbiased=False).item(), rel=1e-9)
    per_channel = out.transpose(0, 1).flatten(1).std(1, unbiased=False).mean().item()
    assert stds["per_channel"][0] == pytest.approx(per_channel, rel=1e-9)
    # A per-channel offset counts in the whole-tensor std only.
    assert stds["whole"][0] != pytest.approx(stds["per_channel"][0], rel=1e-3)
