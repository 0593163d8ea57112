"""export_image_folder: a small data set as PNG class folders that ImageFolder reads back exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torchvision.datasets import ImageFolder

from resnetlib import data
from resnetlib.data import export, export_image_folder, imagenet_loaders


def test_round_trip_through_image_folder(tmp_path, fake_fashion):
    root, _ = fake_fashion
    d = data.load("fashion_mnist", root, train_size=30, test_size=20)
    out = export_image_folder(d, tmp_path / "export")
    train, val = ImageFolder(str(out / "train")), ImageFolder(str(out / "val"))
    assert len(train) == 30 and len(val) == 20
    assert train.classes[0] == "0_T-shirt_top" and train.classes[9] == "9_Ankle_boot"
    # ImageFolder's labels are the original labels, and the pixels survive (PNG, no resize)
    labels = [label for _, label in train.samples]
    assert sorted(labels) == sorted(d.train.labels.tolist())
    for path, label in train.samples[:10]:
        idx = int(path.rsplit("/", 1)[1].split(".")[0])
        assert label == int(d.train.labels[idx])
        pixels = torch.from_numpy(np.array(train.loader(path)))[..., 0]  # loader gives RGB
        assert torch.equal(pixels, d.train.images[idx, 0])
    marker = json.loads((out / "export.json").read_text())
    assert marker["train_images"] == 30 and marker["source"] == str(root)


def test_resize_limits_and_idempotence(tmp_path):
    d = data.load("synthetic", train_size=40, test_size=20)
    out = export_image_folder(d, tmp_path / "ex", image_size=12, train_limit=10, val_limit=5)
    train = ImageFolder(str(out / "train"))
    assert len(train) == 10
    assert (
        len(ImageFolder(str(out / "val"), allow_empty=True)) == 5
    )  # 5 images, 10 classes: some folders empty
    assert len(list((out / "val").iterdir())) == 10  # but every class has its folder, so labels stay aligned
    assert train.loader(train.samples[0][0]).size == (12, 12)
    stamp = (out / "export.json").stat().st_mtime_ns
    assert export_image_folder(d, out, image_size=12, train_limit=10, val_limit=5) == out
    assert (out / "export.json").stat().st_mtime_ns == stamp  # kept, not rewritten
    export_image_folder(d, out, image_size=16, train_limit=10, val_limit=5)  # new settings: redone
    assert ImageFolder(str(out / "train")).loader(train.samples[0][0]).size == (16, 16)
    assert not list(tmp_path.glob(".ex.partial-*"))


def test_no_half_export_on_failure(tmp_path, monkeypatch):
    d = data.load("synthetic", train_size=8, test_size=4)
    calls = []

    def failing(split, folder, class_dirs, size):
        calls.append(folder)
        if folder.name == "val":
            raise KeyboardInterrupt
        real(split, folder, class_dirs, size)

    real = export._write_split
    monkeypatch.setattr(export, "_write_split", failing)
    with pytest.raises(KeyboardInterrupt):
        export_image_folder(d, tmp_path / "ex")
    assert len(calls) == 2
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="refusing"):
        export_image_folder(data.load("synthetic", train_size=8, test_size=4), tmp_path / "mine")


def test_export_stands_in_for_imagenet(tmp_path, fake_fashion):
    root, _ = fake_fashion
    d = data.load("fashion_mnist", root, train_size=20, test_size=10)
    out = export_image_folder(d, tmp_path / "fm", image_size=32)
    train, val, classes = imagenet_loaders(out, 4, workers=0, scale=(32, 36), crop=28)
    assert len(classes) == 10
    x, _ = next(iter(train))
    assert x.shape == (4, 3, 28, 28)
    assert next(iter(val))[0].shape == (4, 10, 3, 28, 28)
