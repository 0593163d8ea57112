"""The budget study: its settings, the runs it plans (shared with the other notebooks), and that `reproduce` runs it only when named outside the smoke profile."""

import pandas as pd
import pytest

from resnetlib import reproduce
from resnetlib.experiments import budget_study as study
from resnetlib.experiments import cifar_degradation


def test_setting_labels_and_padding_scale_with_the_image():
    assert study.Setting(iterations=300).label() == "300 it, native"
    assert study.Setting(iterations=1000, image_size=16, train_size=10_000, batch_size=64).label() == \
        "1000 it, 16px, 10k images, batch 64"
    assert [study.Setting(iterations=8, image_size=s).padding(28) for s in (None, 16, 20, 32)] == [4, 2, 3, 4]


def test_planned_runs_cover_every_setting_once_and_share_the_degradation_nets():
    params = study.Params(seeds=[0, 1], settings=[{"iterations": 16, "image_size": 16}, {"iterations": 32}])
    runs = study.planned_runs(params)
    # plain/ResNet at two depths + ResNet-20 B and C, per seed and setting
    assert len(runs) == 2 * 2 * 6
    assert len({r.model_dump_json() for r in runs}) == len(runs)
    assert [r.optim.milestones for r in runs[:1]] == [[8, 12]]
    deg = params.experiments(params.settings[0])["cifar_degradation"]
    assert {r.model_dump_json() for r in cifar_degradation.planned_runs(deg)} <= {r.model_dump_json() for r in runs}
    assert {r.data.image_size for r in runs} == {16, None} and {r.data.padding for r in runs} == {2, 4}


def test_two_depths_are_required():
    with pytest.raises(ValueError, match="two CIFAR depths"):
        study.Params(depths=[20, 32, 44])


def test_reproduce_runs_the_study_only_when_named_outside_smoke():
    names = reproduce.discover_experiments()
    assert "budget_study" in names
    assert "budget_study" not in reproduce.profile._select(None, names, "cpu")
    assert "budget_study" in reproduce.profile._select(None, names, "smoke")
    assert reproduce.profile._select(["budget_study"], names, "cpu") == ["budget_study"]


def test_a_setting_judges_only_the_experiments_it_names_and_may_override_precision_and_depths():
    params = study.Params(seeds=[0], settings=[
        {"iterations": 16, "image_size": 16, "experiments": ["cifar_degradation", "layer_responses"]},
        {"iterations": 16, "amp": "off", "depths": [20, 56, 110], "experiments": ["cifar_degradation"]}])
    first, second = params.settings
    assert set(params.experiments(first)) == {"cifar_degradation", "layer_responses"}
    assert {r.model.name for r in study.planned_runs(params.model_copy(update={"settings": [first]}))} == {
        "cifar_plain20", "cifar_resnet20", "cifar_plain32", "cifar_resnet32"}
    runs = study.planned_runs(params.model_copy(update={"settings": [second]}))
    assert {r.model.name for r in runs} == {f"cifar_{k}{d}" for k in ("plain", "resnet") for d in (20, 56, 110)}
    assert {r.amp for r in runs} == {"off"}
    assert second.label() == "16 it, native, fp32, depths 20/56/110"
    with pytest.raises(ValueError):
        study.Setting(iterations=16, experiments=["table9"])


def test_per_seed_rows_list_every_finished_run_with_its_cost_and_nothing_unfinished(tmp_path):
    from resnetlib.run_queue import train_queue

    params = study.Params(
        seeds=[0], depths=[8, 14], runs_dir=str(tmp_path), device="cpu",
        settings=[{"iterations": 8, "batch_size": 16, "experiments": ["cifar_degradation"]},
                  {"iterations": 16, "batch_size": 16, "experiments": ["cifar_degradation"]}],
        train={"data": {"name": "synthetic", "train_size": 64, "test_size": 32}, "optim": {"batch_size": 16},
               "log": "none"})
    assert study.per_seed_rows(params).empty
    first = params.model_copy(update={"settings": params.settings[:1]})
    done = train_queue(study.planned_runs(first), tmp_path, jobs=1, say=lambda _: None)
    assert [r.error for r in done] == [None] * 4
    rows = study.per_seed_rows(params)
    assert sorted(rows.model) == ["cifar_plain14", "cifar_plain8", "cifar_resnet14", "cifar_resnet8"]
    assert set(rows.setting) == {"8 it, native, batch 16"} and set(rows.iterations) == {8}
    assert rows.cpu_seconds.gt(0).all() and rows.thread_seconds.gt(0).all()
    assert rows.final_train_error.between(0, 100).all() and rows.finished_utc.str.match(r"\d{4}-\d\d-\d\d").all()


def test_a_setting_with_another_precision_or_a_training_subset_is_a_control():
    assert not study.Setting(iterations=3000, image_size=16).is_control()
    assert study.Setting(iterations=3000, image_size=16, amp="off").is_control()
    assert study.Setting(iterations=3000, image_size=16, train_size=10_000).is_control()


def test_settings_not_run_are_listed_with_their_reason_and_never_planned():
    stopped = {"setting": {"iterations": 30_000, "image_size": 16}, "why": "3x the 10k setting's cost: ~15 core-hours"}
    params = study.Params(seeds=[0], settings=[{"iterations": 16, "image_size": 16}], not_run=[stopped])
    table = params.not_run_table()
    assert list(table.setting) == ["30000 it, 16px"] and table.why.iloc[0].startswith("3x the 10k")
    assert {r.optim.iterations for r in study.planned_runs(params)} == {16}
    assert study.Params(seeds=[0]).not_run_table().empty
    with pytest.raises(ValueError, match="listed twice"):
        study.Params(settings=[{"iterations": 30_000, "image_size": 16}], not_run=[stopped])
    with pytest.raises(ValueError):
        study.Params(not_run=[{"setting": {"iterations": 30_000}, "why": ""}])  # a reason is required


@pytest.mark.slow
def test_a_finished_setting_is_added_to_the_committed_study_beside_the_earlier_ones(tmp_path):
    """``add_settings`` judges only the named setting from its finished runs and merges it into the
    committed tables (the earlier setting's rows kept, in the params' order); an unfinished setting is an
    error naming its runs, and nothing is written."""
    from resnetlib.run_queue import train_queue

    params = study.Params(
        seeds=[0], depths=[8, 14], runs_dir=str(tmp_path / "runs"), device="cpu",
        settings=[{"iterations": 8, "batch_size": 16, "experiments": ["cifar_degradation"]},
                  {"iterations": 16, "batch_size": 16, "experiments": ["cifar_degradation"]}],
        not_run=[{"setting": {"iterations": 48, "batch_size": 16}, "why": "three times the cost of the last one"}],
        train={"data": {"name": "synthetic", "train_size": 64, "test_size": 32}, "optim": {"batch_size": 16},
               "log": "none"})
    first, second = (params.model_copy(update={"settings": [s]}) for s in params.settings)
    folder = tmp_path / "study"
    folder.mkdir()
    with pytest.raises(RuntimeError, match="not finished"):
        study.add_settings(params, [params.settings[1].label()], folder)
    with pytest.raises(ValueError, match="no setting labelled"):
        study.add_settings(params, ["10000 it, 16px"], folder)
    assert list(folder.iterdir()) == []

    train_queue(study.planned_runs(params), tmp_path / "runs", jobs=1, say=lambda _: None)
    measured = study.measure(first)
    measured.tables["effects"].to_csv(folder / "effects.csv", index=False)
    measured.tables["costs"].drop(columns="cpu").to_csv(folder / "costs.csv", index=False)
    measured.tables["final_errors"].to_csv(folder / "final_errors.csv", index=False)
    (folder / "results.json").write_text('{"machine": {"device_name": "an older CPU"}}')

    effects = study.add_settings(params, [params.settings[1].label()], folder)
    labels = [s.label() for s in params.settings]
    assert list(dict.fromkeys(effects.setting)) == labels
    assert effects.groupby("setting").id.apply(frozenset).nunique() == 1  # the same claims at both settings
    costs = pd.read_csv(folder / "costs.csv")
    assert list(costs.setting) == labels and costs.cpu.iloc[0] == "an older CPU" and costs.core_hours.gt(0).all()
    assert set(pd.read_csv(folder / "emergence.csv").id) == set(effects.id)
    final = pd.read_csv(folder / "final_errors.csv")
    assert list(dict.fromkeys(final.setting)) == labels and "cpu" not in final.columns
    assert len(pd.read_csv(folder / "per_seed.csv")) == 2 * 4
    assert (folder / "emergence.png").stat().st_size > 0
    assert list(pd.read_csv(folder / "not_run.csv").setting) == ["48 it, native, batch 16"]
    again = study.measure(second).tables["effects"]  # judged from the same runs: the same verdicts
    assert list(again.verdict) == list(effects[effects.setting == labels[1]].verdict)


def _effect_row(setting, iterations, effect, ci, verdict, *, claim="fig6_deeper", ends_better=True, control=False):
    return {"setting": setting, "iterations": iterations, "image_size": 16, "batch_size": 128, "id": claim,
            "ref": "Fig. 6", "verdict": verdict, "effect": effect, "ci_low": ci[0], "ci_high": ci[1], "margin": 1.0,
            "reason": "own reason", "control": control, "ends_better": ends_better, "core_hours": iterations / 1e3}


def test_a_contradiction_of_an_ends_better_claim_stands_only_where_a_3x_larger_budget_replicates_it():
    """The study re-judges its own rows (``claims.budget``): 1k stands (3k replicates it, unmoved), 3k does not
    (nothing 3x larger), the fp32 control has no larger budget of its own, an equal-budget claim is untouched;
    the own test is kept and re-judging is stable."""
    effects = pd.DataFrame([
        _effect_row("1000 it, 16px", 1000, -3.0, (-3.5, -2.5), "contradicted"),
        _effect_row("3000 it, 16px", 3000, -3.2, (-3.6, -2.8), "contradicted"),
        _effect_row("3000 it, 16px, fp32", 3000, -3.1, (-3.6, -2.6), "contradicted", control=True),
        _effect_row("3000 it, 16px", 3000, -5.0, (-6.0, -4.0), "contradicted", claim="fig1", ends_better=False),
    ])
    judged = study.judged_across_budgets(effects, native_size=28)
    assert list(judged.verdict) == ["contradicted", "not measurable at this scale", "not measurable at this scale",
                                    "contradicted"]
    assert list(judged.own_verdict) == ["contradicted"] * 4 and judged.reason.iloc[0] == "own reason"
    assert judged.reason.iloc[1].startswith("not measurable at this budget: no budget >= 3x")
    assert judged.reason.iloc[1].endswith("this setting's own test: contradicted (own reason)")
    again = study.judged_across_budgets(judged, native_size=28)
    assert list(again.verdict) == list(judged.verdict) and list(again.reason) == list(judged.reason)
    moved = effects.copy()
    moved.loc[1, ["effect", "ci_low", "ci_high"]] = [-1.0, -1.8, -0.2]  # moved toward the paper by > 0.5
    assert study.judged_across_budgets(moved, native_size=28).verdict.iloc[0] == "not measurable at this scale"
    with pytest.raises(ValueError, match="no ends_better column"):
        study.judged_across_budgets(effects.drop(columns="ends_better"), native_size=28)


def _committed_study(folder):
    """A committed study of two settings (the tables ``add_settings`` writes), the costlier listed first."""
    folder.mkdir()
    labels = ["3000 it, 16px", "1000 it, 16px"]
    pd.DataFrame([_effect_row(labels[0], 3000, -3.2, (-3.6, -2.8), "contradicted"),
                  _effect_row(labels[1], 1000, -3.0, (-3.5, -2.5), "contradicted")]).to_csv(
        folder / "effects.csv", index=False)
    pd.DataFrame({"setting": labels, "runs": [4, 4], "core_hours": [1.0, 0.3], "cpu": ["CPU B", "CPU A"]}).to_csv(
        folder / "costs.csv", index=False)
    pd.DataFrame({"setting": labels, "option": "A", "depth": 20, "train_error": [8.0, 9.0]}).to_csv(
        folder / "final_errors.csv", index=False)
    pd.DataFrame({"setting": labels, "model": "cifar_resnet20", "seed": 0, "image_size": [16, None]}).to_csv(
        folder / "per_seed.csv", index=False)
    (folder / "results.json").write_text('{"dataset": "fashion_mnist", "data_source": "/data", "machine": {}}')
    return labels


def test_the_committed_study_is_read_back_without_training_in_the_params_order(tmp_path):
    labels = _committed_study(tmp_path / "study")
    settings = [{"iterations": 1000, "image_size": 16}, {"iterations": 3000, "image_size": 16}]
    params = study.Params(seeds=[0, 1, 2], settings=settings, committed=str(tmp_path / "study"),
                          runs_dir=str(tmp_path / "runs"))
    measured = study.measure(params)
    assert list(measured.tables["effects"].setting) == labels[::-1] == list(measured.tables["costs"].setting)
    assert list(measured.tables["effects"].verdict) == ["contradicted", "not measurable at this scale"]
    assert set(measured.tables["emergence"].id) == {"fig6_deeper"} and not (tmp_path / "runs").exists()
    assert measured.dataset == "fashion_mnist" and "committed tables" in measured.scale
    one = params.model_copy(update={"settings": params.settings[1:]})
    assert list(study.measure(one).tables["final_errors"].setting) == ["3000 it, 16px"]
    more = params.model_copy(update={"settings": [*params.settings, study.Setting(iterations=10_000, image_size=16)]})
    with pytest.raises(ValueError, match=r"\['10000 it, 16px'\] are not in .*--add"):
        study.measure(more)
    with pytest.raises(FileNotFoundError, match="not a committed budget study"):
        study.measure(params.model_copy(update={"committed": str(tmp_path)}))


@pytest.mark.slow
def test_the_committed_study_renders_as_html_with_every_setting_it_holds(tmp_path):
    """``--add`` re-renders the committed study's page: the notebook, executed on a copy of the reference
    tables (nothing trains), shows each of their settings; the tables it rewrites keep every row."""
    import shutil

    from resnetlib.paths import PARAMS_DIR, REPORTS_DIR

    folder = tmp_path / "budget_study"
    shutil.copytree(REPORTS_DIR / "reference" / "budget_study", folder)
    before = pd.read_csv(folder / "effects.csv")
    html = study.render_committed(PARAMS_DIR / "budget_study" / "cpu.yaml", folder).read_text()
    after = pd.read_csv(folder / "effects.csv")
    assert len(after) == len(before) and set(after.setting) == set(before.setting)
    assert all(label in html for label in before.setting.unique())
    assert "committed tables" in html and "own_verdict" in html
