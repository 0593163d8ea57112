"""build_index on hand-written results.json files and one failed notebook; the kinds of claim (issue 9,
items 6-7): headline counts per kind and verdict, one index.json record per claim, each row's kind and
interval, and the statements' forest plot."""

import json
import math
import shutil
import subprocess
from datetime import datetime, timezone

import pytest

from resnetlib.report import index as index_mod
from resnetlib.claims import kinds
from resnetlib.train import environment
from resnetlib.report.index import FOREST_PNG, build_index

ENV = {"git_commit": "abc1234", "git_dirty": True, "torch": "9.9.9", "device": "cpu (2 cores)"}


def _results(experiment, claims, **extra):
    return {
        "experiment": experiment,
        "profile": "cpu",
        "dataset": "fashion_mnist",
        "data_source": "/usr/share/datasets/fashion-mnist",
        "scale": "10000 train images, 400 iterations",
        "seeds": [0, 1],
        "wall_seconds": 12.0,
        "claims": claims,
        **extra,
    }


def _claim(id, verdict, reason="r", ours=9.1, paper=8.75, ref="Table 6"):
    return {"id": id, "ref": ref, "what": f"what {id}", "ours": ours, "paper": paper, "verdict": verdict,
            "reason": reason}


@pytest.fixture
def built(tmp_path):
    reports = tmp_path / "reports"
    prof = reports / "cpu"
    for name, claims in {
        "architectures": [
            _claim("t1_macs", "reproduced", ours=1.8e9, paper=1.8e9, ref="Table 1"),
            _claim("t1_params", "reproduced", ours=11.7e6, paper=11.7e6, ref="Table 1"),
        ],
        "cifar_degradation": [
            _claim("t6_err", "not measurable at this scale",
                   reason="ours < paper & <script>alert(1)</script>"),
            _claim("fig6_deg", "not reproduced", ours="higher", paper="lower", ref="Figure 6"),
        ],
    }.items():
        (prof / name).mkdir(parents=True)
        (prof / name / "results.json").write_text(json.dumps(_results(name, claims)))
    outcomes = [
        {"name": "architectures", "profile": "cpu", "status": "ok",
         "params_file": "params/architectures/cpu.yaml",
         "notebook": str(prof / "architectures.ipynb"), "html": str(prof / "architectures.html"),
         "wall_seconds": 10.0},
        {"name": "cifar_degradation", "profile": "cpu", "status": "ok",
         "params_file": "params/cifar_degradation/cpu.yaml",
         "notebook": str(prof / "cifar_degradation.ipynb"),
         "html": str(prof / "cifar_degradation.html"), "wall_seconds": 100.0},
        {"name": "shortcut_options", "profile": "cpu", "status": "failed",
         "params_file": "params/shortcut_options/cpu.yaml",
         "notebook": str(prof / "shortcut_options.failed.ipynb"),
         "html": str(prof / "shortcut_options.failed.html"),
         "wall_seconds": 3.5, "ename": "ValueError", "evalue": "depth <20> not supported", "cell_index": 4,
         "execution_count": 3},
        # ok but wrote nothing: must not silently disappear from the index
        {"name": "layer_responses", "profile": "cpu", "status": "ok",
         "params_file": "params/layer_responses/cpu.yaml",
         "notebook": str(prof / "layer_responses.ipynb"), "html": str(prof / "layer_responses.html"),
         "wall_seconds": 1.0},
    ]
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    path = build_index(reports, outcomes, environment=ENV, generated=when)
    return path, json.loads((prof / "index.json").read_text()), prof


def test_writes_both_files_in_the_profile_folder(built):
    path, summary, prof = built
    assert path == prof / "index.html" and path.is_file()
    assert summary["profile"] == "cpu"


def test_counts_per_verdict(built):
    _, summary, _ = built
    assert summary["counts"] == {
        "reproduced": 2,
        "contradicted": 0,
        "inconclusive": 0,
        "not reproduced": 1,
        "not measurable at this scale": 1,
        "failed": 1,
        "no results": 1,
    }
    assert summary["failed_notebooks"] == ["shortcut_options"]
    assert summary["total_wall_seconds"] == pytest.approx(114.5)
    by_name = {e["name"]: e for e in summary["experiments"]}
    assert [c["id"] for c in by_name["cifar_degradation"]["claims"]] == ["t6_err", "fig6_deg"]
    assert by_name["cifar_degradation"]["seeds"] == [0, 1]
    assert by_name["shortcut_options"]["verdict"] == "failed"


def _section(page, name):
    return page.split(f'id="exp-{name}"')[1].split("</section>")[0]


def test_one_section_per_experiment_with_one_row_per_claim(built):
    path, _, _ = built
    page = path.read_text()
    assert [page.count(f'id="exp-{n}"') for n in
            ("architectures", "cifar_degradation", "shortcut_options", "layer_responses")] == [1, 1, 1, 1]
    assert _section(page, "architectures").split("<tbody>")[1].count("<tr") == 2
    assert _section(page, "cifar_degradation").split("<tbody>")[1].count("<tr") == 2
    for column in ["Paper", "Claim", "Ours", "Verdict", "Reason"]:
        assert f">{column}</th>" in page
    assert '<a href="architectures.html">architectures</a>' in page
    assert "params/cifar_degradation/cpu.yaml" in page
    assert 'class="verdict v-reproduced"' in page and 'class="verdict v-not-reproduced"' in page
    assert "Figure 6" in page


def test_scale_data_and_seeds_are_stated_once_per_experiment(built):
    page = built[0].read_text()
    section = _section(page, "cifar_degradation")
    assert section.count("10000 train images, 400 iterations") == 1
    assert section.count("/usr/share/datasets/fashion-mnist") == 1
    assert "<dt>seeds</dt><dd>0, 1</dd>" in section
    assert page.count("10000 train images, 400 iterations") == 2  # once in each of the two sections


def test_numbers_are_formatted_for_people(built):
    page = built[0].read_text()
    assert "1.80 G" in page and "11.70 M" in page  # 1.8e9 and 11.7e6 as counts
    assert "9.10" in page and "8.75" in page
    assert "nan" not in page.lower().replace("nanosecond", "")
    assert "1.8e+09" not in page and "1800000000" not in page


def test_header_and_legend(built):
    page = built[0].read_text()
    assert "abc1234 (dirty" in page and "9.9.9" in page and "cpu (2 cores)" in page
    assert "2025-01-02 03:04:05" in page and "1:54" in page  # 114.5 s total
    assert "computed by this run" in page
    for verdict in ("reproduced", "not reproduced", "not measurable at this scale"):
        assert f">{verdict}</span>" in page


def test_text_is_escaped(built):
    page = built[0].read_text()
    assert "<script>" not in page
    assert "ours &lt; paper &amp; &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "depth &lt;20&gt; not supported" in page


def test_failed_section_shows_error_and_executed_notebook(built):
    page, prof = built[0].read_text(), built[2]
    row = _section(page, "shortcut_options")
    assert "v-failed" in row and ">failed</span>" in row
    assert "ValueError: depth &lt;20&gt; not supported at cell 4 (In [3])" in row
    assert str(prof / "shortcut_options.failed.ipynb") in row
    assert 'href="shortcut_options.failed.html"' in row


def test_missing_results_is_a_visible_section(built):
    page = built[0].read_text()
    row = _section(page, "layer_responses")
    assert "no results" in row and "results.json" in row


def test_profile_is_required_when_outcomes_do_not_give_one(tmp_path):
    with pytest.raises(ValueError, match="one profile"):
        build_index(tmp_path, [], environment=ENV)
    assert build_index(tmp_path, [], profile="smoke", environment=ENV).is_file()


def test_git_state_without_git(monkeypatch):
    monkeypatch.setattr(environment.shutil, "which", lambda name: None)
    assert environment.git_state() == {"commit": "unknown", "dirty": None}


def _git(root, *args):
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def test_one_rule_for_dirty_in_the_index_header_and_the_run_folders(tmp_path, monkeypatch):
    if shutil.which("git") is None:
        pytest.skip("no git")
    _git(tmp_path, "init", "-q")
    (tmp_path / ".gitignore").write_text("runs/\n")
    (tmp_path / "a.py").write_text("x = 1\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "metrics.csv").write_text("ignored output\n")
    assert environment.git_state(tmp_path)["dirty"] is False  # ignored files never count
    (tmp_path / "new_module.py").write_text("y = 2\n")
    assert environment.git_state(tmp_path)["dirty"] is True  # an untracked source file does
    (tmp_path / "new_module.py").unlink()
    (tmp_path / "a.py").write_text("x = 2\n")
    state = environment.git_state(tmp_path)
    assert state["dirty"] is True and len(state["commit"]) == 40
    # the index header reads the same function
    from resnetlib.reproduce.index import collect_environment

    header = collect_environment(tmp_path)
    assert (header["git_commit"], header["git_dirty"]) == (state["commit"], state["dirty"])


# ------------------------------------------------------------------------------ kinds of claim (issue 9)
def _statement(id, verdict, effect, low, high, n=3, margin=1.0, p=None):
    return {"id": id, "ref": "Fig. 6", "what": f"statement {id}", "ours": effect, "paper": "yes",
            "verdict": verdict, "reason": f"why {id}", "kind": "statement", "scope": "at this budget", "n_seeds": n,
            "effect": effect, "ci_low": low, "ci_high": high, "margin": margin, "p_value": p}


def _number(id, verdict, kind="number", ours=9.0, paper=8.75, ref="Table 6"):
    return {"id": id, "ref": ref, "what": f"number {id}", "ours": ours, "paper": paper, "verdict": verdict,
            "reason": f"why {id}", "kind": kind, "n_seeds": 1, "effect": None, "ci_low": None, "ci_high": None,
            "margin": None}


CLAIMS = {
    "architectures": [_number("t1_macs_18", "reproduced", "architecture", 1.8, 1.8, "Table 1"),
                      _number("t6_params_20", "reproduced", "architecture", 0.27, 0.27),
                      _number("t6_params_56", "not reproduced", "architecture", 0.9, 0.85)],
    "cifar_degradation": [
        _statement("s_rep", "reproduced", 6.0, 4.0, 8.0, p=0.01),
        _statement("s_con", "contradicted", -6.0, -7.5, -4.5, p=0.03),
        _statement("s_inc", "inconclusive", 0.0, -0.9, 0.9, p=0.9),
        _statement("s_one", "inconclusive", 3.0, -math.inf, math.inf, n=1),
        _statement("s_nm", "not measurable at this scale", None, None, None, n=None),
        _number("n_rep", "reproduced"), _number("n_not", "not reproduced"),
        _number("n_nm", "not measurable at this scale"),
    ],
    # written before claims carried a kind: the kind is derived, interval fields are None
    "resnet1202": [
        {"id": "table6_params_resnet20", "ref": "Table 6", "what": "p", "ours": 0.27, "paper": 0.27,
         "verdict": "reproduced", "reason": "exact"},
        {"id": "t6_err", "ref": "Table 6", "what": "e", "ours": 80.0, "paper": 7.5,
         "verdict": "not measurable at this scale", "reason": "small"},
        {"id": "overfits", "ref": "Table 6", "what": "o", "ours": 1.2, "paper": "yes",
         "verdict": "not reproduced", "reason": "old rule"},
    ],
}


def _build(tmp_path, claims_by_experiment):
    prof = tmp_path / "reports" / "cpu"
    outcomes = []
    for name, claims in claims_by_experiment.items():
        (prof / name).mkdir(parents=True, exist_ok=True)
        results = {"experiment": name, "dataset": "cifar10", "scale": "s", "seeds": [0, 1, 2], "claims": claims}
        (prof / name / "results.json").write_text(json.dumps(results))
        outcomes.append({"name": name, "profile": "cpu", "status": "ok", "params_file": f"params/{name}/cpu.yaml",
                         "notebook": str(prof / f"{name}.ipynb"), "html": str(prof / f"{name}.html"),
                         "wall_seconds": 1.0})
    when = datetime(2025, 1, 2, tzinfo=timezone.utc)
    path = build_index(tmp_path / "reports", outcomes, environment=ENV, generated=when)
    return path.read_text(), json.loads((prof / "index.json").read_text()), prof


@pytest.fixture
def built_kinds(tmp_path):
    return _build(tmp_path, CLAIMS)


def test_headline_counts_each_kind_apart(built_kinds):
    page, summary, _ = built_kinds
    assert summary["headline"] == {
        "experimental claims": "1 reproduced, 1 contradicted, 2 inconclusive, 1 not measurable, 1 not reproduced",
        "paper numbers": "1 reproduced, 1 not reproduced, 2 not measurable",
        # Table 6's ResNet-20 parameters appear in two experiments and are counted once
        "architecture facts": "2/3 exact",
    }
    assert summary["counts_by_kind"]["statement"]["inconclusive"] == 2
    assert "<td>experimental claims</td><td>1 reproduced, 1 contradicted, 2 inconclusive" in page
    assert "<td>architecture facts</td><td>2/3 exact</td>" in page
    assert summary["counts"]["contradicted"] == 1 and summary["counts"]["inconclusive"] == 2


def test_one_record_per_claim_with_every_field(built_kinds):
    _, summary, _ = built_kinds
    records = {r["id"]: r for r in summary["claims"]}
    assert len(summary["claims"]) == sum(map(len, CLAIMS.values()))
    for record in summary["claims"]:
        assert set(kinds.RECORD_FIELDS) <= set(record)
    assert records["s_rep"] | {} == {**CLAIMS["cifar_degradation"][0], "experiment": "cifar_degradation",
                                     "p_holm": 0.03, "verdict_holm": "reproduced"}
    assert (records["s_one"]["ci_low"], records["s_one"]["ci_high"]) == (None, None)  # strict JSON: no inf
    assert records["s_nm"]["effect"] is None and records["n_rep"]["margin"] is None
    assert records["n_rep"]["what"] == "number n_rep"  # whatever else the claim holds is kept
    assert [e["name"] for e in summary["experiments"]] == list(CLAIMS)  # the old layout is kept


def test_kinds_of_old_results_are_derived(built_kinds):
    _, summary, _ = built_kinds
    records = {r["id"]: r for r in summary["claims"] if r["experiment"] == "resnet1202"}
    assert {k: r["kind"] for k, r in records.items()} == {
        "table6_params_resnet20": "architecture", "t6_err": "number", "overfits": "statement"}
    assert all(r[f] is None for r in records.values() for f in ("n_seeds", "effect", "ci_low", "margin"))
    assert kinds.claim_kind({"id": "x", "paper": 1.0}, "architectures") == "architecture"
    assert kinds.claim_kind({"id": "table1_macs_resnet18", "paper": 1.8}) == "architecture"


def _rows(page, name):
    return _section(page, name).split("<tbody>")[1].split("<tr>")[1:]


def test_rows_show_kind_and_statement_intervals(built_kinds):
    page = built_kinds[0]
    rows = _rows(page, "cifar_degradation")
    assert [r.split('class="kind">')[1].split("<")[0] for r in rows] == ["statement"] * 5 + ["number"] * 3
    assert "effect +6.00, 95% CI [+4.00, +8.00], margin 1, 3 seeds" in rows[0]
    assert "effect -6.00, 95% CI [-7.50, -4.50], margin 1, 3 seeds" in rows[1]
    assert "effect +3.00, 95% CI not estimated, margin 1, 1 seed<" in rows[3]
    assert 'class="effect"' not in rows[4] + "".join(rows[5:])  # no effect, or not a statement
    for verdict in ("contradicted", "inconclusive"):
        assert f'class="verdict v-{verdict}">{verdict}</span>' in rows[1] + rows[2]
    assert ">Kind</th>" in page


def test_the_family_is_counted_and_holm_is_beside_the_raw_verdict(built_kinds):
    """Three statements with a p (0.01, 0.03, 0.9): Holm gives 0.03, 0.06, 0.9, so the contradiction does
    not survive the family at 0.05; the raw verdict stays."""
    page, summary, _ = built_kinds
    records = {r["id"]: r for r in summary["claims"]}
    assert summary["family"] == {"statements_judged": 3, "decided": 2, "decided_after_holm": 1, "alpha": 0.05}
    assert (records["s_con"]["verdict"], records["s_con"]["verdict_holm"]) == ("contradicted", "inconclusive")
    assert records["s_con"]["p_holm"] == pytest.approx(0.06)
    assert "Statements judged in this run: 3" in page and "of which 1 stay decided" in page
    rows = _rows(page, "cifar_degradation")
    assert '<span class="scope">at this budget</span>' in rows[1] and "Holm: inconclusive (p 0.06)" in rows[1]
    assert "is contradicted only where the budget study replicates" in page  # the rule is stated


def test_forest_plot_beside_the_index(built_kinds):
    page, summary, prof = built_kinds
    assert summary["forest"] == FOREST_PNG and (prof / FOREST_PNG).stat().st_size > 1000
    assert f'<img src="{FOREST_PNG}"' in page


def test_no_statements_no_forest_plot(built_kinds, tmp_path):
    assert (built_kinds[2] / FOREST_PNG).is_file()
    page, summary, prof = _build(tmp_path, {"architectures": CLAIMS["architectures"]})
    assert summary["forest"] is None and not (prof / FOREST_PNG).exists() and "<img" not in page
    assert summary["headline"]["experimental claims"] == "0 reproduced, 0 contradicted, 0 inconclusive, " \
                                                        "0 not measurable"


def test_a_study_without_claims_of_its_own_says_why_and_is_not_counted(tmp_path):
    prof = tmp_path / "reports" / "cpu"
    for name, extra in {"budget_study": {"no_claims": "it judges other notebooks' claims"}, "empty": {}}.items():
        (prof / name).mkdir(parents=True)
        (prof / name / "results.json").write_text(json.dumps(_results(name, [], **extra)))
    outcomes = [{"name": n, "profile": "cpu", "status": "ok", "wall_seconds": 1.0} for n in ("budget_study", "empty")]
    build_index(tmp_path / "reports", outcomes, environment=ENV)
    summary = json.loads((prof / "index.json").read_text())
    assert summary["counts"]["no results"] == 1  # only the one that gives no reason
    assert "it judges other notebooks&#39; claims" in (prof / "index.html").read_text()


def test_training_cost_counts_each_run_once_and_names_experiments_without_runs():
    from resnetlib.report.index import training_cost

    shared = {"run": "cifar_resnet20-s0-abc", "thread_seconds": 3600.0, "cpu_seconds": 3000.0}
    entries = [{"name": "cifar_degradation", "training_runs": [shared, {"run": "p", "thread_seconds": 1800.0,
                                                                          "cpu_seconds": None}]},
               {"name": "layer_responses", "training_runs": [shared], "cpu_seconds": 360.0},
               {"name": "architectures", "cpu_seconds": 720.0}, {"name": "old", "cpu_seconds": 9e9, "carried_over": True}]
    cost = training_cost(entries)
    assert cost == {"runs": 2, "core_hours": 1.5, "cpu_hours_measured": 0.833, "runs_with_cpu_time": 1,
                    "experiments_without_runs": ["architectures", "old"], "notebook_cpu_hours": 0.3,
                    "notebooks_with_cpu_time": 2}


def test_what_the_profile_leaves_out_is_listed_with_its_reason(tmp_path):
    not_run = [{"what": "imagenet_deeper", "why": "no ResNet-50 trains at <300> iterations"},
               {"what": "Fig. 6 middle", "why": "undecided up to 10k iterations"}]
    build_index(tmp_path / "reports", [], profile="cpu", environment=ENV, not_run=not_run)
    prof = tmp_path / "reports" / "cpu"
    assert json.loads((prof / "index.json").read_text())["not_run"] == not_run
    page = (prof / "index.html").read_text()
    assert "Not run in this profile, and why" in page and "no ResNet-50 trains at &lt;300&gt; iterations" in page
    build_index(tmp_path / "reports", [], profile="cpu", environment=ENV)
    assert "Not run in this profile" not in (prof / "index.html").read_text()
