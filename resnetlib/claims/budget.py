"""Did the budget suffice? The rule for claims about which net *ends* better (issue 19, item 2).

"ResNet-56 ends with lower training error than ResNet-20" (Fig. 6 middle), Table 6's trend, Fig. 4 right,
Table 3's bottleneck nets, Fig. 7's deeper ResNet: at a small budget the deeper net may simply not have
caught up yet, and no test on the run's own curves can tell (the last learning-rate phase is flat by
construction: its lr is 1/100 of the start). So the evidence must come from a larger budget:

    Below the paper's scale, such a claim may be ``contradicted`` only where the effect is replicated at
    every budget at least ``REPLICATION_BUDGET_FACTOR`` (3x) larger that was measured on the same data
    at the same image side (interval below zero, mean below minus the margin) without moving toward the
    paper's direction by more than this run's interval half-width. Otherwise it is not measurable at
    this budget, and the reason gives the effect against budget: "still converging: effect -14.0 -> -6.5
    -> -3.0 over 300 -> 3000 iterations".

The larger budgets come from the budget study (``claims.emergence.load_study``: Fashion-MNIST, CIFAR-style
nets); claims on other data have no larger budget measured, so their contradictions are not measurable at
this budget. Reproduced and inconclusive verdicts are left as they are.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from .builders import AT_THIS_BUDGET, Claim
from .rules import REPLICATION_BUDGET_FACTOR
from .verdicts import CONTRADICTED, NOT_MEASURABLE

__all__ = ["Point", "contradiction_stands", "rejudge_study", "study_points", "with_replication_rule"]


@dataclass(frozen=True)
class Point:
    """A claim's effect at one budget: images seen (iterations x batch), the iterations, the interval."""

    images: int
    iterations: int
    effect: float
    ci_low: float | None = None
    ci_high: float | None = None
    margin: float = 0.0

    def half_width(self) -> float:
        if self.ci_low is None or self.ci_high is None:
            return math.inf
        return (self.ci_high - self.ci_low) / 2

    def contradicted(self) -> bool:
        """The opposite of the paper's claim holds here: interval below zero, mean below minus the margin."""
        return self.ci_high is not None and self.ci_high < 0 and self.effect < -self.margin


def contradiction_stands(here: Point, others: Iterable[Point], *,
                         factor: float = REPLICATION_BUDGET_FACTOR) -> tuple[bool, str]:
    """(True, "") when ``here``'s contradiction is replicated at every budget >= ``factor`` x larger among
    ``others`` without moving toward the paper's direction by more than ``here``'s half-width; else
    (False, why)."""
    points = sorted(others, key=lambda p: p.images)
    larger = [p for p in points if p.images >= factor * here.images]
    if not larger:
        return False, (f"no budget >= {factor:g}x this one ({here.iterations} iterations) was measured, and a "
                       "claim about which net ends better is contradicted only where a larger budget replicates it")
    moved = [p for p in larger if p.effect - here.effect > here.half_width()]
    failed = [p for p in larger if not p.contradicted()]
    if not moved and not failed:
        return True, ""
    trajectory = sorted({p.images: p for p in [*points, here]}.values(), key=lambda p: p.images)
    effects = " -> ".join(f"{p.effect:+.1f}" for p in trajectory)
    span = f"{trajectory[0].iterations} -> {trajectory[-1].iterations} iterations"
    what = "still converging" if moved else "not replicated at a larger budget"
    return False, f"{what}: effect {effects} over {span}"


def study_points(table: pd.DataFrame | None, claim_id: str, image_size: int | None,
                 native_size: int) -> list[Point]:
    """The budget study's effects of ``claim_id`` at the image side ``image_size`` (None: native)."""
    if table is None or table.empty:
        return []
    side = image_size or native_size
    rows = table[(table["id"] == claim_id) & (table["image_size"].fillna(native_size) == side)]
    return [Point(int(r.iterations) * int(r.batch_size), int(r.iterations), float(r.effect), _num(r.ci_low),
                  _num(r.ci_high), _num(r.margin) or 0.0)
            for r in rows.itertuples() if pd.notna(r.effect)]


def _num(value) -> float | None:
    return float(value) if value is not None and pd.notna(value) else None


def with_replication_rule(claims: Iterable[Claim], table: pd.DataFrame | None, *, study_dataset: str,
                          native_size: int) -> list[Claim]:
    """``claims`` with every contradicted ends-better statement below the paper's scale turned not
    measurable at this budget unless ``table`` (the budget study) replicates it at a budget >= 3x larger."""
    out = []
    for claim in claims:
        if not (claim.kind == "statement" and claim.ends_better and claim.verdict == CONTRADICTED
                and claim.scope == AT_THIS_BUDGET):
            out.append(claim)
            continue
        budget = claim.budget
        here = Point(budget.images() if budget else 0, budget.iterations if budget else 0, claim.effect or 0.0,
                     claim.ci_low, claim.ci_high, claim.margin or 0.0)
        same_data = budget is not None and budget.dataset == study_dataset
        others = study_points(table, claim.id, budget.image_size, native_size) if same_data else []
        stands, why = contradiction_stands(here, others)
        if stands:
            out.append(claim.model_copy(update={"reason": f"contradicted at this budget and replicated at a budget "
                                                          f">= {REPLICATION_BUDGET_FACTOR:g}x larger. {claim.reason}"}))
        else:
            out.append(claim.model_copy(update={"verdict": NOT_MEASURABLE,
                                                "reason": f"not measurable at this budget: {why}. {claim.reason}"}))
    return out


def rejudge_study(table: pd.DataFrame | None, ends_better: Iterable[str], native_size: int) -> pd.DataFrame | None:
    """The budget study's rows with the same rule applied to its own settings: a contradicted row of an
    ends-better claim stands only where the study's own budgets >= 3x larger replicate it (so a note never
    says a claim "is decided (contradicted)" where the rule would not let it be)."""
    if table is None or table.empty:
        return table
    table = table.copy()
    for i, row in table[table["id"].isin(set(ends_better)) & (table["verdict"] == CONTRADICTED)].iterrows():
        side = row["image_size"] if pd.notna(row["image_size"]) else None
        here = Point(int(row.iterations) * int(row.batch_size), int(row.iterations), float(row.effect),
                     _num(row.ci_low), _num(row.ci_high), _num(row.margin) or 0.0)
        others = [q for q in study_points(table, row["id"], side, native_size) if q.images != here.images]
        stands, why = contradiction_stands(here, others)
        if not stands:
            table.loc[i, "verdict"] = NOT_MEASURABLE
            table.loc[i, "reason"] = f"not measurable at this budget: {why}"
    return table
