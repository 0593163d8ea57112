"""The one run cache: what its key hashes (every result-changing setting, the version, the training code)
and the reuse rule (finished -> load, crashed -> resume, force -> moved aside)."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import BaseModel

from resnetlib import models
from resnetlib.detection.config import DetectorConfig, ScenesData
from resnetlib.train import TrainConfig, runs

# --------------------------------------------------------------------------- every leaf of a config


def leaves(model: BaseModel, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Paths of every leaf setting of ``model`` (nested models walked, as they are in this instance).

    A one-value Literal is the tag of a union member (``data.name: "scenes"``), not a setting: switching
    the member is tested on its own.
    """
    out = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if _literal_options(model, name) == [value]:
            continue
        out += leaves(value, (*prefix, name)) if isinstance(value, BaseModel) else [(*prefix, name)]
    return out


def _literal_options(model: BaseModel, name: str) -> list[Any]:
    annotation = type(model).model_fields[name].annotation
    options = []
    for arg in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(arg) is typing.Literal:
            options += list(typing.get_args(arg))
    return options


def candidates(value: Any, literal_options: list[Any]) -> list[Any]:
    """Other values to try for a setting, most likely valid first."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1, value * 2]
    if isinstance(value, float):
        return [value * 0.5, value + 0.5, value * 2]
    if isinstance(value, (list, tuple)):
        if not value:
            return [[1], [64]]
        others = ([*value[:-1], value[-1] * 2], [*value[:-1], value[0]], value[:-1], [*value, value[-1]])
        return [type(value)(v) for v in others]
    if value is None:
        return [*literal_options, 1, 2, "B", [1.0], 16]
    return [o for o in literal_options if o != value] + ["cpu", "/somewhere/else", "2017", *models.names()]


def changed(config: BaseModel, path: tuple[str, ...]) -> BaseModel:
    """``config`` with the setting at ``path`` set to another valid value (the first that validates)."""
    dump = config.model_dump()
    parent, owner = dump, config
    for part in path[:-1]:
        parent, owner = parent[part], getattr(owner, part)
    for candidate in candidates(parent[path[-1]], _literal_options(owner, path[-1])):
        parent[path[-1]] = candidate
        try:
            new = type(config).model_validate(dump)
        except ValueError:
            continue
        if new.model_dump() != config.model_dump():
            return new
    raise AssertionError(f"no other valid value found for {'.'.join(path)}: extend candidates()")


def detector() -> DetectorConfig:
    return DetectorConfig(data=ScenesData(), model={"name": "resnet18", "pretrained": "r18.pt"})


CONFIGS = {"classifier": (TrainConfig, runs.CLASSIFIER_CODE), "detector": (detector, runs.DETECTOR_CODE)}
#: Settings that cannot change alone (the localizer head goes with localization data): tested below.
COUPLED = {("model", "head")}


@pytest.mark.parametrize("kind", CONFIGS)
def test_every_result_changing_setting_changes_the_key_and_presentation_does_not(kind):
    make, code = CONFIGS[kind]
    base = make()
    key = runs.run_key(base, code)
    paths = leaves(base)
    assert len(paths) >= 20
    presentation = [p for p in paths if p[0] in runs.PRESENTATION_ONLY]
    assert presentation, "the exclude list names no field of this config"
    for path in (p for p in paths if p not in COUPLED):
        new_key = runs.run_key(changed(base, path), code)
        if path in presentation:
            assert new_key == key, f"{'.'.join(path)} is presentation-only but changed the key"
        else:
            assert new_key != key, f"{'.'.join(path)} changes results but not the key"


def test_changing_the_detectors_data_set_changes_the_key():
    voc = DetectorConfig.model_validate({**detector().model_dump(), "data": {"name": "voc07"}})
    assert runs.run_key(voc, runs.DETECTOR_CODE) != runs.run_key(detector(), runs.DETECTOR_CODE)


def test_the_localizer_head_with_its_data_changes_the_key():
    dump = detector().model_dump()
    localizer = DetectorConfig.model_validate(
        {**dump, "model": {**dump["model"], "head": "per_class_rpn"}, "data": {"name": "loc_scenes"}})
    assert runs.run_key(localizer, runs.DETECTOR_CODE) != runs.run_key(detector(), runs.DETECTOR_CODE)


def test_key_changes_with_the_device_the_config_resolves_to(monkeypatch):
    config = TrainConfig(device="auto")
    key = runs.run_key(config)
    monkeypatch.setattr(runs, "resolve_device", lambda name: torch.device("cuda", 0))  # a machine with a GPU
    assert runs.run_key(config) != key


def test_key_changes_with_the_version_and_the_training_code(monkeypatch):
    config = TrainConfig()
    key = runs.run_key(config)
    monkeypatch.setattr(runs, "__version__", "999.0")
    assert runs.run_key(config) != key
    monkeypatch.undo()
    real = runs.code_fingerprint
    monkeypatch.setattr(runs, "code_fingerprint", lambda parts: real(parts) + "edited")
    assert runs.run_key(config) != key


def test_code_fingerprint_covers_every_python_file_of_the_training_parts(tmp_path):
    pkg = tmp_path / "pkg"
    for rel in ("models/a.py", "models/sub/b.py", "train/c.py", "devices.py", "report/d.py"):
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(f"# {rel}\n")
    parts = ("models", "train", "devices.py")
    before = runs.code_fingerprint(parts, pkg)
    (pkg / "report" / "d.py").write_text("changed")  # not training code
    (pkg / "models" / "notes.txt").write_text("not python")
    (pkg / "models" / "__pycache__").mkdir()
    (pkg / "models" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    assert runs.code_fingerprint(parts, pkg) == before
    for rel, text in (("models/sub/b.py", "# edited\n"), ("devices.py", "x = 1\n"), ("train/new.py", "")):
        (pkg / rel).write_text(text)
        now = runs.code_fingerprint(parts, pkg)
        assert now != before, rel
        before = now
    (pkg / "train" / "new.py").rename(pkg / "train" / "renamed.py")
    assert runs.code_fingerprint(parts, pkg) != before


def test_the_fingerprinted_parts_exist_and_detectors_add_their_package():
    for part in runs.DETECTOR_CODE:
        assert (runs.PACKAGE_DIR / part).exists(), part  # a rename must not silently drop code from the key
    assert set(runs.CLASSIFIER_CODE) < set(runs.DETECTOR_CODE)
    assert runs.code_fingerprint(runs.CLASSIFIER_CODE) != runs.code_fingerprint(runs.DETECTOR_CODE)


def test_run_folder_names_model_seed_and_key(tmp_path):
    config = TrainConfig(seed=3)
    assert runs.run_dir_for(config, tmp_path) == tmp_path / f"cifar_resnet20-s3-{runs.run_key(config)}"


# -------------------------------------------------------------------------------------- reuse rule


class Recorder:
    """Stand-ins for train/load that record how the cache called them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def train(self, run_dir: Path, resume: bool) -> str:
        self.calls.append(("train", resume))
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        (run_dir / "checkpoints" / "last.pt").write_text("")
        (run_dir / "summary.json").write_text(json.dumps({"done": True}))
        return "trained"

    def load(self, run_dir: Path) -> str:
        self.calls.append(("load", None))
        return "loaded"

    def __call__(self, run_dir: Path, force: bool = False) -> str:
        return runs.cached_run(run_dir, train=self.train, load=self.load, force=force)


def test_cached_run_trains_reuses_resumes_and_force_moves_aside(tmp_path):
    rec, run_dir = Recorder(), tmp_path / "net-s0-abc"
    assert rec(run_dir) == "trained" and rec(run_dir) == "loaded"
    (run_dir / "summary.json").unlink()  # crashed after its last checkpoint
    assert rec(run_dir) == "trained"
    assert rec.calls == [("train", False), ("load", None), ("train", True)]
    assert rec(run_dir, force=True) == "trained" and rec.calls[-1] == ("train", False)
    (aside,) = tmp_path.glob("net-s0-abc.replaced-*")
    assert (aside / "summary.json").is_file()  # never deleted


def test_amp_auto_keys_by_the_precision_it_resolves_to(monkeypatch):
    from resnetlib.train import runs

    config = TrainConfig.model_validate({"amp": "auto", "device": "cpu"})
    monkeypatch.setattr(runs, "resolve_amp", lambda amp, device: "bf16")
    with_bf16 = runs.run_key(config)
    monkeypatch.setattr(runs, "resolve_amp", lambda amp, device: "off")
    assert runs.run_key(config) != with_bf16
