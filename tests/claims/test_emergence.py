"""Where the budget study decides each claim, and the note an undecided claim of a smaller run carries."""

import pandas as pd
import pytest

from resnetlib.claims import Claim
from resnetlib.claims import emergence as em

EFFECTS = pd.DataFrame([
    {"id": "c", "ref": "Fig. 6", "setting": "1000 it", "iterations": 1000, "batch_size": 128, "core_hours": 1.0,
     "verdict": "reproduced", "image_size": 16},
    {"id": "c", "ref": "Fig. 6", "setting": "300 it", "iterations": 300, "batch_size": 128, "core_hours": 0.3,
     "verdict": "inconclusive"},
    {"id": "c", "ref": "Fig. 6", "setting": "3000 it", "iterations": 3000, "batch_size": 128, "core_hours": 3.0,
     "verdict": "reproduced"},
    {"id": "d", "ref": "Fig. 7", "setting": "300 it", "iterations": 300, "batch_size": 128, "core_hours": 0.3,
     "verdict": "not measurable at this scale"},
    {"id": "d", "ref": "Fig. 7", "setting": "3000 it", "iterations": 3000, "batch_size": 128, "core_hours": 3.0,
     "verdict": "inconclusive"},
    {"id": "e", "ref": "Fig. 6", "setting": "1000 it, batch 64", "iterations": 1000, "batch_size": 64,
     "core_hours": 0.5, "verdict": "contradicted"},
])


def claim(id: str, verdict: str, kind: str = "statement") -> Claim:
    return Claim(id=id, ref="Fig. 6", what="x", ours=1.0, paper="yes", verdict=verdict, reason="why", kind=kind)


def test_emergence_is_the_cheapest_decided_setting():
    table = em.emergence(EFFECTS).set_index("id")
    assert table.loc["c", "resolved_at"] == "1000 it" and table.loc["c", "resolved_core_hours"] == 1.0
    assert table.loc["c", "resolved_iterations"] == 1000
    assert pd.isna(table.loc["d", "resolved_at"]) and table.loc["d", "verdict_there"] == "inconclusive"
    assert table.loc["d", "not_measurable_in"] == 1


def test_undecided_claims_say_where_the_study_decides_them():
    study = {row["id"]: row for row in em.emergence(EFFECTS).to_dict("records")}
    noted = em.with_budget_notes([claim("c", "inconclusive"), claim("c", "not measurable at this scale"),
                                  claim("e", "inconclusive"), claim("c", "reproduced")], "fashion_mnist", study)
    assert noted[0].reason.startswith("inconclusive at this budget; emerges at about 1000 iterations of batch 128 "
                                      "on 16 px images ")
    assert noted[0].reason.endswith(". why") and noted[0].emerges_at == 1000
    assert noted[1].reason.startswith("not measurable at this budget; emerges at about 1000 iterations")
    assert "is decided (contradicted) at about 1000 iterations of batch 64 on 28 px images" in noted[2].reason
    assert noted[3].reason == "why" and noted[3].emerges_at is None


@pytest.mark.parametrize(("verdict", "note"), [
    ("inconclusive", ("inconclusive at this budget; the budget study did not decide it either (up to 3000 it: "
                     "inconclusive). why")),
    ("not measurable at this scale", "why"),  # the study could not measure it either: nothing to add
])
def test_claims_the_study_did_not_decide(verdict, note):
    study = {row["id"]: row for row in em.emergence(EFFECTS).to_dict("records")}
    assert em.with_budget_notes([claim("d", verdict)], "fashion_mnist", study)[0].reason == note


def test_no_note_on_another_data_set_or_for_numbers_or_claims_outside_the_study():
    study = {row["id"]: row for row in em.emergence(EFFECTS).to_dict("records")}
    assert em.with_budget_notes([claim("c", "inconclusive")], "cifar10", study)[0].reason == "why"
    assert em.with_budget_notes([claim("c", "not measurable at this scale", "number")], "fashion_mnist",
                                study)[0].reason == "why"
    assert em.with_budget_notes([claim("z", "inconclusive")], "fashion_mnist", study)[0].reason == "why"


def test_the_committed_study_is_read(tmp_path):
    study = em.load_emergence()
    assert study["fig1_plain_degradation"]["resolved_iterations"] == 1000
    assert em.load_emergence(tmp_path) == {}


def _rows(claim_id, verdicts):
    """One row per setting, cheapest first: ``verdicts`` at 0.1, 0.3, 1.0, ... core-hours."""
    hours = [0.1, 0.3, 1.0, 3.0, 10.0]
    return [{"id": claim_id, "ref": "Table 3", "setting": f"s{i}", "iterations": 100 * (i + 1), "batch_size": 128,
             "core_hours": hours[i], "verdict": v} for i, v in enumerate(verdicts)]


def test_emergence_is_replication_a_claim_decided_once_then_not_has_none():
    """Table 3 in the committed study: reproduced at the second setting, inconclusive at both costlier ones."""
    table = em.emergence(pd.DataFrame(_rows("t3", ["not measurable at this scale", "reproduced", "inconclusive",
                                                   "inconclusive"]))).set_index("id")
    assert pd.isna(table.loc["t3", "resolved_at"])
    assert table.loc["t3", "decided_at"] == "s1 (reproduced)"
    assert table.loc["t3", "not_replicated_at"] == "s2 (inconclusive); s3 (inconclusive)"
    note = em.budget_note("inconclusive", table.reset_index().to_dict("records")[0])
    assert note == ("inconclusive at this budget; the budget study decided it but did not replicate it: decided at "
                    "s1 (reproduced); not replicated at s2 (inconclusive); s3 (inconclusive)")


def test_emergence_is_the_cheapest_setting_from_which_every_costlier_one_agrees():
    table = em.emergence(pd.DataFrame(_rows("f", ["inconclusive", "reproduced", "inconclusive", "reproduced",
                                                  "reproduced"]))).set_index("id")
    assert table.loc["f", "resolved_at"] == "s3" and table.loc["f", "not_replicated_at"] == ""


def test_per_seed_rows_are_collapsed_to_a_t_interval():
    rows = [{"setting": "s", "id": "c", "ref": "Fig. 6", "iterations": 1000, "batch_size": 128, "core_hours": 1.0,
             "verdict": "reproduced", "seed": seed, "effect": effect} for seed, effect in enumerate((5.0, 6.0, 7.0))]
    table = em.collapse_seeds(pd.DataFrame(rows))
    assert len(table) == 1 and "seed" not in table
    row = table.iloc[0]
    assert row.effect == pytest.approx(6.0) and row.n_seeds == 3
    assert row.ci_high - row.effect == pytest.approx(4.3027 / 3 ** 0.5, rel=1e-3)
    assert em.emergence(pd.DataFrame(rows)).iloc[0].resolved_at == "s"


def test_a_study_that_judged_two_readings_as_two_claims_is_read_as_one_claim():
    """Fig. 7 at 3000 it / 16 px in the committed study: whole R at 1000 native, I at 3000 16px; both readings."""
    table = em.load_study()
    fig7 = table[table.id == "fig7_resnet56_smaller_than_plain56"].set_index("setting")
    assert fig7.loc["1000 it, native", "verdict"] == "reproduced"
    assert fig7.loc["3000 it, 16px", "verdict"] == "inconclusive"
    assert not table.id.str.endswith("_per_channel").any()
    note = em.load_emergence()["fig7_resnet56_smaller_than_plain56"]
    # R at 1000 native is not replicated at 3000 / 16 px (I), so the claim cannot emerge there; it emerges
    # only where every costlier setting replicates it (the 10k setting of the depth study, or nowhere)
    assert note["resolved_at"] in (None, "10000 it, 16px") or pd.isna(note["resolved_at"])


def test_controls_of_the_study_are_not_points_on_the_budget_axis():
    import pandas as pd

    from resnetlib.claims.emergence import budget_axis

    effects = pd.DataFrame({"setting": ["3000 it, 16px", "3000 it, 16px, fp32", "old"],
                            "control": [False, True, None]})
    assert list(budget_axis(effects).setting) == ["3000 it, 16px", "old"]
    assert budget_axis(effects.drop(columns="control")).shape[0] == 3  # a study without controls: all rows
