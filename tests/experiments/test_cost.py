"""Training cost of the runs an experiment used: thread-seconds from the run folder, CPU seconds where the
run queue measured them (issue 20)."""

import json
import shutil

import pandas as pd

from resnetlib.experiments.cost import run_cost, runs_cost


def test_thread_seconds_are_training_seconds_times_threads_and_cpu_seconds_come_from_cost_json(tiny_run, tmp_path):
    run = shutil.copytree(tiny_run.run_dir, tmp_path / "run")
    seconds = json.loads((run / "summary.json").read_text())["train_seconds"]
    cost = run_cost(run)
    assert cost == {"run": "run", "thread_seconds": round(seconds * 1, 1), "cpu_seconds": None}  # threads=1
    (run / "cost.json").write_text(json.dumps({"cpu_seconds": 12.5}))
    assert run_cost(run)["cpu_seconds"] == 12.5


def test_runs_cost_counts_each_finished_run_once_across_tables(tiny_run, tmp_path):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    curves = pd.DataFrame({"run_dir": [str(tiny_run.run_dir)] * 3 + [str(unfinished)], "iteration": [8, 16, 24, 8]})
    other = pd.DataFrame({"run_dir": [str(tiny_run.run_dir)]})
    costs = runs_cost([curves, other, pd.DataFrame({"x": [1]}), "not a table"])
    assert [c["run"] for c in costs] == [tiny_run.run_dir.name]
