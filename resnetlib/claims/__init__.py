"""The judge: how a measurement becomes a verdict, and nothing else (issue 19).

- ``rules``: every threshold (margins, tolerances, gates) in one table;
- ``verdicts``: the verdict rules (``compare_number`` for paper numbers, ``judge_effects`` for statements,
  the training and detector gates);
- ``builders``: the ``Claim`` record and its builders (``number_claim``, ``statement_claim``,
  ``readings_claim``, ``architecture_claim``), each claim with its ``scope``;
- ``budget``: the ends-better rule (a contradiction stands only where a budget >= 3x larger replicates it);
- ``emergence``: the budget study's emergence (= replication) and the notes of undecided claims;
- ``family``: the Holm adjustment over the statements a run judges;
- ``kinds``: claim kinds and the one-record-per-claim view ``index.json`` holds.

Experiments build claims with it; ``report`` presents them. It imports neither.
"""

from .builders import (
    AT_PAPER_SCALE,
    AT_THIS_BUDGET,
    EXACT,
    Budget,
    Claim,
    ClaimKind,
    architecture_claim,
    compare_claim,
    number_claim,
    readings_claim,
    statement_claim,
)
from .verdicts import (
    CONTRADICTED,
    INCONCLUSIVE,
    NOT_MEASURABLE,
    NOT_REPRODUCED,
    NUMBER_VERDICTS,
    REPRODUCED,
    STATEMENT_VERDICTS,
    Gate,
    Verdict,
    class_fraction,
    detector_gate,
    difference_se,
    judge_effects,
    trained_gate,
)

__all__ = [
    "AT_PAPER_SCALE", "AT_THIS_BUDGET", "CONTRADICTED", "EXACT", "INCONCLUSIVE", "NOT_MEASURABLE", "NOT_REPRODUCED",
    "NUMBER_VERDICTS", "REPRODUCED", "STATEMENT_VERDICTS", "Budget", "Claim", "ClaimKind", "Gate", "Verdict",
    "architecture_claim", "class_fraction", "compare_claim", "detector_gate", "difference_se", "judge_effects", "number_claim",
    "readings_claim", "statement_claim", "trained_gate",
]
