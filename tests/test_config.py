"""resnetlib.config: one YAML loader for params files and ``--set`` values (YAML 1.2 core-schema booleans and
floats), so every enum value reads as written (issue 21 item 6: ``amp: off`` was YAML 1.1's ``False``)."""

from __future__ import annotations

import importlib
import pkgutil
import types
from collections.abc import Iterator
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pytest
from pydantic import BaseModel, TypeAdapter

import resnetlib.experiments
from resnetlib.config import PartialOf, one_line, parse_overrides, yaml_loads
from resnetlib.train import TrainConfig
from resnetlib.train.config import load_config


def _experiment_params() -> list[type[BaseModel]]:
    """Every experiment module's typed ``Params``."""
    out = []
    for info in pkgutil.iter_modules(resnetlib.experiments.__path__):
        module = importlib.import_module(f"resnetlib.experiments.{info.name}")
        if isinstance(getattr(module, "Params", None), type):
            out.append(module.Params)
    return out


def _inner(annotation: Any) -> Iterator[Any]:
    """The types an annotation is made of (through Optional, unions, lists, dicts and Annotated)."""
    if get_origin(annotation) is Annotated:
        base, *meta = get_args(annotation)
        yield from (m.model for m in meta if isinstance(m, PartialOf))
        yield from _inner(base)
    elif get_origin(annotation) in (Union, types.UnionType, list, tuple, dict, set):
        for arg in get_args(annotation):
            yield from _inner(arg)
    else:
        yield annotation


def enum_settings(model: type[BaseModel], prefix: str = "", seen: set | None = None) -> Iterator[tuple[str, Any]]:
    """``(dotted key, annotation)`` of every field reachable from ``model`` whose type holds a Literal."""
    seen = set() if seen is None else seen
    if model in seen:
        return
    seen.add(model)
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        parts = list(_inner(field.annotation)) + [m.model for m in field.metadata if isinstance(m, PartialOf)]
        if any(get_origin(p) is Literal for p in parts):
            yield key, field.annotation
        for part in parts:
            if isinstance(part, type) and issubclass(part, BaseModel):
                yield from enum_settings(part, f"{key}.", seen)


def _literal_values(annotation: Any) -> list[Any]:
    return [v for p in _inner(annotation) if get_origin(p) is Literal for v in get_args(p)]


def _cases() -> list[tuple[str, str, Any, Any]]:
    cases = []
    for model in [TrainConfig, *_experiment_params()]:
        for key, annotation in enum_settings(model):
            for value in _literal_values(annotation):
                cases.append((f"{model.__module__}.{model.__name__}", key, annotation, value))
    return cases


CASES = _cases()


def test_the_walk_finds_the_enum_settings_of_the_issue():
    keys = {(owner.rsplit(".", 1)[-1], key) for owner, key, _, _ in CASES}
    assert ("TrainConfig", "amp") in keys and ("TrainConfig", "optim.warmup.mode") in keys
    assert any(owner == "Params" and key == "train.amp" for owner, key in keys)  # the experiments' train section
    assert len({owner for owner, *_ in CASES}) >= 5


def _written(annotation: Any, value: Any) -> str:
    """The value as a user writes it: bare, or in a flow list where the setting is a list."""
    text = str(value).lower() if isinstance(value, bool) else str(value)
    listed = get_origin(annotation) is list or any(get_origin(a) is list for a in get_args(annotation))
    return f"[{text}]" if listed else text


@pytest.mark.parametrize("owner,key,annotation,value", CASES,
                         ids=[f"{o.rsplit('.', 2)[-2]}:{k}={v}" for o, k, _, v in CASES])
def test_every_enum_value_reads_as_written_in_files_and_in_set(owner, key, annotation, value):
    written = _written(annotation, value)
    leaf = key.rsplit(".", 1)[-1]
    from_file = yaml_loads(f"{leaf}: {written}\n")[leaf]
    from_set = parse_overrides([f"{key}={written}"])
    for part in key.split(".")[:-1]:
        from_set = from_set[part]
    assert from_file == from_set[leaf]
    validated = TypeAdapter(annotation).validate_python(from_file)
    assert validated == value or validated == [value]


def test_amp_off_whole_config_from_file_and_set(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("amp: off\noptim: {warmup: {mode: off}}\n")
    assert load_config(path).amp == "off" and load_config(path).optim.warmup.mode == "off"
    assert load_config(None, ["amp=off"]).amp == "off"
    assert load_config(None, ["amp=bf16", "compile=true"]).compile is True


def test_yaml_12_booleans_and_floats():
    assert yaml_loads("[true, True, TRUE, false, off, on, yes, no, y, n, 1e-3, 1.0e-3, ~]") == [
        True, True, True, False, "off", "on", "yes", "no", "y", "n", 0.001, 0.001, None]


def test_one_line_joins_a_multi_line_error():
    assert one_line(ValueError("bad:\n  a\n\n  b\n")) == "bad: a; b"
