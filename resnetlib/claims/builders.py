"""Claims: one row of the index each, built from the paper's registry or from measured per-seed effects.

- ``number_claim`` / ``compare_claim``: a number we measured beside one the paper reports
  (``verdicts.compare_number``);
- ``statement_claim``: a qualitative statement judged from per-seed effects (``verdicts.judge_effects``);
- ``readings_claim``: one comparison read two ways (Fig. 7's two std definitions): one claim, whose
  verdict requires the readings to agree;
- ``architecture_claim``: an exact fact of an architecture, true or false at every scale.

Every claim carries its ``scope``: a verdict below the paper's scale holds "at this budget" only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import BaseModel

from .. import paper
from .rules import MIN_SEEDS
from .verdicts import (
    INCONCLUSIVE,
    NOT_MEASURABLE,
    NOT_REPRODUCED,
    REPRODUCED,
    Gate,
    Interval,
    Verdict,
    compare_number,
    judge_effects,
)

__all__ = ["AT_PAPER_SCALE", "AT_THIS_BUDGET", "EXACT", "Budget", "Claim", "ClaimKind", "Reading",
           "architecture_claim", "compare_claim", "number_claim", "readings_claim", "scope_of", "statement_claim"]

#: What a claim is: an exact count of an architecture, a qualitative statement about trained nets, or a
#: number the paper reports.
ClaimKind = Literal["architecture", "statement", "number"]
#: Where a verdict holds: below the paper's scale only at the budget measured.
AT_THIS_BUDGET = "at this budget"
AT_PAPER_SCALE = "at the paper's scale"
EXACT = "exact, at every scale"


def scope_of(at_paper_scale: bool) -> str:
    return AT_PAPER_SCALE if at_paper_scale else AT_THIS_BUDGET


class Budget(BaseModel):
    """What the nets of a claim were trained with: the data set, iterations of a batch, the image side
    (None: the data's own). ``images()`` is the budget the replication rule compares (``claims.budget``)."""

    dataset: str
    iterations: int
    batch_size: int
    image_size: int | None = None

    def images(self) -> int:
        return self.iterations * self.batch_size


class Reading(BaseModel):
    """One reading of a comparison measured two ways (e.g. Fig. 7's whole-tensor std)."""

    name: str
    verdict: Verdict
    effect: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    reason: str = ""


class Claim(BaseModel):
    """One row of the index: a number or statement of the paper beside what this run measured.

    ``kind`` separates architecture facts from experimental claims, so the index counts them apart;
    ``n_seeds``, ``effect``, ``ci_low``, ``ci_high``, ``margin``, ``p_value`` and ``per_seed`` are a
    statement's evidence (mean effect, its 95% interval, the practical margin, the two-sided p of a zero
    effect, the per-seed effects), None where they do not apply; ``scope``: where the verdict holds ("at
    this budget" below the paper's scale); ``ends_better``: a claim about which net *ends* better (it may be
    contradicted only where a budget >= 3x larger replicates it, ``claims.budget``); ``budget``: what its
    nets trained with; ``readings``: the readings of one comparison measured two ways; ``emerges_at``: for
    a statement undecided here, the training iterations from which the budget study replicates it.
    """

    id: str
    ref: str
    what: str
    ours: float | str | None
    paper: float | str | None
    verdict: Verdict
    reason: str
    kind: ClaimKind
    scope: str = AT_THIS_BUDGET
    n_seeds: int | None = None
    effect: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    margin: float | None = None
    p_value: float | None = None
    per_seed: list[float] | None = None
    ends_better: bool = False
    budget: Budget | None = None
    readings: list[Reading] | None = None
    emerges_at: int | None = None


# ------------------------------------------------------------------------------------------------- numbers
def compare_claim(
    id: str, ref: str, what: str, ours: float | None, paper_value: float, *, at_paper_scale: bool,
    tolerance: float, lower_is_better: bool | None = True, digits: int = 2, kind: ClaimKind = "number",
    spread: float | None = None, n_seeds: int | None = None,
) -> Claim:
    """A number we measured beside a number the paper reports, judged by ``verdicts.compare_number``.

    ``kind="architecture"`` for exact counts; ``spread`` is the seeds' standard deviation of ``ours``: with
    ``n_seeds`` it gives the standard error of their mean, which widens the tolerance."""
    sem = spread / math.sqrt(n_seeds) if spread is not None and n_seeds and n_seeds > 1 else None
    verdict, reason = compare_number(ours, paper_value, at_paper_scale=at_paper_scale, tolerance=tolerance,
                                     lower_is_better=lower_is_better, sem=sem)
    shown = None if ours is None else round(ours, digits)
    scope = EXACT if kind == "architecture" else scope_of(at_paper_scale)
    return Claim(id=id, ref=ref, what=what, ours=shown, paper=paper_value, verdict=verdict, reason=reason,
                 kind=kind, n_seeds=n_seeds, scope=scope)


def number_claim(
    key: str, ours: float | None, *, at_paper_scale: bool, tolerance: float, lower_is_better: bool | None = True,
    id: str | None = None, what: str | None = None, ref: str | None = None, digits: int = 2, per: float = 1.0,
    kind: ClaimKind = "number", spread: float | None = None, n_seeds: int | None = None,
) -> Claim:
    """A paper number (``paper.REPORTED[key]``) beside ours.

    Defaults from the registry: ``ref``; ``what`` (its text, with `` (%)`` for percentages); ``id`` is the
    key with dots as underscores. ``per`` divides the paper's value into the unit of ``ours`` (1e6 for
    parameters in M); ``ours`` is shown rounded to ``digits``; ``tolerance`` is in that unit.
    """
    reported = paper.get(key)
    return compare_claim(
        id or key.replace(".", "_"), ref or reported.ref, what or _default_what(reported), ours,
        reported.value / per if per != 1.0 else reported.value, at_paper_scale=at_paper_scale,
        tolerance=tolerance, lower_is_better=lower_is_better, digits=digits, kind=kind, spread=spread,
        n_seeds=n_seeds,
    )


def _default_what(reported: paper.Reported) -> str:
    return f"{reported.what} (%)" if reported.unit == "%" else reported.what


# ---------------------------------------------------------------------------------------------- statements
_EFFECT = object()  # "ours is the mean effect" (statement_claim's default)


def statement_claim(
    id: str, ref: str, statement: str, effects: Sequence[float] | float | None, *, margin: float,
    gates: Iterable[Gate] = (), sampling_se: float | None = None, measurable: bool = True, why: str = "",
    what: str | None = None, ours: Any = _EFFECT, paper: float | str = "yes", digits: int = 2,
    min_seeds: int = MIN_SEEDS, at_paper_scale: bool = False, ends_better: bool = False,
    budget: Budget | None = None,
) -> Claim:
    """A qualitative claim of the paper, judged by ``verdicts.judge_effects`` on its per-seed ``effects``
    (positive = the paper's direction; paired by seed where both arms share one; a single float is one
    seed).

    ``sampling_se`` is one seed's sampling standard error (``verdicts.difference_se`` over the images
    counted); ``gates`` are the comparison's preconditions (every net trained, every detector detects);
    ``measurable=False`` (with ``why``) is the scale's own precondition (data, epochs). ``ends_better``
    marks a claim about which net ends better (``claims.budget`` then decides whether a contradiction
    stands), ``budget`` what its nets trained with. Shown as ``what`` (default: the statement + ``
    (percentage points)``), ``ours`` (default: the mean effect rounded to ``digits``) and ``paper``
    (default ``"yes"``, or the paper's own effect).
    """
    values = [] if effects is None else [float(effects)] if isinstance(effects, int | float) else list(effects)
    scale = Gate(measurable and bool(values), why or f"this scale cannot test: {statement}")
    judged = judge_effects(values or [0.0], statement=statement, margin=margin, sampling_se=sampling_se,
                           gates=[scale, *gates], min_seeds=min_seeds)
    ci = judged.interval
    shown = (ci.mean if ci else None) if ours is _EFFECT else ours
    if isinstance(shown, float):
        shown = round(shown, digits)
    return Claim(id=id, ref=ref, what=what or statement + " (percentage points)", ours=shown, paper=paper,
                 verdict=judged.verdict, reason=judged.reason, kind="statement", margin=margin,
                 n_seeds=len(values) or None, scope=scope_of(at_paper_scale), ends_better=ends_better,
                 budget=budget, per_seed=[round(v, 4) for v in values] or None, **_interval_fields(ci, values))


def _interval_fields(ci: Interval | None, values: list[float]) -> dict[str, float | None]:
    """effect, ci_low, ci_high, p_value of a claim: the judged interval, or the plain mean when a gate
    failed; unbounded ends are None (JSON has no infinity)."""
    if ci is None:
        mean = _finite(sum(values) / len(values)) if values else None
        return {"effect": mean, "ci_low": None, "ci_high": None, "p_value": None}
    p = ci.p_value()
    return {"effect": _finite(ci.mean), "ci_low": _finite(ci.low), "ci_high": _finite(ci.high),
            "p_value": None if p is None else float(f"{p:.4g}")}


def _finite(x: float) -> float | None:
    return round(x, 4) if math.isfinite(x) else None


def readings_claim(id: str, what: str, readings: Sequence[tuple[str, Claim]]) -> Claim:
    """One comparison measured two (or more) ways, as one claim (issue 19, item 5).

    The verdict is the readings' common verdict when they agree; otherwise inconclusive (not measurable
    when any reading's gate failed), naming each reading's verdict. The effect, interval and p shown are
    the first reading's; every reading is kept under ``readings``.
    """
    first = readings[0][1]
    verdicts = {c.verdict for _, c in readings}
    listed = "; ".join(f"{name}: {c.verdict}, {c.reason}" for name, c in readings)
    if len(verdicts) == 1:
        verdict, reason = first.verdict, f"both readings agree. {listed}"
    elif NOT_MEASURABLE in verdicts:
        verdict, reason = NOT_MEASURABLE, f"a reading could not be judged. {listed}"
    else:
        verdict, reason = INCONCLUSIVE, f"the readings disagree ({', '.join(sorted(verdicts))}). {listed}"
    kept = [Reading(name=name, verdict=c.verdict, effect=c.effect, ci_low=c.ci_low, ci_high=c.ci_high,
                    reason=c.reason) for name, c in readings]
    # the p of the family test is the larger of the readings' (a verdict that needs both needs the weaker)
    ps = [c.p_value for _, c in readings]
    p = None if any(v is None for v in ps) else max(ps)
    return first.model_copy(update={"id": id, "what": what, "verdict": verdict, "reason": reason,
                                    "readings": kept, "p_value": p})


def architecture_claim(id: str, ref: str, what: str, holds: bool, *, ours: Any, reason: str) -> Claim:
    """An exact fact of an architecture (parameter-free shortcuts, A < B < C parameters): true or false at
    every scale, no seeds or noise."""
    verdict = REPRODUCED if holds else NOT_REPRODUCED
    return Claim(id=id, ref=ref, what=what, ours=ours, paper="yes", verdict=verdict, reason=reason,
                 kind="architecture", scope=EXACT)
