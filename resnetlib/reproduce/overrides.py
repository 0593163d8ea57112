"""``reproduce --set KEY=VALUE``: one override applied to every selected experiment that has the setting.

``--set train.optim.iterations=2000`` shortens every experiment with a ``train.optim`` section and leaves the
others (``architectures``) alone; a key that no selected experiment has is an error naming the closest key any
of them has. Values are read by the same YAML loader as params files (``resnetlib.config``), and the
merged parameters are validated exactly as a params file is. What was applied is recorded in each
experiment's ``results.json`` (``overrides``) and in the index header.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel

from ..config import ConfigError, PartialOf, deep_merge, parse_overrides

__all__ = ["Override", "apply_overrides", "model_keys", "parse_set", "RUNNER_OWNED"]

#: Keys the runner injects itself: not settable with ``--set``.
RUNNER_OWNED = {"profile": "use --profile", "output_dir": "the runner sets it (reports/<profile>/<name>/)",
                "force": "use --force"}


@dataclass(frozen=True)
class Override:
    """One ``--set`` item: its text, its dotted key and the nested mapping it merges."""

    text: str
    key: str
    value: dict[str, Any]


def parse_set(items: Iterable[str] | None) -> list[Override]:
    """``--set`` items as Overrides (values read as YAML 1.2, as in params files)."""
    out = []
    for item in items or ():
        value = parse_overrides([item])  # raises on a missing '='
        key = item.partition("=")[0].strip()
        if key.split(".")[0] in RUNNER_OWNED:
            raise ConfigError(f"--set {item}: '{key.split('.')[0]}' cannot be set: {RUNNER_OWNED[key.split('.')[0]]}")
        out.append(Override(item.strip(), key, value))
    return out


def _below(annotation: Any, metadata: Iterable[Any]) -> list[type[BaseModel]]:
    """The models a field's value may be: the field's model, a partial section's, or a union's members."""
    partial = [m.model for m in metadata if isinstance(m, PartialOf)]
    if partial:
        return partial
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) is Annotated:
        base, *meta = get_args(annotation)
        return _below(base, meta)
    if get_origin(annotation) in (list, tuple, dict):  # a list of models is set whole, not key by key
        return []
    return [m for arg in get_args(annotation) for m in _below(arg, ())]


def model_keys(model: type[BaseModel], prefix: str = "", depth: int = 6) -> tuple[set[str], set[str]]:
    """Every dotted key a mapping for ``model`` may set, and the keys of free mappings (below which any key
    goes, e.g. ``pretrained``: backbone -> checkpoint)."""
    keys: set[str] = set()
    free: set[str] = set()
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        keys.add(key)
        below = _below(field.annotation, field.metadata) if depth else []
        if below:
            for sub in below:
                k, f = model_keys(sub, f"{key}.", depth - 1)
                keys |= k
                free |= f
        elif dict in (field.annotation, get_origin(field.annotation)):
            free.add(key)
    return keys, free


def _has(key: str, keys: set[str], free: set[str]) -> bool:
    parts = key.split(".")
    return key in keys or any(".".join(parts[:i]) in free for i in range(1, len(parts)))


def apply_overrides(overrides: list[Override], models: Mapping[str, type[BaseModel]],
                    inject: Mapping[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    """Merge each override into the parameters of every experiment whose ``Params`` has its key.

    Returns the merged parameters and ``{experiment: [applied --set items]}``; a key that no selected
    experiment has raises one ConfigError naming the closest key."""
    known = {name: model_keys(model) for name, model in models.items()}
    merged = {name: dict(data) for name, data in inject.items()}
    applied: dict[str, list[str]] = {name: [] for name in inject}
    errors = []
    for override in overrides:
        takers = [name for name in inject if _has(override.key, *known[name])]
        if not takers:
            every = sorted(set().union(*(k for k, _ in known.values())))
            close = difflib.get_close_matches(override.key, every, n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            errors.append(f"--set {override.text}: no selected experiment has '{override.key}'{hint}")
        for name in takers:
            merged[name] = deep_merge(merged[name], override.value)
            applied[name].append(override.text)
    if errors:
        raise ConfigError("\n".join(errors))
    return merged, applied
