"""The runner (resnetlib.reproduce) on a tiny fake repository: two-cell notebooks and a small Params.

Each executed notebook starts a kernel (~2 s), so the executions are shared: one module-scoped run of
three notebooks (ok, raises, kernel dies), then a few targeted re-runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Literal

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from resnetlib import reproduce
from resnetlib.config import ConfigError
from resnetlib.experiments.base import ExperimentParams
from resnetlib.experiments.declaration import Experiment
from resnetlib.reproduce import execute, profile


class TinyParams(ExperimentParams):
    n: int = 1
    mode: Literal["ok", "raise", "die"] = "ok"


PARAMETERS = """\
profile = "smoke"
output_dir = ""
runs_dir = ""
data_root = ""
device = "auto"
force = False
n = 1
mode = "ok"
"""

BODY = """\
import json, os, pathlib
CODE_ONLY_MARKER = "this source line must not appear in the HTML"
print(f"printed output n={n} force={force}")
out = pathlib.Path(output_dir)
out.mkdir(parents=True, exist_ok=True)
claim = {"id": "tiny", "ref": "Table 6", "what": "tiny number", "ours": float(n), "paper": 8.75,
         "verdict": "not measurable at this scale", "reason": "tiny scale"}
(out / "results.json").write_text(json.dumps({
    "experiment": pathlib.Path(output_dir).name, "profile": profile, "dataset": "synthetic",
    "data_source": "synthetic", "scale": f"n={n}", "seeds": [0], "wall_seconds": 0.1, "claims": [claim]}))
"""

FAILING = """\
if mode == "raise":
    raise RuntimeError(f"asked to fail <n={n}>")
if mode == "die":
    os._exit(3)
"""

TRAINING = """\
for i in range(3):
    print(f"TRAINING LOG LINE {i} n={n}")
"""


def write_notebook(path: Path, parameters: str = PARAMETERS) -> None:
    nb = new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    nb.cells = [
        new_markdown_cell("# tiny experiment"),
        new_code_cell(parameters, metadata={"tags": ["parameters"]}),
        new_code_cell(BODY),
        new_code_cell(FAILING),
        new_code_cell(TRAINING, metadata={"tags": ["log-output"]}),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def make_repo(root: Path, params: dict[str, str], profile: str = "cpu") -> dict:
    """notebooks/NAME.ipynb and params/NAME/PROFILE.yaml for each NAME; returns run_profile's kwargs."""
    for name, yaml_text in params.items():
        write_notebook(root / "notebooks" / f"{name}.ipynb")
        (root / "params" / name).mkdir(parents=True, exist_ok=True)
        (root / "params" / name / f"{profile}.yaml").write_text(yaml_text)
    return dict(
        notebooks_dir=root / "notebooks",
        params_dir=root / "params",
        experiment_for=lambda name: Experiment(params=TinyParams),
        reports_dir=root / "reports",
        cwd=root,
        progress=False,
        environment={"git_commit": "test", "git_dirty": False, "torch": "x", "device": "cpu"},
    )


# ------------------------------------------------------------------------------------ no kernel needed
def test_discovery_order(tmp_path):
    for name in ["zeta", "detection", "alpha", "_scratch", "cifar_degradation", "architectures"]:
        (tmp_path / f"{name}.ipynb").write_text("{}")
    assert reproduce.discover_experiments(tmp_path) == [
        "architectures", "cifar_degradation", "detection", "alpha", "zeta"]


def test_every_typo_is_reported_before_anything_runs(tmp_path):
    kw = make_repo(tmp_path, {"alpha": "nn: 3\n", "beta": "n: lots\n", "gamma": "mode: ok\n"})
    with pytest.raises(ConfigError) as info:
        reproduce.run_profile("cpu", **kw)
    msg = str(info.value)
    assert "unknown parameter 'nn'; did you mean 'n'?" in msg
    assert "params" in msg and "alpha" in msg and "cpu.yaml" in msg
    assert "[beta]" in msg and "parameter 'n'" in msg and "'lots'" in msg  # wrong type names the field
    assert "[gamma]" not in msg
    assert not (tmp_path / "reports").exists()  # nothing executed, nothing written


def test_value_rejected_by_params_model(tmp_path):
    kw = make_repo(tmp_path, {"alpha": "mode: explode\n"})
    kw = {k: v for k, v in kw.items() if k in ("notebooks_dir", "params_dir", "experiment_for")}
    with pytest.raises(ConfigError, match="parameter 'mode'"):
        reproduce.validate_profile("cpu", **kw)


def test_missing_params_file_is_a_clear_error(tmp_path):
    kw = make_repo(tmp_path, {"alpha": "n: 2\n"})
    (tmp_path / "params" / "alpha" / "smoke.yaml").write_text("")
    with pytest.raises(ConfigError) as info:
        reproduce.validate_profile("paper", notebooks_dir=kw["notebooks_dir"], params_dir=kw["params_dir"],
                                   experiment_for=kw["experiment_for"])
    msg = str(info.value)
    assert "no params file for profile 'paper'" in msg and "paper.yaml is missing" in msg
    assert "cpu, smoke" in msg


def test_validate_returns_what_to_inject_and_merges_base(tmp_path):
    kw = make_repo(tmp_path, {"alpha": "n: 2\n", "beta": "{}\n"})
    (tmp_path / "params" / "alpha" / "_base.yaml").write_text("n: 5\nmode: ok\n")
    got = reproduce.validate_profile("cpu", notebooks_dir=kw["notebooks_dir"], params_dir=kw["params_dir"],
                                     experiment_for=kw["experiment_for"])
    assert got == {"alpha": {"n": 2, "mode": "ok"}, "beta": {}}
    only = reproduce.validate_profile("cpu", ["beta"], notebooks_dir=kw["notebooks_dir"],
                                      params_dir=kw["params_dir"], experiment_for=kw["experiment_for"])
    assert list(only) == ["beta"]


def test_unknown_only_name_and_runner_parameters(tmp_path):
    kw = make_repo(tmp_path, {"alpha": "output_dir: /tmp/x\nprofile: paper\n"})
    common = dict(notebooks_dir=kw["notebooks_dir"], params_dir=kw["params_dir"],
                  experiment_for=kw["experiment_for"])
    with pytest.raises(ConfigError, match="unknown experiment 'alpah'; did you mean 'alpha'"):
        reproduce.validate_profile("cpu", ["alpah"], **common)
    with pytest.raises(ConfigError) as info:
        reproduce.validate_profile("cpu", **common)
    assert "'output_dir' is set by the runner" in str(info.value)
    assert "contradicts the profile" in str(info.value)
    # a notebook that does not declare output_dir cannot be run: papermill would drop it silently
    write_notebook(tmp_path / "notebooks" / "alpha.ipynb", PARAMETERS.replace('output_dir = ""\n', ""))
    (tmp_path / "params" / "alpha" / "cpu.yaml").write_text("{}")
    with pytest.raises(ConfigError, match="does not assign 'output_dir'"):
        reproduce.validate_profile("cpu", **common)


def test_main_returns_2_on_bad_parameters(tmp_path, monkeypatch, capsys):
    kw = make_repo(tmp_path, {"alpha": "nn: 3\n"})
    monkeypatch.setattr(profile, "NOTEBOOKS_DIR", kw["notebooks_dir"])
    monkeypatch.setattr(profile, "PARAMS_DIR", kw["params_dir"])
    monkeypatch.setattr(profile, "default_experiment", kw["experiment_for"])
    parser = reproduce.add_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--reports-dir", str(tmp_path / "reports")])
    assert args.profile == "cpu" and args.only is None and args.force is False
    assert reproduce.main(args) == 2
    assert "did you mean 'n'" in capsys.readouterr().err
    assert reproduce.main(parser.parse_args(["--list"])) == 0
    assert "alpha" in capsys.readouterr().out


# ------------------------------------------------------------------------------------ executions
@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("repo")
    kw = make_repo(root, {"alpha": "n: 2\n", "beta": "mode: raise\nn: 3\n", "gamma": "mode: die\n"})
    outcomes = reproduce.run_profile("cpu", **kw)
    return root, kw, outcomes


def test_failing_notebooks_do_not_stop_the_others(first_run):
    root, _, outcomes = first_run
    prof = root / "reports" / "cpu"
    statuses = [(o.name, o.status) for o in outcomes]
    assert statuses == [("alpha", "ok"), ("beta", "failed"), ("gamma", "failed")]
    alpha, beta, gamma = outcomes
    assert alpha.ok and not beta.ok and not gamma.ok
    assert json.loads((prof / "alpha" / "results.json").read_text())["claims"][0]["ours"] == 2.0
    assert Path(alpha.notebook) == prof / "alpha.ipynb" and Path(alpha.html) == prof / "alpha.html"
    # the exception, where it happened, and the executed notebook kept for inspection
    assert beta.ename == "RuntimeError" and "asked to fail <n=3>" in beta.evalue
    assert beta.cell_index == 4 and beta.execution_count == 4  # 0 markdown, 1 parameters, 2 injected, 3, 4
    assert Path(beta.notebook) == prof / "beta.failed.ipynb" and Path(beta.notebook).is_file()
    assert (prof / "beta.failed" / "results.json").is_file() and not (prof / "beta").exists()
    assert gamma.ename == "DeadKernelError" and gamma.cell_index == 4
    assert "Execution failed" in (prof / "gamma.failed.html").read_text()


def test_parameters_are_injected(first_run):
    root, _, _ = first_run
    nb = nbformat.read(root / "reports" / "cpu" / "alpha.ipynb", as_version=4)
    injected = nb.metadata.papermill.parameters
    out_dir = str((root / "reports" / "cpu" / "alpha").resolve())
    assert injected == {"n": 2, "profile": "cpu", "output_dir": out_dir}
    assert Path(injected["output_dir"]).is_absolute()


def test_html_hides_code_and_shows_outputs_and_errors(first_run):
    prof = first_run[0] / "reports" / "cpu"
    page = (prof / "alpha.html").read_text()
    assert "printed output n=2 force=False" in page
    assert "CODE_ONLY_MARKER" not in page and "must not appear" not in page
    failed = (prof / "beta.failed.html").read_text()
    assert "RuntimeError" in failed and "asked to fail" in failed
    assert "CODE_ONLY_MARKER" not in failed


def test_training_log_is_kept_out_of_the_page_and_linked(first_run):
    prof = first_run[0] / "reports" / "cpu"
    page = (prof / "alpha.html").read_text()
    assert "TRAINING LOG LINE" not in page
    assert 'href="alpha.training-log.txt"' in page
    assert (prof / "alpha.training-log.txt").read_text().count("TRAINING LOG LINE") == 3


def test_index_marks_failures(first_run):
    prof = first_run[0] / "reports" / "cpu"
    summary = json.loads((prof / "index.json").read_text())
    assert summary["failed_notebooks"] == ["beta", "gamma"]
    assert summary["counts"]["not measurable at this scale"] == 1 and summary["counts"]["failed"] == 2
    page = (prof / "index.html").read_text()
    assert "RuntimeError: asked to fail &lt;n=3&gt; at cell 4 (In [4])" in page
    assert str(prof / "beta.failed.ipynb") in page
    assert 'href="alpha.html"' in page and 'href="beta.failed.html"' in page


def test_failed_rerun_keeps_the_previous_good_result_and_success_cleans_up(first_run):
    root, kw, _ = first_run
    prof = root / "reports" / "cpu"
    good = {p: (prof / p).read_bytes() for p in ["alpha.ipynb", "alpha.html", "alpha/results.json"]}
    params = root / "params" / "alpha" / "cpu.yaml"
    params.write_text("n: 7\nmode: raise\n")

    (alpha,) = reproduce.run_profile("cpu", only=["alpha"], **kw)
    assert alpha.status == "failed" and "n=7" in alpha.evalue
    assert {p: (prof / p).read_bytes() for p in good} == good  # the earlier good run is untouched
    assert (prof / "alpha.failed.ipynb").is_file() and (prof / "alpha.failed.html").is_file()
    assert alpha.previous_kept == str(prof / "alpha.html")
    assert not list(prof.glob(".alpha*"))  # no temporary leftovers
    summary = json.loads((prof / "index.json").read_text())
    entries = {e["name"]: e for e in summary["experiments"]}
    assert [e["name"] for e in summary["experiments"]] == ["alpha", "beta", "gamma"]  # others carried over
    assert entries["alpha"]["status"] == "failed" and not entries["alpha"]["carried_over"]
    assert entries["beta"]["carried_over"] and entries["beta"]["status"] == "failed"
    assert "previous successful output kept" in (prof / "index.html").read_text()

    params.write_text("n: 8\n")
    (alpha,) = reproduce.run_profile("cpu", only=["alpha"], force=True, **kw)
    assert alpha.ok
    assert json.loads((prof / "alpha" / "results.json").read_text())["claims"][0]["ours"] == 8.0
    assert "printed output n=8 force=True" in (prof / "alpha.html").read_text()
    assert not (prof / "alpha.failed.ipynb").exists() and not (prof / "alpha.failed").exists()
    assert not list(prof.glob(".alpha*"))


def _earlier_good_result(prof: Path) -> dict[str, bytes]:
    (prof / "alpha").mkdir(parents=True)
    (prof / "alpha" / "results.json").write_text('{"old": true}')
    (prof / "alpha.ipynb").write_text("old notebook")
    (prof / "alpha.html").write_text("old page")
    return {p: (prof / p).read_bytes() for p in ["alpha/results.json", "alpha.ipynb", "alpha.html"]}


def test_ctrl_c_puts_the_previous_result_back(tmp_path, monkeypatch):
    kw = make_repo(tmp_path, {"alpha": "n: 2\n"})
    prof = tmp_path / "reports" / "cpu"
    good = _earlier_good_result(prof)

    def interrupted(notebook, slot, parameters, run):
        (slot.out_dir / "results.json").write_text("half written")
        slot.running.write_text("half a notebook")
        raise KeyboardInterrupt

    monkeypatch.setattr(execute, "_execute", interrupted)
    with pytest.raises(KeyboardInterrupt):
        reproduce.run_profile("cpu", **kw)
    assert {p: (prof / p).read_bytes() for p in good} == good
    assert not list(prof.glob(".alpha*"))


def test_a_killed_run_is_repaired_by_the_next_run(tmp_path, monkeypatch):
    kw = make_repo(tmp_path, {"alpha": "n: 2\n"})
    prof = tmp_path / "reports" / "cpu"
    good = _earlier_good_result(prof)
    # what a run killed mid-notebook leaves: the good output set aside, a partial one, a partial notebook
    (prof / "alpha").rename(prof / ".alpha.previous")
    (prof / "alpha").mkdir()
    (prof / "alpha" / "partial.csv").write_text("x")
    (prof / ".alpha.running.ipynb").write_text("partial")

    def kernel_died(notebook, slot, parameters, run):
        assert (slot.previous / "results.json").read_text() == '{"old": true}'  # repaired, then set aside
        assert not (slot.out_dir / "partial.csv").exists()
        return {"ename": "DeadKernelError", "evalue": "killed", "cell_index": None, "execution_count": None,
                "banner": True}

    monkeypatch.setattr(execute, "_execute", kernel_died)
    (alpha,) = reproduce.run_profile("cpu", **kw)
    assert alpha.status == "failed" and alpha.previous_kept == str(prof / "alpha.html")
    assert {p: (prof / p).read_bytes() for p in good} == good
    assert "Execution failed" in (prof / "alpha.failed.html").read_text()
    assert not list(prof.glob(".alpha*"))


def test_main_exits_nonzero_when_a_notebook_fails(tmp_path, monkeypatch):
    kw = make_repo(tmp_path, {"alpha": "mode: raise\n"})
    monkeypatch.setattr(profile, "NOTEBOOKS_DIR", kw["notebooks_dir"])
    monkeypatch.setattr(profile, "PARAMS_DIR", kw["params_dir"])
    monkeypatch.setattr(profile, "default_experiment", kw["experiment_for"])
    monkeypatch.setattr(profile, "REPO_ROOT", tmp_path)
    monkeypatch.setattr("resnetlib.reproduce.index.git_state", lambda repo=None: {"commit": "t", "dirty": False})
    args = reproduce.add_arguments(argparse.ArgumentParser()).parse_args(
        ["--profile", "cpu", "--reports-dir", str(tmp_path / "reports")])
    assert reproduce.main(args) == 1
    assert (tmp_path / "reports" / "cpu" / "alpha.failed.html").is_file()


# ------------------------------------------------------------------------------------ --set, --data, --plan
def test_set_is_recorded_in_results_and_the_index_header(tmp_path):
    kw = make_repo(tmp_path, {"alpha": "n: 2\n"})
    (alpha,) = reproduce.run_profile("cpu", set_items=["n=5"], **kw)
    assert alpha.ok and alpha.overrides == ["n=5"]
    results = json.loads((tmp_path / "reports" / "cpu" / "alpha" / "results.json").read_text())
    assert results["claims"][0]["ours"] == 5.0 and results["overrides"] == ["n=5"]
    index = tmp_path / "reports" / "cpu" / "index"
    assert json.loads(index.with_suffix(".json").read_text())["overrides"] == {"n=5": ["alpha"]}
    assert "<code>n=5 (alpha)</code>" in index.with_suffix(".html").read_text()


def _cli(tmp_path, monkeypatch, kw, experiment_for=None):
    monkeypatch.setattr(profile, "NOTEBOOKS_DIR", kw["notebooks_dir"])
    monkeypatch.setattr(profile, "PARAMS_DIR", kw["params_dir"])
    monkeypatch.setattr(profile, "default_experiment", experiment_for or kw["experiment_for"])
    return reproduce.add_arguments(argparse.ArgumentParser())


def test_a_missing_data_root_stops_the_run_before_anything_runs(tmp_path, monkeypatch, capsys):
    kw = make_repo(tmp_path, {"alpha": "n: 2\n", "beta": "n: 3\n"})
    reads_cifar = lambda name: Experiment(params=TinyParams, data_set=lambda p: "cifar10")  # noqa: E731
    parser = _cli(tmp_path, monkeypatch, kw, reads_cifar)
    args = parser.parse_args(["--data", f"cifar10={tmp_path / 'none'}", "--reports-dir", str(tmp_path / "r")])
    assert reproduce.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "CIFAR-10 not found" in err and "(alpha, beta read it)" in err
    assert not (tmp_path / "r").exists()


def test_plan_prints_and_runs_nothing(tmp_path, monkeypatch, capsys):
    kw = make_repo(tmp_path, {"alpha": "n: 2\n"})
    parser = _cli(tmp_path, monkeypatch, kw)
    assert reproduce.main(parser.parse_args(["--plan", "--set", "n=4", "--jobs", "auto"])) == 0
    out = capsys.readouterr().out
    assert "plan: profile 'cpu', 1 experiment(s)" in out and "alpha  [no data set on disk]  --set n=4" in out
    assert not (tmp_path / "reports").exists()
