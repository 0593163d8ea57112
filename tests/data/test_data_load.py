"""resnetlib.data.load on tiny files in the real CIFAR-10 / Fashion-MNIST formats."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from resnetlib import data
from resnetlib.data import DataCorruptError, DataNotFoundError, ImageData, Split
from resnetlib.data.fashion_mnist import read_idx

# ---- load(): names and arguments -------------------------------------------------------------


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError) as err:
        data.load("imagenet1k")
    for name in ("cifar10", "fashion_mnist", "synthetic"):
        assert name in str(err.value)
    assert set(data.DATASETS) == {"cifar10", "fashion_mnist", "synthetic"}


@pytest.mark.parametrize(
    "kwargs", [{"train_size": 0}, {"val_size": -1}, {"test_size": 2.5}, {"train_size": True}]
)
def test_bad_sizes_rejected_before_reading(kwargs, tmp_path):
    with pytest.raises(ValueError, match="must be an integer"):
        data.load("cifar10", tmp_path / "absent", **kwargs)  # a ValueError, not DataNotFoundError


def test_split_checks_types():
    with pytest.raises(TypeError, match="uint8"):
        Split(torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(TypeError, match="int64"):
        Split(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(2, dtype=torch.int32))
    with pytest.raises(ValueError, match="3 labels"):
        Split(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(3, dtype=torch.int64))


# ---- CIFAR-10 --------------------------------------------------------------------------------


def test_fake_cifar_is_in_the_official_pickle_format(tmp_path, writers):
    folder = writers.cifar10(tmp_path)["folder"]
    with open(folder / "data_batch_1", "rb") as f:
        entry = pickle.load(f, encoding="bytes")  # how the CIFAR web page says to read it
    assert {b"data", b"labels", b"batch_label", b"filenames"} <= set(entry)
    assert entry[b"data"].shape == (20, 3072) and entry[b"data"].dtype == np.uint8


def test_cifar10_loads_through_torchvision(tmp_path, writers, skip_cifar_md5):
    written = writers.cifar10(tmp_path)
    d = data.load("cifar10", tmp_path)
    assert isinstance(d, ImageData)
    assert (len(d.train), len(d.test), d.val) == (100, 20, None)
    assert d.train.images.dtype == torch.uint8 and d.train.images.shape == (100, 3, 32, 32)
    assert torch.equal(d.train.images, torch.from_numpy(written["train_images"]))  # NCHW, R then G then B
    assert d.train.labels.tolist() == written["train_labels"]
    assert torch.equal(d.test.images, torch.from_numpy(written["test_images"]))
    assert d.classes[:2] == ["airplane", "automobile"] and d.num_classes == 10
    assert (d.in_channels, d.image_size) == (3, 32)
    assert d.source == str(written["folder"])
    # the root may also name the cifar-10-batches-py folder itself
    assert data.load("cifar10", written["folder"]).source == str(written["folder"])


def test_cifar10_missing_folder_is_reported_before_any_download(tmp_path, monkeypatch):
    import torchvision.datasets

    def no_network(*args, **kwargs):
        raise AssertionError("torchvision must not be asked for a download")

    monkeypatch.setattr(torchvision.datasets.CIFAR10, "download", no_network)
    with pytest.raises(DataNotFoundError) as err:
        data.load("cifar10", tmp_path / "nowhere")
    msg = str(err.value)
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py") in msg
    assert "cifar-10-python.tar.gz" in msg and "download=True" in msg
    assert isinstance(err.value, FileNotFoundError)


def test_cifar10_names_the_missing_file(tmp_path, writers):
    folder = writers.cifar10(tmp_path)["folder"]
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataNotFoundError, match="missing data_batch_3"):
        data.load("cifar10", tmp_path)


def test_cifar10_failed_download_is_data_not_found(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(self):
        raise RuntimeError("network unreachable")

    monkeypatch.setattr(torchvision.datasets.CIFAR10, "download", offline)
    with pytest.raises(DataNotFoundError, match="download=True failed: RuntimeError: network unreachable"):
        data.load("cifar10", tmp_path, download=True)


def test_cifar10_checksum_mismatch_is_a_clear_error(tmp_path, writers):
    writers.cifar10(tmp_path)  # our files do not match the official md5 sums torchvision checks
    with pytest.raises(DataCorruptError, match="md5"):
        data.load("cifar10", tmp_path)


# ---- Fashion-MNIST ---------------------------------------------------------------------------


def test_fashion_mnist_from_root(fake_fashion):
    root, arrays = fake_fashion
    d = data.load("fashion_mnist", root)
    assert d.source == str(root)
    assert d.train.images.shape == (200, 1, 28, 28) and d.test.images.shape == (50, 1, 28, 28)
    assert torch.equal(d.train.images[:, 0], torch.from_numpy(arrays["train_images"]))
    assert d.train.labels.dtype == torch.int64
    assert d.train.labels.tolist() == arrays["train_labels"].tolist()
    assert d.classes[0] == "T-shirt/top" and d.classes[9] == "Ankle boot"
    assert d.describe() == f"fashion_mnist from {root}: 200 train / 0 val / 50 test, 1x28x28"


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_in_torchvision_layout(tmp_path, writers, no_debian_fashion, compress):
    raw = tmp_path / "FashionMNIST" / "raw"
    writers.fashion_mnist(raw, compress=compress)
    d = data.load("fashion_mnist", tmp_path)
    assert d.source == str(raw) and len(d.train) == 200


def test_fashion_mnist_missing_names_every_folder(tmp_path, no_debian_fashion):
    with pytest.raises(DataNotFoundError) as err:
        data.load("fashion_mnist", tmp_path / "empty")
    msg = str(err.value)
    assert str(tmp_path / "empty") in msg
    assert str(tmp_path / "empty" / "FashionMNIST" / "raw") in msg
    assert str(tmp_path / "no-debian-here") in msg
    assert "apt-get install dataset-fashion-mnist" in msg and "download=True" in msg


def test_corrupt_idx_wrong_magic(fake_fashion, writers):
    root, arrays = fake_fashion
    writers.idx(root / "train-labels-idx1-ubyte.gz", arrays["train_images"], 2051)  # images where labels go
    with pytest.raises(DataCorruptError, match=r"magic number is 2051, expected 2049"):
        data.load("fashion_mnist", root)


def test_corrupt_idx_truncated_and_not_gzip(tmp_path, writers):
    path = tmp_path / "x-idx3-ubyte"
    writers.idx(path, np.zeros((5, 28, 28), np.uint8), 2051, compress=False)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataCorruptError, match="truncated"):
        read_idx(path, 2051)
    bad = tmp_path / "y-idx3-ubyte.gz"
    bad.write_bytes(b"this is not gzip")
    with pytest.raises(DataCorruptError, match="gzip"):
        read_idx(bad, 2051)


# ---- splits, subsets and the mean ------------------------------------------------------------


def _ids(split: Split) -> set[int]:
    """The sample number the fake writers encode in each image's first two bytes."""
    flat = split.images.flatten(1)
    return set((flat[:, 0].long() * 256 + flat[:, 1].long()).tolist())


def test_val_split_sizes_disjoint_and_balanced(fake_fashion):
    root, _ = fake_fashion
    d = data.load("fashion_mnist", root, val_size=50, seed=3)
    assert (len(d.train), len(d.val), len(d.test)) == (150, 50, 50)
    assert _ids(d.train).isdisjoint(_ids(d.val))
    assert _ids(d.train) | _ids(d.val) == set(range(200))
    assert torch.bincount(d.val.labels, minlength=10).tolist() == [5] * 10


def test_subsets_are_seeded_and_val_ignores_train_size(fake_fashion):
    root, _ = fake_fashion
    a = data.load("fashion_mnist", root, train_size=60, val_size=40, test_size=20, seed=1)
    b = data.load("fashion_mnist", root, train_size=60, val_size=40, test_size=20, seed=1)
    c = data.load("fashion_mnist", root, train_size=60, val_size=40, test_size=20, seed=2)
    d = data.load("fashion_mnist", root, train_size=100, val_size=40, seed=1)
    assert (len(a.train), len(a.val), len(a.test)) == (60, 40, 20)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.labels, b.test.labels)
    assert _ids(a.train) != _ids(c.train)
    assert _ids(a.val) == _ids(d.val)
    assert _ids(a.train).isdisjoint(_ids(a.val))
    assert torch.bincount(a.train.labels, minlength=10).tolist() == [6] * 10


def test_sizes_larger_than_the_data_are_errors(fake_fashion):
    root, _ = fake_fashion
    with pytest.raises(ValueError, match="exceeds the 200 training images"):
        data.load("fashion_mnist", root, train_size=180, val_size=30)
    with pytest.raises(ValueError, match="test_size=60 exceeds"):
        data.load("fashion_mnist", root, test_size=60)


def test_mean_is_per_pixel_mean_of_final_train_split(fake_fashion):
    root, _ = fake_fashion
    d = data.load("fashion_mnist", root, train_size=70, val_size=30)
    assert d.mean.shape == (1, 28, 28) and d.mean.dtype == torch.float32
    expected = d.train.images.double().mean(0) / 255
    torch.testing.assert_close(d.mean.double(), expected, rtol=0, atol=1e-6)
    assert 0 <= float(d.mean.min()) and float(d.mean.max()) <= 1


# ---- synthetic -------------------------------------------------------------------------------


def test_synthetic():
    d = data.load("synthetic", train_size=30, val_size=10, test_size=8, seed=4)
    assert d.source == "synthetic (random)" and d.name == "synthetic"
    assert (len(d.train), len(d.val), len(d.test)) == (30, 10, 8)
    assert d.train.images.shape == (30, 3, 32, 32) and d.mean.shape == (3, 32, 32)
    again = data.load("synthetic", train_size=30, val_size=10, test_size=8, seed=4)
    assert torch.equal(d.train.images, again.train.images)

    from resnetlib.data.synthetic import synthetic

    small = synthetic(16, 4, channels=1, image_size=8, num_classes=3)
    assert small.train.images.shape == (16, 1, 8, 8) and small.num_classes == 3
    assert int(small.train.labels.max()) < 3
    with pytest.raises(ValueError, match="channels"):
        synthetic(16, 4, channels=0)


def test_image_size_resizes_every_split_once_and_retakes_the_mean(fake_fashion):
    root, arrays = fake_fashion
    d = data.load("fashion_mnist", root, val_size=20, image_size=16)
    for split in (d.train, d.val, d.test):
        assert split.images.dtype == torch.uint8 and tuple(split.images.shape[1:]) == (1, 16, 16)
    assert d.mean.shape == (1, 16, 16)
    assert torch.allclose(d.mean, d.train.images.float().mean(0) / 255, atol=1e-6)
    assert d.describe().endswith("1x16x16")
    full = data.load("fashion_mnist", root, val_size=20)
    assert d.train.labels.tolist() == full.train.labels.tolist()  # same samples, only smaller
    # a constant image stays constant (antialiased bilinear averages neighbours)
    flat = data.Split(torch.full((2, 1, 28, 28), 77, dtype=torch.uint8), torch.zeros(2, dtype=torch.int64))
    assert torch.equal(data.resize_images(data.ImageData("x", "", flat, None, flat, full.mean, ["a"]), 16).train.images,
                       torch.full((2, 1, 16, 16), 77, dtype=torch.uint8))


@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_bad_image_size_is_refused(fake_fashion, size):
    root, _ = fake_fashion
    with pytest.raises(ValueError, match="image_size must be a positive integer"):
        data.load("fashion_mnist", root, image_size=size)
