"""ImageNet-style class folders and the Sec. 3.4 transforms, on tiny JPEG folders."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torch import nn

from resnetlib.data import (
    DataNotFoundError,
    Lighting,
    RandomShorterSideResize,
    imagenet_loaders,
    imagenet_transforms,
    ten_crop_predict,
)

SCALE, CROP = (32, 40), 24


def test_missing_folders_name_the_layout(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(DataNotFoundError) as err:
        imagenet_loaders(tmp_path, 4, workers=0)
    msg = str(err.value)
    assert str(tmp_path / "val") in msg and "train/<class>/<image>" in msg
    assert str(tmp_path / "train") + "," not in msg  # only the missing one is listed as missing


def test_random_shorter_side_resize_keeps_aspect():
    torch.manual_seed(0)
    resize = RandomShorterSideResize(30, 36)
    sizes = set()
    for _ in range(20):
        out = resize(Image.new("RGB", (80, 40)))
        assert 30 <= out.size[1] <= 36 and out.size[0] == 2 * out.size[1]
        sizes.add(out.size[1])
    assert len(sizes) > 2
    with pytest.raises(ValueError):
        RandomShorterSideResize(40, 30)


def test_lighting_adds_one_colour_per_image():
    img = torch.rand(3, 5, 5)
    out = Lighting(0.1)(img)
    shift = out - img
    assert torch.allclose(shift, shift[:, :1, :1].expand_as(shift))
    assert shift.abs().max() > 0
    assert torch.equal(Lighting(0.0)(img), img)


def test_train_and_ten_crop_transforms():
    img = Image.new("RGB", (50, 40), color=(255, 0, 0))
    x = imagenet_transforms(True, scale=SCALE, crop=CROP)(img)
    assert x.shape == (3, CROP, CROP)
    plain = imagenet_transforms(True, scale=SCALE, crop=CROP, color=False)(img)
    torch.testing.assert_close(
        plain[:, 0, 0], torch.tensor([1 - 0.485, -0.456, -0.406])
    )  # mean subtracted, no std

    g = torch.Generator().manual_seed(0)
    gradient = Image.fromarray((torch.rand(40, 50, 3, generator=g) * 255).byte().numpy())
    crops = imagenet_transforms(False, scale=SCALE, crop=CROP)(gradient)
    assert crops.shape == (10, 3, CROP, CROP)
    assert torch.equal(crops[9], crops[4].flip(-1))  # centre crop of the mirror = mirrored centre crop
    assert torch.equal(crops[5], crops[1].flip(-1))  # mirror's top-left = mirrored top-right
    with pytest.raises(ValueError, match="crop"):
        imagenet_transforms(True, scale=(20, 30), crop=24)


def test_loaders_on_jpeg_folders_with_grey_images(tmp_path, writers):
    writers.jpeg_folders(tmp_path, per_class=4)
    train, val, classes = imagenet_loaders(tmp_path, 4, workers=0, scale=SCALE, crop=CROP, seed=1)
    assert classes == ["cat", "dog"]
    x, y = next(iter(train))
    assert x.shape == (4, 3, CROP, CROP) and y.dtype == torch.int64  # grey JPEGs come out RGB
    assert len(train) == 2  # 8 images, batches of 4
    xv, _yv = next(iter(val))
    assert xv.shape == (4, 10, 3, CROP, CROP)
    assert sorted(torch.cat([y for _, y in val]).tolist()) == [0] * 4 + [1] * 4

    small, small_val, _ = imagenet_loaders(
        tmp_path, 2, workers=0, scale=SCALE, crop=CROP, train_size=5, val_size=3
    )
    assert len(small.dataset) == 5 and len(small_val.dataset) == 3
    with pytest.raises(ValueError, match="fewer than one batch"):
        imagenet_loaders(tmp_path, 16, workers=0, scale=SCALE, crop=CROP)


def test_train_and_val_classes_must_agree(tmp_path, writers):
    writers.jpeg_folders(tmp_path)
    (tmp_path / "val" / "dog").rename(tmp_path / "val" / "wolf")
    with pytest.raises(ValueError, match="same class folders"):
        imagenet_loaders(tmp_path, 2, workers=0, scale=SCALE, crop=CROP)


def test_ten_crop_predict_averages_softmax():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    x10 = torch.randn(2, 10, 3, 4, 4)
    scores = ten_crop_predict(model, x10)
    assert scores.shape == (2, 5)
    expected = model(x10.flatten(0, 1)).softmax(1).view(2, 10, 5).mean(1)
    torch.testing.assert_close(scores.exp(), expected)
    with pytest.raises(ValueError, match="n_crops"):
        ten_crop_predict(model, x10[:, 0])
