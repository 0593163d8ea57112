"""``resnetlib reproduce --jobs N``: the run queue trains distinct configurations in separate processes at
once, and the run cache stays consistent (one folder per configuration, each complete, reused after)."""

import json
from pathlib import Path

import pytest

from resnetlib import reproduce
from resnetlib.run_queue import threads_per_job, train_queue, unique_runs
from resnetlib.train import TrainConfig, cached_fit


def tiny(seed: int) -> TrainConfig:
    """A few seconds of cifar_resnet8 on synthetic data (long enough for two workers to overlap)."""
    return TrainConfig.model_validate({
        "model": {"name": "cifar_resnet8"}, "seed": seed, "device": "cpu", "log": "none",
        "data": {"name": "synthetic", "train_size": 256, "test_size": 32},
        "optim": {"batch_size": 32, "iterations": 60, "milestones": [30]}, "eval_every": 20,
    })


def test_threads_per_job_splits_the_cores_on_a_cpu():
    assert threads_per_job(2, "cpu", cores=16) == 8
    assert threads_per_job(8, "cpu", cores=2) == 1
    assert threads_per_job(4, "cuda", cores=16) == 1


def test_duplicates_are_trained_once(tmp_path):
    runs = unique_runs([tiny(0), tiny(1), tiny(0).model_copy(update={"threads": 3})], tmp_path)
    assert len(runs) == 2  # threads is presentation-only: the same run


@pytest.mark.slow
def test_two_jobs_train_two_runs_at_once_with_consistent_cache(tmp_path):
    done = train_queue([tiny(0), tiny(1), tiny(0)], tmp_path, jobs=2, say=lambda _: None)
    assert [d.error for d in done] == [None, None]
    assert len({d.pid for d in done}) == 2
    first, second = sorted(done, key=lambda d: d.started)
    assert second.started < first.ended  # they overlapped
    folders = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert [p.name for p in folders] == sorted(Path(d.run_dir).name for d in done)
    assert all((p / "summary.json").exists() for p in folders)
    stamp = (folders[0] / "summary.json").stat().st_mtime_ns
    result = cached_fit(tiny(0), tmp_path)  # the cache reuses, never retrains
    assert result.run_dir in folders and (folders[0] / "summary.json").stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_reproduce_jobs_2_notebooks_reuse_the_queued_runs(tmp_path, monkeypatch):
    runs_dir = tmp_path / "runs"
    monkeypatch.setenv("RESNETLIB_RUNS_DIR", str(runs_dir))
    outcomes = reproduce.run_profile("smoke", only=["cifar_degradation", "layer_responses"], jobs=2,
                                     reports_dir=tmp_path / "reports", progress=False)
    assert [o.status for o in outcomes] == ["ok", "ok"]
    folders = sorted(p.name for p in runs_dir.iterdir() if p.is_dir())
    assert len(folders) == 4  # plain/resnet x 20/32, shared by both notebooks, no duplicate
    assert all((runs_dir / f / "summary.json").exists() for f in folders)
    used = json.loads((tmp_path / "reports" / "smoke" / "cifar_degradation" / "results.json").read_text())
    assert used["claims"]


def test_cost_file_adds_up_resumed_sessions(tmp_path):
    from resnetlib import run_queue

    run_queue.add_cost(tmp_path, wall_s=10.0, cpu_s=9.5, threads=1)
    run_queue.add_cost(tmp_path, wall_s=5.0, cpu_s=4.0, threads=1)
    cost = json.loads((tmp_path / run_queue.COST_FILE).read_text())
    assert (cost["wall_seconds"], cost["cpu_seconds"], cost["sessions"], cost["threads"]) == (15.0, 13.5, 2, 1)
