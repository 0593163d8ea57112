"""DeviceBatches: batches as a pure function of (seed, i), epochs, DDP shares, crop and flip (Sec. 4.2)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from resnetlib.data import DeviceBatches, Split

N, C, H = 48, 2, 8


@pytest.fixture
def split() -> Split:
    """Random images whose label is the sample's index, so every batch row names its source sample."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (N, C, H, H), generator=g, dtype=torch.uint8)
    return Split(images, torch.arange(N))


@pytest.fixture
def mean(split) -> torch.Tensor:
    return split.images.float().mean(0) / 255


def _normalized(split, mean, y):
    return split.images[y].float() / 255 - mean


def test_batch_is_a_pure_function_of_seed_and_iteration(split, mean):
    a = DeviceBatches(split, mean, 16, seed=7, device="cpu")
    b = DeviceBatches(split, mean, 16, seed=7, device="cpu")
    for i in (0, 5, 1, 5, 13, 0):  # any order: no hidden state
        xa, ya = a.batch(i)
        xb, yb = b.batch(i)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert xa.dtype == torch.float32 and ya.dtype == torch.int64 and xa.shape == (16, C, H, H)
    x2, _ = a.batch(2)
    x3, _ = a.batch(3)
    assert not torch.equal(x2, x3)
    other, _ = DeviceBatches(split, mean, 16, seed=8, device="cpu").batch(0)
    assert not torch.equal(other, a.batch(0)[0])


def test_epoch_visits_every_sample_once(split, mean):
    b = DeviceBatches(split, mean, 16, seed=1, device="cpu", augment=False)
    assert (b.batches_per_epoch, b.num_samples, len(b)) == (3, N, 3)
    epochs = [torch.cat([b.batch(e * 3 + j)[1] for j in range(3)]) for e in range(3)]
    for order in epochs:
        assert sorted(order.tolist()) == list(range(N))
    assert not torch.equal(epochs[0], epochs[1])
    x, y = b.batch(4)
    torch.testing.assert_close(x, _normalized(split, mean, y), rtol=0, atol=0)


def test_drop_last_semantics(split, mean):
    b = DeviceBatches(split, mean, 20, seed=0, device="cpu", augment=False)
    assert b.batches_per_epoch == 2  # 48 // 20; 8 samples are left out of each epoch
    seen = torch.cat([b.batch(i)[1] for i in range(2)])
    assert len(set(seen.tolist())) == 40


@pytest.mark.parametrize("world", [2, 4])
def test_rank_shares_interleave_into_the_global_batch(split, mean, world):
    b = DeviceBatches(split, mean, 16, seed=3, device="cpu")
    for i in (0, 4):
        x, y = b.batch(i)
        for rank in range(world):
            xr, yr = b.batch(i, rank=rank, world=world)
            assert torch.equal(xr, x[rank::world]) and torch.equal(yr, y[rank::world])


def test_argument_errors(split, mean):
    b = DeviceBatches(split, mean, 16, seed=0, device="cpu")
    with pytest.raises(ValueError, match="not divisible by the world size 3"):
        b.batch(0, rank=0, world=3)
    with pytest.raises(ValueError, match="rank"):
        b.batch(0, rank=2, world=2)
    with pytest.raises(ValueError, match="batch index"):
        b.batch(-1)
    with pytest.raises(ValueError, match="larger than the split"):
        DeviceBatches(split, mean, N + 1, seed=0, device="cpu")
    with pytest.raises(ValueError, match="mean has shape"):
        DeviceBatches(split, mean[:1], 16, seed=0, device="cpu")


def _match(x, orig, padding):
    """The (dy, dx, flipped) for which x is a crop of zero-padded ``orig`` (or its mirror), else None."""
    padded = F.pad(orig, (padding,) * 4)
    for flipped in (False, True):
        source = padded.flip(-1) if flipped else padded
        for dy in range(2 * padding + 1):
            for dx in range(2 * padding + 1):
                if torch.equal(source[:, dy : dy + H, dx : dx + H], x):
                    return dy, dx, flipped
    return None


def test_crops_are_zero_padded_shifts_and_flips(split, mean):
    padding = 2
    b = DeviceBatches(split, mean, 16, seed=5, device="cpu", padding=padding)
    found, checked_zeros = [], 0
    for i in range(6):
        x, y = b.batch(i)
        for xi, yi in zip(x, y):
            m = _match(xi, _normalized(split, mean, yi), padding)
            assert m is not None, "an augmented image is not a shifted/flipped crop of its source"
            found.append(m)
            if m[0] < padding:  # shifted down: the top rows come from the zero padding
                assert torch.all(xi[:, : padding - m[0]] == 0)
                checked_zeros += 1
    shifts = {(dy, dx) for dy, dx, _ in found}
    flips = [f for _, _, f in found]
    assert len(shifts) > 10  # offsets spread over the (2p+1)^2 positions
    assert 0.25 < sum(flips) / len(flips) < 0.75  # p = 0.5
    assert checked_zeros > 0


def test_flip_off_and_augment_off(split, mean):
    b = DeviceBatches(split, mean, 16, seed=5, device="cpu", padding=1, flip=False)
    for i in range(3):
        x, y = b.batch(i)
        assert all(_match(xi, _normalized(split, mean, yi), 1)[2] is False for xi, yi in zip(x, y))
    no_pad = DeviceBatches(split, mean, 16, seed=5, device="cpu", padding=0)
    x, y = no_pad.batch(0)
    for xi, yi in zip(x, y):
        orig = _normalized(split, mean, yi)
        assert torch.equal(xi, orig) or torch.equal(xi, orig.flip(-1))


def test_eval_batches_cover_the_split_in_order(split, mean):
    b = DeviceBatches(split, mean, 16, seed=0, device="cpu")
    parts = list(b.eval_batches(20))
    assert [len(y) for _, y in parts] == [20, 20, 8]
    x = torch.cat([x for x, _ in parts])
    y = torch.cat([y for _, y in parts])
    assert y.tolist() == list(range(N))
    torch.testing.assert_close(x, split.images.float() / 255 - mean, rtol=0, atol=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batches_equal_cpu_batches(split, mean):
    cpu = DeviceBatches(split, mean, 16, seed=2, device="cpu")
    gpu = DeviceBatches(split, mean, 16, seed=2, device="cuda")
    for i in (0, 7):
        x, y = gpu.batch(i, rank=1, world=2)
        assert x.is_cuda and x.dtype == torch.float32
        xc, yc = cpu.batch(i, rank=1, world=2)
        torch.testing.assert_close(x.cpu(), xc, rtol=0, atol=1e-6)
        assert torch.equal(y.cpu(), yc)
    assert gpu.images.is_cuda and gpu.images.dtype == torch.uint8
