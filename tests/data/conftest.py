"""Fixtures of the data tests: torchvision's md5 check relaxed for tiny CIFAR-10 files, Fashion-MNIST hidden
or written tiny (the format writers are the ``writers`` fixture of tests/conftest.py)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def skip_cifar_md5(monkeypatch):
    """Our tiny files cannot match the official md5 sums that torchvision checks
    (``CIFAR10._check_integrity`` and ``_load_meta`` via ``cifar.check_integrity``); in tests only,
    accept any existing file."""
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tv_cifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))


@pytest.fixture
def no_debian_fashion(monkeypatch, tmp_path):
    """Hide /usr/share/datasets/fashion-mnist so look-ups only see the test's folders."""
    from resnetlib.data import fashion_mnist

    monkeypatch.setattr(fashion_mnist, "DEBIAN_FOLDER", tmp_path / "no-debian-here")


@pytest.fixture
def fake_fashion(tmp_path, no_debian_fashion, writers):
    """(root, arrays) of a tiny Fashion-MNIST written directly in ``root``."""
    root = tmp_path / "fmnist"
    return root, writers.fashion_mnist(root)
