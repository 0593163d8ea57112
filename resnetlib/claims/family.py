"""The family of statements a run judges, and what survives it (issue 19, item 5).

A profile judges about twenty statements, each at 95%: by chance alone about one in twenty decided
statements could be a false decision. Holm's step-down procedure (Holm 1979) controls the family-wise
error rate at ``FAMILY_ALPHA`` over the statements with a p-value (those a gate did not stop): sort
p ascending, adjusted p_(i) = max over j <= i of min(1, (m - j + 1) p_(j)). A decided statement keeps its
verdict in the Holm column when its adjusted p is below ``FAMILY_ALPHA``; otherwise that column reads
inconclusive. The raw verdict stays beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .rules import FAMILY_ALPHA
from .verdicts import CONTRADICTED, INCONCLUSIVE, REPRODUCED

__all__ = ["holm_adjust", "holm_verdicts"]


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input's order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def holm_verdicts(records: Sequence[Mapping[str, Any]], alpha: float = FAMILY_ALPHA) -> tuple[list[dict], int]:
    """Each statement record with ``p_holm`` and ``verdict_holm`` added (None where it has no p-value:
    a gate stopped it), and the size of the family (statements with a p-value)."""
    judged = [i for i, r in enumerate(records) if r.get("kind") == "statement" and r.get("p_value") is not None]
    adjusted = holm_adjust([float(records[i]["p_value"]) for i in judged])
    out = [dict(r) for r in records]
    for r in out:
        if r.get("kind") == "statement":
            r.update(p_holm=None, verdict_holm=None)
    for i, p in zip(judged, adjusted):
        raw = out[i]["verdict"]
        keeps = raw in (REPRODUCED, CONTRADICTED) and p < alpha
        out[i].update(p_holm=round(p, 4), verdict_holm=raw if keeps or raw not in (REPRODUCED, CONTRADICTED)
                      else INCONCLUSIVE)
    return out, len(judged)
