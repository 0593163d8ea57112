"""Issue 23: the run queue's launchers (local pool, SLURM through submitit), the cross-host lease on a run
folder, the ``--plan`` listing and the resubmission of a killed job, without a cluster: submitit's
LocalExecutor runs the jobs as local processes through the same code path as SLURM."""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from resnetlib.config import ConfigError
from resnetlib.launchers import (LocalLauncher, SlurmLauncher, SlurmResources, add_launcher_arguments,
                                 format_plan, launch, launcher_from_args, plan)
from resnetlib.launchers.lease import Lease, LeaseHeldError, lease_path
from resnetlib.launchers.slurm import group_runs, job_parameters, time_limit_minutes, torchrun_command
from resnetlib.run_queue import unique_runs
from resnetlib.train import TrainConfig, cached_fit, load_config
from resnetlib.train.checkpoint import load_checkpoint

#: conftest's TINY_TRAINING, longer (40 iterations, a checkpoint every 4) so a job can be killed half-way.
KILLABLE = ("model.name=cifar_resnet8", "data.name=synthetic", "data.train_size=256", "data.test_size=64",
            "optim.batch_size=32", "optim.iterations=40", "optim.milestones=[20,30]", "eval_every=8",
            "checkpoint_every=4", "eval_batch_size=64", "deterministic=true", "threads=1", "log=none",
            "device=cpu")


def tiny(seed: int = 0, iterations: int = 8) -> TrainConfig:
    """cifar_resnet8 on synthetic data, a second or two on one thread."""
    return load_config(None, [*KILLABLE, f"seed={seed}", f"optim.iterations={iterations}",
                              f"optim.milestones=[{iterations // 2}]", f"eval_every={iterations}"])


def local_slurm(tmp_path: Path, **resources) -> SlurmLauncher:
    """The SLURM launcher with submitit's LocalExecutor: jobs are processes of this host."""
    return SlurmLauncher(cluster="local", folder=str(tmp_path / "jobs"), poll_seconds=0.2, lease_beat=0.5,
                         lease_stale_after=5.0,
                         resources=SlurmResources(cpus_per_task=1, time_limit="00:10:00", **resources))


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1)
    return add_launcher_arguments(parser).parse_args(list(argv))


# --------------------------------------------------------------------------------------------- lease
def test_a_held_lease_refuses_a_second_holder_naming_host_and_pid(tmp_path):
    path = lease_path(tmp_path / "run")
    with Lease(path, beat=1, stale_after=60):
        with pytest.raises(LeaseHeldError, match=f"host {socket.gethostname()}, pid {os.getpid()}"):
            with Lease(path, beat=1, stale_after=60, wait=False):
                pass
    assert not path.exists()  # released
    with Lease(path, beat=1, stale_after=60, wait=False):  # and free again
        pass


def test_a_lease_without_heartbeat_is_broken_and_a_live_one_is_not(tmp_path):
    path = tmp_path / "run.lease"
    other_host = {"host": "node-that-died", "pid": 1, "job": "991", "token": "t0", "since": 0}
    path.write_text(json.dumps(other_host))
    with pytest.raises(LeaseHeldError, match="host node-that-died, pid 1, SLURM job 991"):
        Lease(path, beat=1, stale_after=60, wait=False).__enter__()  # heartbeat 0 s old: live
    old = time.time() - 120
    os.utime(path, (old, old))
    with Lease(path, beat=1, stale_after=60, wait=False) as lease:  # 120 s without heartbeat: stale
        assert json.loads(path.read_text())["token"] == lease.token


def test_a_lease_of_a_dead_process_on_this_host_is_broken_at_once(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True)
    path = tmp_path / "run.lease"
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead.stdout), "token": "t0"}))
    with Lease(path, beat=1, stale_after=3600, wait=False):
        pass


def test_the_heartbeat_keeps_a_lease_fresh_and_notices_when_it_is_taken(tmp_path):
    path, lost = tmp_path / "run.lease", threading.Event()
    with Lease(path, beat=0.1, stale_after=5, on_lost=lambda p: lost.set()):
        old = time.time() - 100
        os.utime(path, (old, old))
        time.sleep(0.4)
        assert time.time() - path.stat().st_mtime < 5  # touched again
        path.write_text(json.dumps({"host": "elsewhere", "pid": 7, "token": "thief"}))
        assert lost.wait(2)
    assert json.loads(path.read_text())["token"] == "thief"  # never removes a lease that is not its own


# ------------------------------------------------------------------------------------------ config and plan
def test_flags_build_a_validated_launcher_and_bad_values_are_one_line():
    assert launcher_from_args(parse("--jobs", "3")) == LocalLauncher(jobs=3)
    slurm = launcher_from_args(parse("--launcher", "slurm", "--slurm-partition", "gpu", "--slurm-time",
                                     "2-00:00:00", "--slurm-runs-per-gpu", "4"))
    assert (slurm.resources.partition, slurm.resources.runs_per_gpu) == ("gpu", 4)
    assert time_limit_minutes(slurm.resources.time_limit) == 2880
    with pytest.raises(ConfigError, match="resources.time_limit.*not a SLURM time"):
        launcher_from_args(parse("--launcher", "slurm", "--slurm-time", "25h"))
    with pytest.raises(ConfigError, match="need --launcher slurm"):
        launcher_from_args(parse("--slurm-partition", "gpu"))


def test_a_slurm_config_file_is_validated_and_flags_override_it(tmp_path):
    (tmp_path / "slurm.yaml").write_text("partition: a100\ngpus_per_run: 1\ncpus_per_task: 4\n")
    slurm = launcher_from_args(parse("--launcher", "slurm", "--slurm-config", str(tmp_path / "slurm.yaml"),
                                     "--slurm-cpus-per-task", "6"))
    assert (slurm.resources.partition, slurm.resources.cpus_per_task) == ("a100", 6)
    (tmp_path / "bad.yaml").write_text("partiton: a100\n")
    with pytest.raises(ConfigError, match="did you mean 'partition'"):
        launcher_from_args(parse("--launcher", "slurm", "--slurm-config", str(tmp_path / "bad.yaml")))


def test_plan_packs_one_gpu_runs_and_estimates_hours(tmp_path):
    configs = [tiny(seed).model_copy(update={"device": "auto"}) for seed in range(5)]
    runs = unique_runs(configs, tmp_path)
    resources = SlurmResources(partition="gpu", runs_per_gpu=2, time_limit="01:00:00", cpus_per_task=4)
    assert [len(g) for g in group_runs(runs, resources)] == [2, 2, 1]  # device auto: a GPU run
    launcher = SlurmLauncher(resources=resources)
    jobs = plan(configs, tmp_path, launcher, images_per_second=32 * 8 / 3600 / 1.5)  # 1.5 h per run
    assert all(j.hours == 1.5 and j.segments == 2 and j.partition == "gpu" for j in jobs)
    text = format_plan(jobs, max_resubmissions=0)
    assert text.splitlines()[0].startswith(Path(runs[0][0]).name) and "2 segments of 01:00:00" in text
    assert "warning: " in text and f"{len(jobs)} job(s)" in text


def test_plan_works_on_a_login_node_without_the_runs_device(tmp_path, monkeypatch):
    """device: cuda where torch sees none: launch refuses in one line, the plan still lists every run once."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    configs = [tiny(seed).model_copy(update={"device": "cuda"}) for seed in (0, 1, 0)]
    jobs = plan(configs, tmp_path, SlurmLauncher())
    assert [j.name.split("-unresolved-")[0] for j in jobs] == ["cifar_resnet8-s0", "cifar_resnet8-s1"]
    assert all(j.gpus == 1 for j in jobs)
    with pytest.raises(ConfigError, match="cannot name the run folders here .*srun --gres=gpu:1"):
        launch(configs, tmp_path, SlurmLauncher())


def test_job_parameters_and_the_torchrun_command_of_a_multi_gpu_run(tmp_path):
    folder_run = TrainConfig.model_validate({"model": {"name": "resnet18"}, "device": "cuda",
                                             "data": {"name": "imagefolder", "root": "/data/imagenet"}})
    resources = SlurmResources(partition="gpu", imagenet_gpus_per_run=8, cpus_per_task=32, mem_gb=200,
                               qos="long")
    params = job_parameters([(tmp_path / "resnet18-s0-abc", folder_run)], resources)
    assert params == {"name": "resnet18-s0-abc", "timeout_min": 1440, "gpus_per_node": 8, "cpus_per_task": 32,
                      "tasks_per_node": 1, "nodes": 1, "mem_gb": 200, "slurm_partition": "gpu",
                      "slurm_qos": "long"}
    run = str(tmp_path / "run")
    command = torchrun_command("/tmp/c.yaml", run, 8, resume=True)
    assert command[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=8", "-m",
                           "resnetlib", "train", "--params", "/tmp/c.yaml", "--run-dir", run, "--resume"]


# ----------------------------------------------------------------------------------------- through submitit
@pytest.mark.slow
def test_local_launcher_is_the_process_pool(tmp_path):
    done = launch([tiny(0), tiny(0)], tmp_path / "runs", LocalLauncher(jobs=1), say=lambda _: None)
    assert len(done) == 1 and done[0].error is None
    assert (Path(done[0].run_dir) / "summary.json").is_file()


@pytest.mark.slow
def test_slurm_launcher_trains_the_planned_runs_as_jobs_into_the_cache(tmp_path):
    lines: list[str] = []
    runs_dir = tmp_path / "runs"
    done = launch([tiny(0), tiny(1), tiny(0)], runs_dir, local_slurm(tmp_path), say=lines.append)
    assert [d.error for d in done] == [None, None]
    assert [Path(d.run_dir) for d in done] == [d for d, _ in unique_runs([tiny(0), tiny(1)], runs_dir)]
    assert all(d.pid != os.getpid() for d in done)  # trained in the jobs' processes
    assert lines[-1] == "slurm: 2/2 done, 0 running, 0 failed, 0 queued"
    assert not list(runs_dir.glob("*.lease"))  # every lease released
    stamp = (Path(done[0].run_dir) / "summary.json").stat().st_mtime_ns
    assert cached_fit(tiny(0), runs_dir).run_dir == Path(done[0].run_dir)  # the notebooks find the run
    assert (Path(done[0].run_dir) / "summary.json").stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_a_killed_job_is_resubmitted_and_resumes_to_bit_identical_weights(tmp_path):
    config = load_config(None, list(KILLABLE))
    reference = cached_fit(config, tmp_path / "reference")
    runs_dir, killed = tmp_path / "runs", []
    (run_dir, _), = unique_runs([config], runs_dir)

    def kill_after_first_checkpoints(active):
        """While the first job trains: SIGKILL its process (named by the lease) once iteration 8 is saved."""
        checkpoint, lease = run_dir / "checkpoints" / "last.pt", lease_path(run_dir)
        if killed or not (checkpoint.exists() and lease.exists()):
            return
        if load_checkpoint(checkpoint)["state"]["iteration"] >= 8:
            pid = json.loads(lease.read_text())["pid"]
            os.kill(pid, signal.SIGKILL)
            killed.append(load_checkpoint(checkpoint)["state"]["iteration"])

    lines: list[str] = []
    launcher = local_slurm(tmp_path, max_resubmissions=1)
    from resnetlib.launchers.slurm import submit_and_wait

    done = submit_and_wait([(run_dir, config)], runs_dir, launcher, force=True, say=lines.append,
                           on_poll=kill_after_first_checkpoints)  # force: the first job only
    assert killed and 8 <= killed[0] < 40, "the job finished before it could be killed"
    assert done[0].error is None, done[0].error
    assert any("failed (job " in line and "resubmitting (1/1)" in line for line in lines), lines
    assert not list(runs_dir.glob("*.replaced-*"))  # the resubmission did not force: it kept the checkpoint
    final = load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]
    expected = load_checkpoint(reference.run_dir / "checkpoints" / "last.pt")["model"]
    assert final.keys() == expected.keys()
    assert all(torch.equal(final[k], expected[k]) for k in final)
    rows = (run_dir / "metrics.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [8, 16, 24, 32, 40]  # resumed (fit refuses to restart a
    # folder that holds a run), with the killed job's evaluations kept


def test_a_requeued_job_never_forces_a_retrain():
    """SLURM's time-limit signal requeues through ``TrainJob.checkpoint``: with force, the requeued job would
    move the checkpoint it should resume from aside."""
    from resnetlib.launchers.slurm import TrainJob

    job = TrainJob()
    lease = {"stale_after": 300.0, "beat": 30.0}
    requeued = job.checkpoint([{"run_dir": "r"}], True, lease)
    assert requeued.function is job and requeued.args == ([{"run_dir": "r"}], False, lease)


@pytest.mark.slow
def test_the_smoke_profiles_planned_runs_train_through_submitit_and_the_notebook_reuses_them(tmp_path):
    """cifar_degradation's smoke planned runs (depth 20 only: 2 jobs, about 50 s on 2 busy cores; all 4 took
    about 110 s) as jobs of the local executor; the notebook's ``train_all`` then trains nothing."""
    from resnetlib.config import load_yaml, validate
    from resnetlib.experiments import cifar_degradation
    from resnetlib.paths import PARAMS_DIR

    smoke = load_yaml(PARAMS_DIR / "cifar_degradation" / "smoke.yaml")
    params = validate(cifar_degradation.Params, {**smoke, "depths": [20], "profile": "smoke",
                                                 "runs_dir": str(tmp_path / "runs")})
    done = launch(cifar_degradation.planned_runs(params), params.runs_path(), local_slurm(tmp_path),
                  say=lambda _: None)
    assert len(done) == 2 and [d.error for d in done] == [None, None]
    stamps = {d.run_dir: (Path(d.run_dir) / "summary.json").stat().st_mtime_ns for d in done}
    curves = cifar_degradation.train_all(params)
    assert set(curves.run_dir.astype(str)) == set(stamps)
    assert stamps == {d: (Path(d) / "summary.json").stat().st_mtime_ns for d in stamps}  # reused, not trained
