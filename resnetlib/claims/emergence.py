"""When each claim of the paper emerges on a CPU, by the budget study, and what an undecided claim says.

The budget study (``experiments/budget_study.py``, committed under ``reports/reference/budget_study/``)
judges the cpu-scale claims at several budgets. ``emergence`` reduces its per-setting effects to one row
per claim. Emergence means replication (issue 19, item 6): a claim *emerges at* the cheapest setting from
which it holds (the same decided verdict) at every costlier setting measured; a claim decided somewhere
but not replicated at a costlier setting has no emergence, and its note says where it was and was not
replicated. ``with_budget_notes`` tells the reader of a smaller run what its undecided claims would
need; ``with_budget_evidence`` also applies the ends-better replication rule (``claims.budget``).

``effects.csv`` may hold one row per (setting, claim) or one row per (setting, claim, seed) with the
seed's ``effect`` (a ``seed`` column): ``load_study`` collapses per-seed rows to the mean and the
Student-t interval of ``verdicts.effect_interval``, so the intervals can be recomputed from the seeds.

The study ran on Fashion-MNIST, so only runs on that data set get the notes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from ..paths import REPORTS_DIR
from .budget import rejudge_study, with_replication_rule
from .verdicts import CONTRADICTED, INCONCLUSIVE, NOT_MEASURABLE, REPRODUCED, effect_interval

__all__ = ["STUDY_DATASET", "STUDY_DIR", "budget_axis", "budget_note", "control_rows", "emergence", "load_emergence",
           "load_study", "with_budget_evidence", "with_budget_notes"]

#: The committed result of the budget study (its ``effects.csv`` is what the notes are read from).
STUDY_DIR = REPORTS_DIR / "reference" / "budget_study"
#: The data set the study trained on: its budgets say nothing about another one.
STUDY_DATASET = "fashion_mnist"
#: Its images' own side ("native" settings).
STUDY_NATIVE_SIDE = 28
DECIDED = (REPRODUCED, CONTRADICTED)
#: The columns that identify one (setting, claim) row of effects.csv.
_ROW_KEYS = ("setting", "id")


def collapse_seeds(effects: pd.DataFrame) -> pd.DataFrame:
    """One row per (setting, claim): rows with a ``seed`` column are reduced to the mean effect and its
    Student-t interval over the seeds (``n_seeds``, ``ci_low``, ``ci_high``); other columns are taken from
    the first row. A table without ``seed`` is returned as it is."""
    if "seed" not in effects.columns:
        return effects
    rows = []
    for _, part in effects.groupby(list(_ROW_KEYS), sort=False):
        values = part["effect"].dropna().astype(float).tolist()
        row = part.iloc[0].drop(labels=["seed"]).to_dict()
        if values:
            ci = effect_interval(values)
            row.update(effect=ci.mean, ci_low=_finite(ci.low), ci_high=_finite(ci.high), n_seeds=len(values))
        rows.append(row)
    return pd.DataFrame(rows)


def _finite(x: float) -> float | None:
    return x if pd.notna(x) and abs(x) != float("inf") else None


#: The readings of Fig. 7 that a study written before they were one claim lists as two claims.
_READINGS = ("_whole", "_per_channel")


def join_readings(effects: pd.DataFrame) -> pd.DataFrame:
    """A study written when Fig. 7's two std definitions were two claims (``<id>_whole``,
    ``<id>_per_channel``): one row per (setting, ``<id>``), whose verdict needs both readings to agree
    (else inconclusive; not measurable when either is), the effect and interval the whole-tensor reading's."""
    base = effects["id"].str.replace(r"_(whole|per_channel)$", "", regex=True)
    paired = effects["id"].str.endswith(_READINGS)
    if not paired.any():
        return effects
    rows = []
    for _, part in effects[paired].assign(id=base[paired]).groupby(list(_ROW_KEYS), sort=False):
        verdicts = set(part.verdict)
        row = part.iloc[0].to_dict()
        row["verdict"] = verdicts.pop() if len(verdicts) == 1 else (
            NOT_MEASURABLE if NOT_MEASURABLE in verdicts else INCONCLUSIVE)
        rows.append(row)
    return pd.concat([effects[~paired], pd.DataFrame(rows)], ignore_index=True)


def emergence(effects: pd.DataFrame) -> pd.DataFrame:
    """Per claim: the cheapest setting from which it is reproduced (or contradicted) at every costlier
    setting, else none, with where it was decided and where that was not replicated.

    ``effects`` has one row per (setting, claim), or per seed (``collapse_seeds``), with ``id``, ``ref``,
    ``setting``, ``core_hours`` and ``verdict``; ``iterations``, ``batch_size`` and ``image_size`` (empty:
    the data's own), where present, become ``resolved_iterations``, ``resolved_batch_size`` and
    ``resolved_image_size``.
    """
    rows = []
    effects = collapse_seeds(effects)
    for cid, part in effects.sort_values("core_hours", kind="stable").groupby("id", sort=False):
        first = _replicated_from(part)
        last = part.iloc[-1]
        decided = part[part.verdict.isin(DECIDED)]
        after = part.iloc[part.index.get_loc(decided.index[0]) + 1:] if len(decided) else part.iloc[:0]
        not_replicated = after[after.verdict != decided.verdict.iloc[0]] if len(decided) else after
        rows.append({
            "id": cid, "ref": last.ref,
            "resolved_at": first.setting if first is not None else None,
            "resolved_verdict": first.verdict if first is not None else None,
            "resolved_core_hours": first.core_hours if first is not None else None,
            "resolved_iterations": _get(first, "iterations"),
            "resolved_batch_size": _get(first, "batch_size"),
            "resolved_image_size": _get(first, "image_size"),
            "decided_at": _listing(decided),
            "not_replicated_at": _listing(not_replicated) if first is None else "",
            "most_costly_setting": last.setting, "verdict_there": last.verdict,
            "not_measurable_in": int((part.verdict == NOT_MEASURABLE).sum()),
        })
    return pd.DataFrame(rows)


def _replicated_from(part: pd.DataFrame) -> pd.Series | None:
    """The cheapest row from which every costlier row has its (decided) verdict; None if there is none."""
    verdicts = part.verdict.tolist()
    for i, verdict in enumerate(verdicts):
        if verdict in DECIDED and all(v == verdict for v in verdicts[i:]):
            return part.iloc[i]
    return None


def _listing(rows: pd.DataFrame) -> str:
    return "; ".join(f"{s} ({v})" for s, v in zip(rows.setting, rows.verdict))


def _get(row: pd.Series | None, name: str) -> int | None:
    return _whole(row[name]) if row is not None and name in row.index else None


def control_rows(effects: pd.DataFrame) -> pd.Series:
    """Which of the study's rows are controls (``control``: another precision, a training subset); all False
    for a table without the column."""
    if "control" not in effects.columns:
        return pd.Series(False, index=effects.index)
    return effects["control"].fillna(False).astype(bool)


def budget_axis(effects: pd.DataFrame) -> pd.DataFrame:
    """The study's rows on the budget axis: its controls are reported beside the budgets but are not larger
    or smaller budgets of the same training."""
    return effects[~control_rows(effects)]


def load_study(folder: str | Path = STUDY_DIR) -> pd.DataFrame | None:
    """The study's effects on the budget axis, one row per (setting, claim); None when there is no study
    there (an installed package without the repository's reports)."""
    path = Path(folder) / "effects.csv"
    return join_readings(collapse_seeds(budget_axis(pd.read_csv(path)))) if path.is_file() else None


def load_emergence(folder: str | Path = STUDY_DIR) -> dict[str, dict[str, Any]]:
    """The study's emergence per claim id, from ``folder/effects.csv``; empty when there is no study."""
    table = load_study(folder)
    if table is None:
        return {}
    return {row["id"]: row for row in emergence(table).to_dict("records")}


def budget_note(verdict: str, found: Mapping[str, Any] | None) -> str | None:
    """The sentence an undecided claim carries, or None.

    An inconclusive claim gets it whether or not the study decided it (then it says where it was decided
    and not replicated, or that it was not decided); a claim not measurable here (a net did not train, too
    few epochs) only where the study decided it, since a claim the study could not measure either (one
    reserved to the paper's scale) gains nothing from it.
    """
    if found is None or verdict not in (INCONCLUSIVE, NOT_MEASURABLE):
        return None
    here = "inconclusive" if verdict == INCONCLUSIVE else "not measurable"
    if pd.notna(found.get("resolved_at")):
        at, batch = _whole(found.get("resolved_iterations")), _whole(found.get("resolved_batch_size")) or 128
        side = _whole(found.get("resolved_image_size")) or STUDY_NATIVE_SIDE
        when = f"about {at} iterations of batch {batch} on {side} px images" if at else found["resolved_at"]
        verb = "emerges" if found["resolved_verdict"] == REPRODUCED else "is decided (contradicted)"
        return (f"{here} at this budget; {verb} at {when} and holds at every costlier setting measured (budget "
                f"study on Fashion-MNIST: {found['resolved_verdict']} from {found['resolved_at']}, "
                f"{found['resolved_core_hours']:.2f} core-hours for all of that setting's runs)")
    if found.get("decided_at"):
        return (f"{here} at this budget; the budget study decided it but did not replicate it: decided at "
                f"{found['decided_at']}; not replicated at {found.get('not_replicated_at') or 'none'}")
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
    ``emerges_at`` set to the iterations from which the study replicates it; unchanged on another data set."""
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


def with_budget_evidence(claims: Iterable[Claim], dataset: str, table: pd.DataFrame | None = None) -> list[Claim]:
    """What the budget study adds to a run's claims: the ends-better replication rule (``claims.budget``),
    then the notes of undecided statements, from the study's rows re-judged by the same rule.
    ``table``: the study's effects (default: the committed one)."""
    claims = list(claims)
    table = load_study() if table is None else table
    judged = with_replication_rule(claims, table, study_dataset=STUDY_DATASET, native_size=STUDY_NATIVE_SIDE)
    ends_better = [c.id for c in claims if getattr(c, "ends_better", False)]
    table = rejudge_study(table, ends_better, STUDY_NATIVE_SIDE)
    study = {} if table is None else {row["id"]: row for row in emergence(table).to_dict("records")}
    return with_budget_notes(judged, dataset, study)
