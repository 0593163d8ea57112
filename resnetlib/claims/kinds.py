"""Claim kinds and the one-record-per-claim view of a run that ``index.json`` and the index page share.

A claim is one of three kinds, counted apart so that exact counts do not inflate the experimental
headline (issue 9, item 6):

- ``architecture``: an exact count of the architecture (Table 1 multiply-adds, Table 6 parameters, the
  Sec. 3.3 shortcut options), true at every scale;
- ``statement``: a qualitative claim about trained nets (Fig. 1/4/6, Table 2/3/6 orderings, Fig. 7),
  judged from per-seed effects with a 95% interval against a practical margin;
- ``number``: a value the paper reports (an error rate, an mAP), comparable only at the paper's scale.

Results written before claims carried ``kind`` still render: the kind is derived from the experiment,
the id and the type of the paper's value (:func:`claim_kind`), and missing interval fields are None.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from .builders import AT_PAPER_SCALE, AT_THIS_BUDGET, EXACT
from .verdicts import NOT_MEASURABLE, NUMBER_VERDICTS, REPRODUCED, STATEMENT_VERDICTS

__all__ = ["ARCHITECTURE", "STATEMENT", "NUMBER", "KINDS", "RECORD_FIELDS", "claim_kind", "claim_record",
           "kind_counts", "headline", "effect_text", "statement_records"]

ARCHITECTURE: Final = "architecture"
STATEMENT: Final = "statement"
NUMBER: Final = "number"
KINDS = (STATEMENT, NUMBER, ARCHITECTURE)

#: The fields every record of ``index.json``'s ``claims`` list has (None where one does not apply).
RECORD_FIELDS = ("id", "experiment", "ref", "kind", "verdict", "scope", "n_seeds", "effect", "ci_low", "ci_high",
                 "margin", "p_value", "reason")
_NUMERIC = ("n_seeds", "effect", "ci_low", "ci_high", "margin", "p_value")

#: The verdicts each kind can have, in the order the headline lists them.
_HEADLINE_VERDICTS = {STATEMENT: STATEMENT_VERDICTS, NUMBER: NUMBER_VERDICTS}
_HEADLINE_NAMES = {STATEMENT: "experimental claims", NUMBER: "paper numbers", ARCHITECTURE: "architecture facts"}
_SHORT = {NOT_MEASURABLE: "not measurable"}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def claim_kind(claim: Mapping[str, Any], experiment: str | None = None) -> str:
    """The claim's ``kind``; for results without one: ``architecture`` for the architectures experiment
    or an id about parameters or multiply-adds, ``number`` when the paper's value is a number, else
    ``statement``."""
    kind = claim.get("kind")
    if kind in KINDS:
        return str(kind)
    claim_id = str(claim.get("id") or "").lower()
    if experiment == "architectures" or "param" in claim_id or "macs" in claim_id:
        return ARCHITECTURE
    return NUMBER if _is_number(claim.get("paper")) else STATEMENT


def _finite_or_none(value: Any) -> float | int | None:
    """A number for JSON (strict JSON has no infinity): non-finite and non-numeric values become None."""
    if not _is_number(value) or not math.isfinite(value):
        return None
    return value


def claim_record(claim: Mapping[str, Any], experiment: str) -> dict[str, Any]:
    """One record of ``index.json``: every field of the claim, plus :data:`RECORD_FIELDS` filled in."""
    record = dict(claim)
    record.update(experiment=experiment, kind=claim_kind(claim, experiment),
                  verdict=str(claim.get("verdict") or NOT_MEASURABLE))
    for key in ("id", "ref", "reason"):
        record[key] = claim.get(key) or None
    record["scope"] = claim.get("scope") or _old_scope(record)
    for key in _NUMERIC:
        record[key] = _finite_or_none(claim.get(key))
    return record


def _old_scope(record: Mapping[str, Any]) -> str | None:
    """The scope of a claim written before claims carried one: architecture facts are exact, anything else
    holds at the budget measured unless it was compared with the paper at its scale."""
    if record["kind"] == ARCHITECTURE:
        return EXACT
    return AT_PAPER_SCALE if record["kind"] == NUMBER and record["verdict"] != NOT_MEASURABLE else AT_THIS_BUDGET


def kind_counts(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Claims per kind and verdict. An architecture fact measured by two experiments (same ref, value
    and paper value, e.g. Table 6's parameters) is counted once: no number is counted twice."""
    counts: dict[str, dict[str, int]] = {kind: {} for kind in KINDS}
    seen: set[tuple] = set()
    for r in records:
        if r["kind"] == ARCHITECTURE:
            key = (r.get("ref"), repr(r.get("ours")), repr(r.get("paper")))
            if key in seen:
                continue
            seen.add(key)
        counts[r["kind"]][r["verdict"]] = counts[r["kind"]].get(r["verdict"], 0) + 1
    return counts


def _verdict_list(kind: str, tally: Mapping[str, int]) -> str:
    """Each of the kind's verdicts (zeros included), then any other verdict it has (an old results.json's
    "not reproduced" statement)."""
    order = _HEADLINE_VERDICTS[kind]
    extra = [v for v in tally if v not in order and tally[v]]
    return ", ".join(f"{tally.get(v, 0)} {_SHORT.get(v, v)}" for v in (*order, *extra))


def headline(counts: Mapping[str, Mapping[str, int]]) -> list[tuple[str, str]]:
    """The index's first line, per kind: ("experimental claims", "2 reproduced, 0 contradicted, ..."),
    and for architecture facts "16/16 exact"."""
    lines = [(_HEADLINE_NAMES[k], _verdict_list(k, counts.get(k, {}))) for k in (STATEMENT, NUMBER)]
    arch = counts.get(ARCHITECTURE, {})
    lines.append((_HEADLINE_NAMES[ARCHITECTURE], f"{arch.get(REPRODUCED, 0)}/{sum(arch.values())} exact"))
    return lines


def effect_text(record: Mapping[str, Any]) -> str | None:
    """"effect +5.20, 95% CI [+3.10, +7.30], margin 1, 3 seeds" for a statement with an effect; else None."""
    if record.get("kind") != STATEMENT or record.get("effect") is None:
        return None
    low, high = record.get("ci_low"), record.get("ci_high")
    interval = f"[{_signed(low)}, {_signed(high)}]" if low is not None or high is not None else "not estimated"
    parts = [f"effect {record['effect']:+.2f}", f"95% CI {interval}"]
    if record.get("margin") is not None:
        parts.append(f"margin {record['margin']:g}")
    if record.get("n_seeds") is not None:
        parts.append(f"{record['n_seeds']} seed{'s' if record['n_seeds'] != 1 else ''}")
    return ", ".join(parts)


def _signed(value: float | None) -> str:
    """An interval end; None is an unbounded end (one seed without a sampling error)."""
    return "unbounded" if value is None else f"{value:+.2f}"


def statement_records(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The statements, in page order: the rows of the forest plot."""
    return [r for r in records if r["kind"] == STATEMENT]
