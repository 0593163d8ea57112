"""Fixtures of the runner's stage tests: a CIFAR-10 root in the real python layout (empty files: the layout
check reads names, not contents)."""

from __future__ import annotations

from pathlib import Path

import pytest

from resnetlib.data.cifar10 import FILES, FOLDER


@pytest.fixture
def cifar_root(tmp_path: Path) -> Path:
    root = tmp_path / "cifar"
    (root / FOLDER).mkdir(parents=True)
    for name in FILES:
        (root / FOLDER / name).write_bytes(b"")
    return root
