"""fit(): metrics and run folder, crash-proof resume, faults, and 2-process DDP on CPU."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from resnetlib import data as datasets
from resnetlib import models
from resnetlib.train import NonFiniteLossError, RunFolderError, cached_fit, fit, load_config
from resnetlib.train.checkpoint import CheckpointError, load_checkpoint
from resnetlib.train.schedule import learning_rate

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


@pytest.fixture
def trained(tiny_run):
    """``fit(tiny())``, trained once per session (``tiny_run`` in tests/conftest.py); read-only."""
    assert tiny_run.config == tiny()
    return tiny_run


def test_run_folder_holds_config_environment_metrics_and_summary(trained):
    result = trained
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


def test_existing_run_is_never_overwritten(tmp_path, trained):
    shutil.copytree(trained.run_dir, tmp_path / "run")
    before = (tmp_path / "run" / "metrics.csv").read_text()
    with pytest.raises(RunFolderError, match="--resume"):
        fit(tiny(), tmp_path / "run")
    assert (tmp_path / "run" / "metrics.csv").read_text() == before


def test_same_seed_same_weights_and_cache_reuses_runs(tmp_path, trained):
    a = cached_fit(tiny(), tmp_path)
    b = cached_fit(tiny(), tmp_path)  # cached: no training
    assert a.run_dir == b.run_dir
    assert [(r["iteration"], r["train_loss"], r["test_error"]) for r in a.metrics] == [
        (r["iteration"], r["train_loss"], r["test_error"]) for r in b.metrics
    ]
    c = trained  # fit(tiny()) into another folder
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


def test_resume_restores_everything_in_process(tmp_path, trained):
    full = trained
    part = fit(tiny("optim.iterations=12"), tmp_path / "part")
    # continue the 12-iteration run as the 24-iteration run: same schedule, so same result
    ck = load_checkpoint(part.run_dir / "checkpoints" / "last.pt")
    assert ck["state"]["iteration"] == 12
    resumed = fit(tiny(), tmp_path / "part", resume=True, allow_config_change=True)  # 12 -> 24 iterations
    assert "optim.iterations: 12 saved, 24 now" in (tmp_path / "part" / "config_changes.log").read_text()
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
    with pytest.raises(CheckpointError, match="corrupt or truncated.*move previous-last.pt over last.pt"):
        fit(tiny("optim.iterations=8"), tmp_path / "run", resume=True)


def test_checkpoint_of_another_model_gives_a_clear_error(tmp_path):
    fit(tiny("optim.iterations=8"), tmp_path / "run")
    with pytest.raises(CheckpointError, match="cifar_resnet8.*does not fit"):
        fit(tiny("model.name=cifar_resnet14"), tmp_path / "run", resume=True, allow_config_change=True)


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


# ------------------------------------------------------------------------------------------------ DDP
DDP_STEPS = ["optim.iterations=6", "optim.milestones=[]", "eval_every=6", "checkpoint_every=6"]


def reference_start(config):
    """(batches, net, sgd) as ``fit`` sets them up: same data, same seeded init, same optimizer."""
    d, opt = config.data, config.optim
    split = datasets.load(d.name, None, train_size=d.train_size, val_size=d.val_size, test_size=d.test_size,
                          seed=config.seed)
    batches = datasets.DeviceBatches(split.train, split.mean, opt.batch_size, config.seed, "cpu",
                                     augment=d.augment, padding=d.padding)
    torch.manual_seed(config.seed)  # as fit() does before building the model
    net = models.build(config.model.name, **config.model.build_options(split.num_classes, split.in_channels))
    net = net.to(memory_format=torch.channels_last).train()
    sgd = torch.optim.SGD(net.parameters(), lr=opt.lr, momentum=opt.momentum, weight_decay=opt.weight_decay)
    return batches, net, sgd


def reference_weights(config, world: int, ranks=None, grad_scale=None) -> dict[str, torch.Tensor]:
    """The weights after ``config``'s iterations, computed in one process the way ``world`` DDP ranks do.

    Step i: rank r runs forward/backward on its share ``batch(i, r, world)`` (BN batch statistics of that
    share only); DDP replaces every gradient by ``sum_r g_r / world`` and every rank takes the same SGD
    step; the BN running buffers are rank 0's (DDP broadcasts them from rank 0 before each forward).
    ``world=1`` is exactly ``fit``'s step. ``ranks=[0]`` (rank 0 alone, no gradient exchange) and
    ``grad_scale=1.0`` (gradients summed, not averaged) are the broken variants the test must reject.
    """
    batches, net, sgd = reference_start(config)
    ranks = range(world) if ranks is None else ranks
    grad_scale = 1.0 / world if grad_scale is None else grad_scale
    for it in range(config.optim.iterations):
        for group in sgd.param_groups:
            group["lr"] = learning_rate(it, config.optim, True)
        start = {k: v.clone() for k, v in net.named_buffers()}
        grads, rank0_buffers = [], None
        for rank in ranks:
            for k, v in net.named_buffers():
                v.copy_(start[k])
            x, y = batches.batch(it, rank, world)
            net.zero_grad(set_to_none=True)
            F.cross_entropy(net(x.contiguous(memory_format=torch.channels_last)).float(), y).backward()
            grads.append([p.grad * grad_scale for p in net.parameters()])
            rank0_buffers = rank0_buffers or {k: v.clone() for k, v in net.named_buffers()}
        for k, v in net.named_buffers():
            v.copy_(rank0_buffers[k])
        for p, *rank_grads in zip(net.parameters(), *grads):
            p.grad = sum(rank_grads[1:], rank_grads[0])
        sgd.step()
    return {k: v.detach() for k, v in net.state_dict().items()}


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].is_floating_point())


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path):
    """torchrun, 2 gloo processes on CPU, against a 1-process computation of the same global batch.

    BN statistics are per rank (as in the paper's multi-GPU runs), so the 2-process run is not the
    1-process ``fit`` of the same global batch (BN over 32 images there, 2 x 16 here): the reference is
    ``reference_weights``, a 1-process computation of the DDP step. Its ``world=1`` form is first checked
    against ``fit`` itself, bit for bit (same init, batches, lr and SGD step), so the reference is
    ``fit``'s math. The torchrun run must then match its ``world=2`` form, every weight and BN buffer,
    within rtol 1e-5 / atol 1e-6 after 6 SGD steps (bit-identical when measured). Without DDP's gradient
    averaging rank 0 would train on its own 16 images; with summed instead of averaged gradients the
    step would double: both variants land > 1e-3 away (about 4e-2 and 7e-2 measured), so this test
    fails without the DDP wrapper (the former loss-within-10% check passed without it).
    """
    config = tiny(*DDP_STEPS)
    single = final_weights(fit(config, tmp_path / "one").run_dir)
    reference_single = reference_weights(config, world=1)
    assert all(torch.equal(reference_single[k], single[k]) for k in single)

    args = [a for o in (*TINY, *DDP_STEPS) for a in ("--set", o)]
    out = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
         "-m", "resnetlib", "train", *args, "--run-dir", str(tmp_path / "two")],
        cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    two, expected = final_weights(tmp_path / "two"), reference_weights(config, world=2)
    assert two.keys() == expected.keys()
    for k in expected:
        torch.testing.assert_close(two[k], expected[k], rtol=1e-5, atol=1e-6, msg=lambda m, k=k: f"{k}: {m}")

    assert max_difference(reference_weights(config, world=2, ranks=[0], grad_scale=1.0), expected) > 1e-3
    assert max_difference(reference_weights(config, world=2, grad_scale=1.0), expected) > 1e-3
    assert max_difference(single, expected) > 1e-3  # per-rank BN: the plain 1-process fit is not the answer
