"""Typed, validated configuration shared by the CLI, the notebooks and the tests.

Every parameter set in resnetlib is a pydantic model that forbids unknown keys. ``validate`` turns
pydantic's errors into one message that names the field, what was wrong, and, for a misspelt key,
the closest valid name. ``load_yaml`` reads YAML with YAML 1.2 float rules (``1e-3`` is a float, not
the string PyYAML's YAML 1.1 resolver makes of it) and YAML 1.2 core-schema booleans (only ``true``/``false``:
``amp: off`` is the string ``"off"``, not YAML 1.1's ``False``), and merges an optional ``_base.yaml`` beneath;
``parse_overrides`` reads ``--set`` values with the same loader, so a file and the command line agree.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Tag, ValidationError
from pydantic.fields import FieldInfo

__all__ = [
    "ConfigError",
    "PartialOf",
    "StrictModel",
    "validate",
    "load_yaml",
    "parse_overrides",
    "deep_merge",
    "one_line",
    "yaml_loads",
]

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A parameter set that cannot be used; the message names each bad field and how to fix it."""


class StrictModel(BaseModel):
    """Base for every parameter model: unknown keys are errors, assignments are re-validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


@dataclass(frozen=True)
class PartialOf:
    """Marks a mapping field that is validated as a partial ``model`` (``Annotated[dict, PartialOf(M)]``), so
    a misspelt key below it still gets a 'did you mean'."""

    model: type[BaseModel]


def _nested(field: FieldInfo) -> tuple[type[BaseModel] | None, dict[str, type[BaseModel]]]:
    """The model below ``field``, or the members of a tagged union below it (by tag)."""
    ann = field.annotation
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann, {}
    partial = next((m for m in field.metadata if isinstance(m, PartialOf)), None)
    if partial is not None:
        return partial.model, {}
    members = {}
    for arg in get_args(ann):
        tag = next((m.tag for m in getattr(arg, "__metadata__", ()) if isinstance(m, Tag)), None)
        if tag is not None:
            members[tag] = get_args(arg)[0]
    return None, members


def _walk(model_cls: type[BaseModel], loc: tuple) -> tuple[list[str], str]:
    """Valid keys at ``loc`` (walking nested models, partial sections and tagged unions, for 'did you
    mean' suggestions) and ``loc`` as the user wrote it (without union tags)."""
    cls: Any = model_cls
    members: dict[str, type[BaseModel]] = {}
    shown: list[str] = []
    for i, part in enumerate(loc):
        if part in members:  # a union's tag: not a key the user wrote
            cls, members = members[part], {}
            continue
        shown.append(str(part))
        if i == len(loc) - 1 or isinstance(part, int):
            continue
        field = getattr(cls, "model_fields", {}).get(part)
        cls, members = _nested(field) if field is not None else (None, {})
    return list(getattr(cls, "model_fields", {})), ".".join(shown) or "(root)"


def _describe(model_cls: type[BaseModel], err: dict) -> str:
    loc = tuple(err["loc"])
    valid, name = _walk(model_cls, loc)
    if err["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown parameter '{name}'{hint} (valid: {', '.join(sorted(valid))})"
    got = err.get("input")
    return f"parameter '{name}': {err['msg']} (got {got!r})"


def validate(model_cls: type[M], data: Mapping[str, Any], source: str = "parameters") -> M:
    """Build ``model_cls`` from ``data`` or raise ConfigError naming every bad field in ``source``."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping of parameter names to values, got {type(data).__name__}")
    try:
        return model_cls.model_validate(dict(data))
    except ValidationError as exc:
        lines = [_describe(model_cls, e) for e in exc.errors()]
        raise ConfigError(f"invalid {source}:\n  " + "\n  ".join(lines)) from None


def one_line(exc: BaseException) -> str:
    """The error as one line: a multi-line message (one line per bad field) joined with '; '."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [""]
    return lines[0] if len(lines) == 1 else f"{lines[0]} {'; '.join(lines[1:])}"


_BOOL_TAG = "tag:yaml.org,2002:bool"


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema rules where YAML 1.1 surprises: ``1e-3`` and ``1E5`` are floats,
    and only ``true``/``false`` (any case style of the spec) are booleans, so the enum values
    ``off``/``on``/``yes``/``no`` (``amp: off``, ``warmup: {mode: off}``) stay the strings a user wrote."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


_Yaml12Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)

_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def yaml_loads(text: str) -> Any:
    """YAML text as Python values, read by the one loader of params files and ``--set`` values."""
    return yaml.load(text, Loader=_Yaml12Loader)


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``; nested mappings merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a params file, with ``_base.yaml`` from the same folder merged underneath if present."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"params file not found: {path}")
    data = _read_mapping(path)
    base = path.with_name("_base.yaml")
    if base.is_file() and base.resolve() != path.resolve():
        data = deep_merge(_read_mapping(base), data)
    return data


def _read_mapping(path: Path) -> dict[str, Any]:
    try:
        data = yaml_loads(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of parameter names to values")
    return data


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["optim.lr=0.01", "seed=3"]`` -> ``{"optim": {"lr": 0.01}, "seed": 3}`` (values read as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        value = yaml_loads(raw) if raw.strip() else ""
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out
