"""fit(): metrics and run folder, crash-proof resume, faults, and 2-process DDP on CPU."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from resnetlib.train import NonFiniteLossError, RunFolderError, cached_fit, fit, load_config
from resnetlib.train.checkpoint import CheckpointError, load_checkpoint

REPO = Path(__file__).resolve().parents[2]

TINY = [
    "model.name=cifar_resnet8", "data.name=synthetic", "data.train_size=256", "data.test_size=64",
    "optim.batch_size=32", "optim.iterations=24", "optim.milestones=[16]", "eval_every=8",
    "checkpoint_every=4", "eval_batch_size=64", "deterministic=true", "threads=1", "log=none", "device=cpu",
]


def tiny(*extra: str):
    return load_config(None, [*TINY, *extra])


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]


def test_run_folder_holds_config_environment_metrics_and_summary(tmp_path):
    result = fit(tiny(), tmp_path / "run")
    run = result.run_dir
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [int(r["iteration"]) for r in rows] == [8, 16, 24]
    assert set(rows[0]) >= {"lr", "train_error", "val_error", "test_error", "images_per_s", "elapsed_s"}
    assert float(rows[-1]["lr"]) == pytest.approx(0.01)
    env = json.loads((run / "environment.json").read_text())
    assert env["dataset"] == "synthetic" and env["torch"] == torch.__version__ and "commit" in env
    assert "model:" in (run / "config.yaml").read_text()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["iterations"] == 24 and 0 <= summary["final_test_error"] <= 100


def test_existing_run_is_never_overwritten(tmp_path):
    fit(tiny(), tmp_path / "run")
    before = (tmp_path / "run" / "metrics.csv").read_text()
    with pytest.raises(RunFolderError, match="--resume"):
        fit(tiny(), tmp_path / "run")
    assert (tmp_path / "run" / "metrics.csv").read_text() == before


def test_same_seed_same_weights_and_cache_reuses_runs(tmp_path):
    a = cached_fit(tiny(), tmp_path)
    b = cached_fit(tiny(), tmp_path)  # cached: no training
    assert a.run_dir == b.run_dir
    assert [(r["iteration"], r["train_loss"], r["test_error"]) for r in a.metrics] == [
        (r["iteration"], r["train_loss"], r["test_error"]) for r in b.metrics
    ]
    c = fit(tiny(), tmp_path / "again")
    for k, v in final_weights(a.run_dir).items():
        assert torch.equal(v, final_weights(c.run_dir)[k]), k
    d = cached_fit(tiny("seed=1"), tmp_path)
    assert d.run_dir != a.run_dir


def run_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "resnetlib", "train", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tmp_path):
    """A run killed with SIGKILL mid-way and resumed ends with the same weights, bit for bit."""
    overrides = [a for o in (*TINY, "optim.iterations=40", "optim.milestones=[20,30]") for a in ("--set", o)]
    reference = fit(tiny("optim.iterations=40", "optim.milestones=[20,30]"), tmp_path / "reference")

    killed = tmp_path / "killed"
    proc = run_cli(*overrides, "--run-dir", str(killed))
    ckpt = killed / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists() and load_checkpoint(ckpt)["state"]["iteration"] >= 8:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed: " + proc.stdout.read()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped_at = load_checkpoint(ckpt)["state"]["iteration"]
    assert 8 <= stopped_at < 40

    resumed = run_cli(*overrides, "--run-dir", str(killed), "--resume")
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    ref_w, res_w = final_weights(reference.run_dir), final_weights(killed)
    assert ref_w.keys() == res_w.keys()
    for k in ref_w:
        assert torch.equal(ref_w[k], res_w[k]), k
    rows = list(csv.DictReader(open(killed / "metrics.csv")))
    assert [int(r["iteration"]) for r in rows] == [8, 16, 24, 32, 40]


def test_resume_restores_everything_in_process(tmp_path):
    full = fit(tiny(), tmp_path / "full")
    part = fit(tiny("optim.iterations=12"), tmp_path / "part")
    # continue the 12-iteration run as the 24-iteration run: same schedule, so same result
    ck = load_checkpoint(part.run_dir / "checkpoints" / "last.pt")
    assert ck["state"]["iteration"] == 12
    resumed = fit(tiny(), tmp_path / "part", resume=True)
    for k, v in final_weights(full.run_dir).items():
        assert torch.equal(v, final_weights(resumed.run_dir)[k]), k


def test_nan_loss_stops_with_iteration_and_lr_and_keeps_checkpoints(tmp_path):
    cfg = tiny("optim.lr=1.0e12", "optim.warmup.mode=iterations", "optim.warmup.iterations=8", "checkpoint_every=4")
    with pytest.raises(NonFiniteLossError) as err:
        fit(cfg, tmp_path / "run")
    msg = str(err.value)
    assert "iteration" in msg and "lr 1e+12" in msg
    kept = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert kept["state"]["iteration"] == 8
    assert all(torch.isfinite(v).all() for v in kept["model"].values() if v.is_floating_point())


def test_warmup_until_error_ends_and_is_recorded(tmp_path):
    cfg = tiny("optim.warmup.mode=until_error", "optim.warmup.train_error_below=99.0", "optim.warmup.check_every=4")
    result = fit(cfg, tmp_path / "run")
    assert result.summary["warmup_end"] == 4


def test_corrupt_checkpoint_gives_a_clear_error(tmp_path):
    fit(tiny("optim.iterations=8"), tmp_path / "run")
    ck = tmp_path / "run" / "checkpoints" / "last.pt"
    ck.write_bytes(ck.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        fit(tiny(), tmp_path / "run", resume=True)


def test_checkpoint_of_another_model_gives_a_clear_error(tmp_path):
    fit(tiny("optim.iterations=8"), tmp_path / "run")
    with pytest.raises(CheckpointError, match="cifar_resnet8.*does not fit"):
        fit(tiny("model.name=cifar_resnet14"), tmp_path / "run", resume=True)


def test_resume_without_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        fit(tiny(), tmp_path / "empty", resume=True)


def test_cli_reports_config_errors_before_work(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("optim:\n  lrr: 0.1\n")
    out = subprocess.run([sys.executable, "-m", "resnetlib", "train", "--params", str(p), "--run-dir",
                          str(tmp_path / "r")], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 2 and "did you mean 'lr'" in out.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path):
    """torchrun, gloo on CPU: the global batch is split over 2 ranks; losses agree within tolerance."""
    args = [a for o in (*TINY, "optim.iterations=16", "optim.milestones=[]", "eval_every=4") for a in ("--set", o)]
    single = fit(tiny("optim.iterations=16", "optim.milestones=[]", "eval_every=4"), tmp_path / "one")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
         "-m", "resnetlib", "train", *args, "--run-dir", str(tmp_path / "two")],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=env,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    two = list(csv.DictReader(open(tmp_path / "two" / "metrics.csv")))
    assert len(two) == len(single.metrics) == 4
    for a, b in zip(single.metrics, two):
        # BN statistics are per rank (16 images instead of 32), so losses differ slightly, not wildly.
        assert float(b["train_loss"]) == pytest.approx(a["train_loss"], rel=0.1, abs=0.05)
