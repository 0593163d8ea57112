"""The activation-memory meter (Sec. 4.2, ResNet-1202): what autograd saves for backward, by storage."""

import torch
from torch import nn

from resnetlib import models
from resnetlib.analysis.memory import SavedForBackward, activation_bytes


def test_activation_bytes_counts_saved_activations_not_weights():
    torch.manual_seed(0)
    x = torch.randn(3, 100)
    assert activation_bytes(nn.Linear(100, 10), x) == x.numel() * 4  # the input; the weight is excluded


def test_activation_bytes_smaller_with_checkpointing_and_scales_with_batch():
    torch.manual_seed(0)
    full = models.build("cifar_resnet20")
    ckpt = models.build("cifar_resnet20", activation_checkpointing=True)
    x2, x4 = torch.randn(2, 3, 32, 32), torch.randn(4, 3, 32, 32)
    b_full, b_ckpt = activation_bytes(full, x2), activation_bytes(ckpt, x2)
    assert 0 < b_ckpt < b_full / 2
    assert 1.9 < activation_bytes(full, x4) / b_full < 2.05


def test_saved_for_backward_splits_activations_parameters_and_buffers():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(100, 10), nn.BatchNorm1d(10)).train()
    x = torch.randn(4, 100, requires_grad=True)
    with SavedForBackward(net) as saved:
        net(x)
    # Linear saves x and its weight; BN its input (4x10), weight, running mean/var and batch mean/invstd.
    assert saved.params == 100 * 10 * 4 + 10 * 4
    assert saved.buffers == 2 * 10 * 4
    assert saved.activations == x.numel() * 4 + 4 * 10 * 4 + 2 * 10 * 4
    assert saved.total == saved.activations + saved.params + saved.buffers


def test_a_storage_saved_twice_counts_once():
    x, w = torch.randn(8, 16, requires_grad=True), torch.randn(8, 16)
    with SavedForBackward(nn.Identity()) as saved:
        (x * w).sum()
        (x * w[:, :]).sum()  # w again, through a view of the same storage
    assert saved.activations == w.numel() * 4
