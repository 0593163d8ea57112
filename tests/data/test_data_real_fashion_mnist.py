"""The real Fashion-MNIST from Debian's dataset-fashion-mnist package, where it is installed."""

from __future__ import annotations

import pytest
import torch

from resnetlib import data
from resnetlib.data.fashion_mnist import DEBIAN_FOLDER


@pytest.mark.skipif(
    not DEBIAN_FOLDER.is_dir(), reason=f"{DEBIAN_FOLDER} absent (apt-get install dataset-fashion-mnist)"
)
def test_real_fashion_mnist(tmp_path):
    d = data.load("fashion_mnist", tmp_path)  # nothing in tmp_path: falls back to Debian's folder
    assert d.source == str(DEBIAN_FOLDER)
    assert (len(d.train), len(d.test)) == (60000, 10000)
    assert d.train.images.shape == (60000, 1, 28, 28) and d.test.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(d.train.labels).tolist() == [6000] * 10
    assert torch.bincount(d.test.labels).tolist() == [1000] * 10
    assert 0.2 < float(d.mean.mean()) < 0.4  # Fashion-MNIST's mean intensity is about 0.286
