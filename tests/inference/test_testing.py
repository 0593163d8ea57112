"""Sec. 3.4's test protocols (centre crop, 10-crop, fully-convolutional multi-scale) on JPEG class folders."""

import numpy as np
import pytest
import torch
from PIL import Image

from resnetlib import inference, models, paper
from resnetlib.inference import Predictions


def write_folders(root, sizes, classes=("a", "b", "c"), seed=0):
    """``root/<class>/<i>.jpg`` with the given (width, height) sizes, cycling through the classes."""
    rng = np.random.default_rng(seed)
    for i, (w, h) in enumerate(sizes):
        folder = root / classes[i % len(classes)]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{i}.jpg")
    return root


@pytest.fixture
def net():
    torch.manual_seed(0)
    return models.build("resnet18", num_classes=3).eval()


def test_score_map_is_the_fc_layer_over_every_position(net):
    x = torch.randn(2, 3, 64, 96)
    scores = inference.score_map(net, x)
    assert scores.shape == (2, 3, 2, 3)  # stride 32: a 2x3 map of class scores
    with torch.no_grad():
        torch.testing.assert_close(scores.mean((2, 3)), net(x), rtol=1e-4, atol=1e-5)


def test_score_map_refuses_a_net_without_table1_stages():
    with pytest.raises(TypeError, match="Table 1 net"):
        inference.score_map(models.build("cifar_resnet20"), torch.randn(1, 3, 32, 32))


def test_scaled_sides_are_the_papers_at_224_and_scaled_below():
    assert inference.scaled_sides(224) == paper.IMAGENET_PROTOCOL["test_shorter_sides"] == (224, 256, 384, 480, 640)
    assert inference.scaled_sides(64) == (64, 73, 110, 137, 183)


def test_single_scale_without_mirror_equals_the_centre_crop_of_a_square_image(tmp_path, net):
    val = write_folders(tmp_path / "val", [(64, 64)] * 6)
    crop = inference.predict(net, val, "center_crop", crop=64, resize=64)
    whole = inference.predict(net, val, "multiscale", crop=64, sides=[64], flip=False)
    torch.testing.assert_close(whole.probs, crop.probs, rtol=1e-4, atol=1e-5)
    assert list(whole.per_side) == [64] and torch.equal(whole.per_side[64], whole.probs)
    assert crop.per_side is None and crop.side_errors() == {}
    assert torch.equal(whole.labels, torch.tensor([0, 0, 1, 1, 2, 2]))  # ImageFolder: sorted by class


@pytest.mark.parametrize("method", ["center_crop", "ten_crop", "multiscale"])
def test_every_method_gives_probabilities_for_images_of_mixed_sizes(tmp_path, net, method):
    val = write_folders(tmp_path / "val", [(64, 64), (80, 64), (64, 96), (70, 70), (64, 64)])
    preds = inference.predict(net, val, method, crop=64, batch_size=4, sides=[64, 96])
    assert preds.probs.shape == (5, 3)
    torch.testing.assert_close(preds.probs.sum(1), torch.ones(5))
    errors = preds.errors()
    assert set(errors) == {"top1"} and 0 <= errors["top1"] <= 100  # top-5 needs >= 5 classes
    if method == "multiscale":  # the average of the sides' own probabilities
        torch.testing.assert_close(sum(preds.per_side.values()) / 2, preds.probs)


def test_mirrored_views_are_averaged(tmp_path, net):
    val = write_folders(tmp_path / "val", [(64, 64)] * 3)
    both = inference.predict(net, val, "multiscale", crop=64, sides=[64], flip=True)
    one = inference.predict(net, val, "multiscale", crop=64, sides=[64], flip=False)
    assert not torch.allclose(both.probs, one.probs)  # random images are not mirror-symmetric


def test_a_seeded_subset_of_test_images(tmp_path, net):
    val = write_folders(tmp_path / "val", [(64, 64)] * 9)
    a = inference.predict(net, val, "center_crop", crop=64, images=4, seed=1)
    b = inference.predict(net, val, "center_crop", crop=64, images=4, seed=1)
    assert len(a.labels) == 4 and torch.equal(a.probs, b.probs)


def test_bad_method_and_missing_folder_fail_clearly(tmp_path, net):
    with pytest.raises(ValueError, match="unknown test method"):
        inference.predict(net, tmp_path, "five_crop")
    with pytest.raises(FileNotFoundError, match="no test class folders"):
        inference.predict(net, tmp_path / "nowhere", "center_crop")


def test_topk_errors():
    probs = torch.tensor([[0.5, 0.3, 0.1, 0.05, 0.03, 0.02], [0.1, 0.2, 0.3, 0.25, 0.1, 0.05]])
    preds = Predictions(probs, torch.tensor([1, 5]))
    assert preds.errors() == {"top1": 100.0, "top5": 50.0}


def test_ensemble_averages_the_members_probabilities():
    labels = torch.tensor([0, 1])
    a = Predictions(torch.tensor([[0.9, 0.1], [0.6, 0.4]]), labels)
    b = Predictions(torch.tensor([[0.3, 0.7], [0.1, 0.9]]), labels)
    ens = inference.ensemble([a, b])
    torch.testing.assert_close(ens.probs, torch.tensor([[0.6, 0.4], [0.35, 0.65]]))
    assert (a.errors()["top1"], b.errors()["top1"], ens.errors()["top1"]) == (50.0, 50.0, 0.0)


def test_ensemble_refuses_members_of_other_images():
    a = Predictions(torch.ones(2, 2) / 2, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="same images"):
        inference.ensemble([a, Predictions(torch.ones(2, 2) / 2, torch.tensor([1, 0]))])
    with pytest.raises(ValueError, match="at least one"):
        inference.ensemble([])
