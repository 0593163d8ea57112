"""Numbers and tables formatted for people: the one formatting module of the notebooks and the index page.

``1794805760`` prints as ``1.79 G``, ``272474`` as ``0.27 M``, an error of ``8.75`` (percent) as ``8.75%``,
a missing value as a dash, never ``NaN``. :func:`tidy` applies the same rules to a whole DataFrame,
guessing each column's kind from its name; :func:`params_table` shows an experiment's effective
parameters as one row per setting (nested sections flattened: ``train.optim.lr``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd

__all__ = [
    "DASH",
    "fmt_count",
    "fmt_percent",
    "fmt_number",
    "fmt_bytes",
    "fmt_seconds",
    "fmt_claim_value",
    "tidy",
    "params_table",
    "claims_frame",
    "claims_table",
    "scale_note",
]

DASH = "–"
_PREFIXES = {"G": 1e9, "M": 1e6, "k": 1e3, "": 1.0}


# --------------------------------------------------------------------------------------------- values
def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _auto_prefix(value: float) -> str:
    magnitude = abs(value)
    return "G" if magnitude >= 1e9 else "M" if magnitude >= 1e5 else ""


def fmt_count(value: Any, unit: str | None = None, decimals: int = 2) -> str:
    """A count (parameters, multiply-adds, images) with a unit prefix: ``1.79 G``, ``0.27 M``, ``1,234``.

    ``unit`` ("G", "M", "k" or "") forces the prefix; by default G from 1e9, M from 1e5, none below.
    """
    if _missing(value):
        return DASH
    prefix = _auto_prefix(value) if unit is None else unit
    if not prefix:
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.{decimals}f}"
    return f"{value / _PREFIXES[prefix]:,.{decimals}f} {prefix}"


def fmt_percent(value: Any, decimals: int = 2) -> str:
    """A value that is already in percent: ``8.75`` -> ``8.75%``."""
    return DASH if _missing(value) else f"{value:.{decimals}f}%"


def fmt_number(value: Any, decimals: int = 2) -> str:
    """Any cell: ints as they are (``fmt_count`` from 1e5), floats to ``decimals``,
    booleans as yes/no, text unchanged, missing values as a dash."""
    if _missing(value):
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and abs(value) < 1e5:
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and abs(value) >= 1e5 and value.is_integer()):
        return fmt_count(value)
    if isinstance(value, float):
        return f"{value:,.{decimals}f}"
    return str(value)


def fmt_bytes(value: Any) -> str:
    """Bytes with a binary prefix: ``1572864`` -> ``1.50 MiB``."""
    if _missing(value):
        return DASH
    for power, prefix in ((3, "GiB"), (2, "MiB"), (1, "KiB")):
        if abs(value) >= 1024**power:
            return f"{value / 1024**power:.2f} {prefix}"
    return f"{value:.0f} B"


def fmt_seconds(seconds: Any) -> str:
    """A duration as ``m:ss`` or ``h:mm:ss``: ``114.5`` -> ``1:54``."""
    if _missing(seconds):
        return DASH
    h, rest = divmod(int(round(seconds)), 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


_UNIT_IN_LABEL = re.compile(r"\((%|G|M)\)")


def fmt_claim_value(value: Any, what: str = "") -> str:
    """A claim's ``ours`` or ``paper`` value, in the unit its label names: ``(%)`` -> ``88.28%``,
    ``(G)`` -> ``1.79 G``, ``(M)`` -> ``0.27 M``; other numbers as :func:`fmt_number`."""
    unit = _UNIT_IN_LABEL.search(what or "")
    if unit is None or not isinstance(value, (int, float)) or isinstance(value, bool):
        return fmt_number(value)
    if unit.group(1) == "%":
        return fmt_percent(value)
    return fmt_count(value * _PREFIXES[unit.group(1)], unit=unit.group(1))


# --------------------------------------------------------------------------------------------- DataFrames
def _tokens(name: str) -> set[str]:
    return set(re.split(r"[^a-z0-9]+", name))


_ROLES: dict[str, tuple[Callable[[str], bool], Callable[[Any], str]]] = {
    "percent": (lambda n: "error" in n or re.search(r"(^|_)map", n) is not None or n.endswith("_pct"),
                fmt_percent),
    "counts": (lambda n: bool(_tokens(n) & {"params", "macs", "flops"}), fmt_count),
    "bytes": (lambda n: "bytes" in _tokens(n), fmt_bytes),
}


def _names(column: Any) -> list[str]:
    return [str(c).lower() for c in (column if isinstance(column, tuple) else (column,))]


def _role_of(column: Any, given: Mapping[str, Iterable[Any] | None]) -> str | None:
    for role, columns in given.items():
        if columns is not None and column in set(columns):
            return role
    for role, (matches, _) in _ROLES.items():
        if given.get(role) is None and any(matches(n) for n in _names(column)):
            return role
    return None


def _formatter(role: str | None, decimals: int) -> Callable[[Any], str]:
    return _ROLES[role][1] if role is not None else lambda v: fmt_number(v, decimals)


def tidy(
    df: pd.DataFrame,
    *,
    percent: Iterable[Any] | None = None,
    counts: Iterable[Any] | None = None,
    bytes_: Iterable[Any] | None = None,
    decimals: int = 2,
    hide_index: bool = False,
):
    """``df`` styled for a report: every cell formatted for people, missing values as a dash.

    Column kinds not given are guessed from the names (any level of a MultiIndex): ``*error*``,
    ``*map*``, ``*_pct`` are percentages; ``params``, ``macs``, ``flops`` (and ``*_params``...) counts;
    ``*bytes*`` bytes; everything else :func:`fmt_number`. Returns a pandas ``Styler``.
    """
    given = {"percent": percent, "counts": counts, "bytes": bytes_}
    formats = {c: _formatter(_role_of(c, given), decimals) for c in df.columns}
    numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
    styler = df.style.format(formats, na_rep=DASH).format_index(fmt_number, axis=0)
    styler = styler.set_properties(**{"text-align": "left"})
    styler = styler.set_properties(subset=numeric, **{"text-align": "right", "white-space": "nowrap"})
    return styler.hide(axis="index") if hide_index else styler


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            rows.update(_flatten(value, f"{name}."))
        else:
            rows[name] = value
    return rows


def _display(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_display(v) for v in value) if value else DASH
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_display(v)}" for k, v in value.items()) if value else DASH
    if isinstance(value, bool) or _missing(value):
        return fmt_number(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def params_table(params: Any) -> pd.DataFrame:
    """The effective parameters, one row per setting: nested sections become dotted names
    (``train.optim.lr``), values display strings (``20, 32``; ``–`` for none). Accepts a pydantic
    model or a mapping."""
    data = params.model_dump() if hasattr(params, "model_dump") else dict(params)
    rows = {name: _display(value) for name, value in _flatten(data).items()}
    return pd.DataFrame({"value": rows}).rename_axis("parameter")


# --------------------------------------------------------------------------------------------- claims
def claims_frame(results: Mapping[str, Any]) -> pd.DataFrame:
    """One row per claim of a ``results.json``: reference, claim, ours, paper, verdict, its scope ("at this
    budget" below the paper's scale), reason."""
    columns = ["ref", "what", "ours", "paper", "verdict", "scope", "reason"]
    return pd.DataFrame(results["claims"], columns=[*columns, "id"])[columns]


def claims_table(results: Mapping[str, Any]):
    """``claims_frame`` styled for a notebook: values in the claim's unit, whole texts, no index."""
    frame = claims_frame(results)
    for column in ("ours", "paper"):
        frame[column] = [fmt_claim_value(v, w) for v, w in zip(frame[column], frame["what"])]
    return (
        frame.style.hide(axis="index")
        .format(na_rep=DASH)
        .set_properties(**{"text-align": "left", "white-space": "normal"})
    )


def scale_note(results: Mapping[str, Any]) -> str:
    """The sentence printed under every table: where the numbers came from."""
    seeds = ", ".join(map(str, results.get("seeds", []))) or DASH
    return (
        f"Profile {results['profile']}; data: {results['dataset']} ({results['data_source']}); "
        f"scale: {results['scale']}; seeds: {seeds}; computed in {results['wall_seconds']:.0f} s by this run."
    )
