"""When each claim of the paper emerges on a CPU, by the budget study, and what an undecided claim says.

The budget study (``experiments/budget_study.py``, committed under ``reports/reference/budget_study/``)
judges the cpu-scale claims at several budgets. ``emergence`` reduces its per-setting effects to one row
per claim: the cheapest setting where the claim is decided (reproduced or contradicted), else the most
costly setting tried. ``with_budget_notes`` uses that to tell the reader of a smaller run what its
undecided claims would need (issue 10, item 3): "inconclusive at this budget; emerges at about 1000
iterations (budget study ...)".

The study ran on Fashion-MNIST, so only runs on that data set get the note.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from ..paths import REPORTS_DIR
from .verdicts import CONTRADICTED, INCONCLUSIVE, NOT_MEASURABLE, REPRODUCED

__all__ = ["STUDY_DATASET", "STUDY_DIR", "budget_note", "emergence", "load_emergence", "with_budget_notes"]

#: The committed result of the budget study (its ``effects.csv`` is what the notes are read from).
STUDY_DIR = REPORTS_DIR / "reference" / "budget_study"
#: The data set the study trained on: its budgets say nothing about another one.
STUDY_DATASET = "fashion_mnist"
#: Its images' own side ("native" settings).
STUDY_NATIVE_SIDE = 28
DECIDED = (REPRODUCED, CONTRADICTED)


def emergence(effects: pd.DataFrame) -> pd.DataFrame:
    """Per claim: the cheapest setting where it is reproduced (or contradicted), else the last verdict.

    ``effects`` has one row per (setting, claim) with ``id``, ``ref``, ``setting``, ``core_hours`` and
    ``verdict``; ``iterations``, ``batch_size`` and ``image_size`` (empty: the data's own), where present,
    become ``resolved_iterations``, ``resolved_batch_size`` and ``resolved_image_size``.
    """
    rows = []
    for cid, part in effects.sort_values("core_hours", kind="stable").groupby("id", sort=False):
        decided = part[part.verdict.isin(DECIDED)]
        first = decided.iloc[0] if len(decided) else None
        last = part.iloc[-1]
        rows.append({
            "id": cid, "ref": last.ref,
            "resolved_at": first.setting if first is not None else None,
            "resolved_verdict": first.verdict if first is not None else None,
            "resolved_core_hours": first.core_hours if first is not None else None,
            "resolved_iterations": _get(first, "iterations"),
            "resolved_batch_size": _get(first, "batch_size"),
            "resolved_image_size": _get(first, "image_size"),
            "most_costly_setting": last.setting, "verdict_there": last.verdict,
            "not_measurable_in": int((part.verdict == NOT_MEASURABLE).sum()),
        })
    return pd.DataFrame(rows)


def _get(row: pd.Series | None, name: str) -> int | None:
    return _whole(row[name]) if row is not None and name in row.index else None


def load_emergence(folder: str | Path = STUDY_DIR) -> dict[str, dict[str, Any]]:
    """The study's emergence per claim id, from ``folder/effects.csv``; empty when there is no study
    there (an installed package without the repository's reports)."""
    path = Path(folder) / "effects.csv"
    if not path.is_file():
        return {}
    table = emergence(pd.read_csv(path))
    return {row["id"]: row for row in table.to_dict("records")}


def budget_note(verdict: str, found: Mapping[str, Any] | None) -> str | None:
    """The sentence an undecided claim carries, or None.

    An inconclusive claim gets it whether or not the study decided it (then it says so); a claim not
    measurable here (a net did not train, too few epochs) only where the study decided it, since a
    claim the study could not measure either (one reserved to the paper's scale) gains nothing from it.
    """
    if found is None or verdict not in (INCONCLUSIVE, NOT_MEASURABLE):
        return None
    here = "inconclusive" if verdict == INCONCLUSIVE else "not measurable"
    if pd.notna(found.get("resolved_at")):
        at, batch = _whole(found.get("resolved_iterations")), _whole(found.get("resolved_batch_size")) or 128
        side = _whole(found.get("resolved_image_size")) or STUDY_NATIVE_SIDE
        when = f"about {at} iterations of batch {batch} on {side} px images" if at else found["resolved_at"]
        verb = "emerges" if found["resolved_verdict"] == REPRODUCED else "is decided (contradicted)"
        return (f"{here} at this budget; {verb} at {when} (budget study on Fashion-MNIST: "
                f"{found['resolved_verdict']} at {found['resolved_at']}, {found['resolved_core_hours']:.2f} "
                f"core-hours for all of that setting's runs)")
    if verdict == NOT_MEASURABLE:
        return None
    return (f"{here} at this budget; the budget study did not decide it either (up to "
            f"{found['most_costly_setting']}: {found['verdict_there']})")


def _whole(value: Any) -> int | None:
    """An integer read back from a table (pandas turns a column with gaps into floats)."""
    return int(value) if value is not None and pd.notna(value) else None


Claim = TypeVar("Claim")


def with_budget_notes(claims: Iterable[Claim], dataset: str,
                      study: Mapping[str, Mapping[str, Any]] | None = None) -> list[Claim]:
    """``claims`` with the budget study's note put before the reason of each undecided statement, and
    ``emerges_at`` set to the iterations where the study decided it; unchanged on another data set."""
    claims = list(claims)
    if dataset != STUDY_DATASET:
        return claims
    study = load_emergence() if study is None else study
    noted = []
    for claim in claims:
        found = study.get(claim.id) if claim.kind == "statement" else None
        note = budget_note(claim.verdict, found)
        if note is None:
            noted.append(claim)
            continue
        update = {"reason": f"{note}. {claim.reason}", "emerges_at": _whole(found.get("resolved_iterations"))}
        noted.append(claim.model_copy(update=update))
    return noted
