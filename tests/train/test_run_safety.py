"""Issue 11: run folders that cannot be poisoned or mixed, and one-line errors for every bad input.

One test (or table) per defect of the issue: 1. a divergence never saves a non-finite state and the kept
checkpoints resume at a lower lr; 2. config.yaml is the truth on resume; 3. the folder lock; 4. every bad
input is one line with the right exit status; 6. temporaries are unique and cleaned. (5, notebook
parameters, is tests/experiments/test_notebook_parameters.py.)
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from resnetlib import cli
from resnetlib.config import ConfigError
from resnetlib.train import NonFiniteLossError, fit, load_config
from resnetlib.train import loop as loop_module
from resnetlib.train.checkpoint import load_checkpoint, nonfinite_tensors, temporary_name
from resnetlib.train.lock import RunLock, RunLockedError
from resnetlib.train.run_folder import ConfigMismatchError

from .test_loop import REPO, TINY, tiny


def kept_checkpoints(run_dir: Path) -> list[dict]:
    return [load_checkpoint(p) for p in sorted((run_dir / "checkpoints").glob("*.pt"))]


def assert_finite(payloads: list[dict]) -> None:
    assert payloads, "no checkpoint was kept"
    for payload in payloads:
        assert nonfinite_tensors({"model": payload["model"], "optimizer": payload["optimizer"]}) == []


# ------------------------------------------------------------------------------- 1. NaN never saved
def test_divergence_keeps_two_finite_checkpoints_that_resume_at_a_lower_lr(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(NonFiniteLossError) as err:
        fit(tiny("optim.lr=1000.0", "optim.milestones=[]", "checkpoint_every=2"), run)
    message = str(err.value)
    assert "at iteration" in message and "(lr 1000)" in message and "--allow-config-change" in message
    kept = kept_checkpoints(run)
    assert len(kept) == 2 and kept[0]["state"]["iteration"] != kept[1]["state"]["iteration"]
    assert_finite(kept)
    resumed = fit(tiny("optim.lr=0.0001", "optim.milestones=[]", "checkpoint_every=2"), run, resume=True,
                  allow_config_change=True)
    assert resumed.summary["iterations"] == 24
    assert_finite(kept_checkpoints(run))
    assert "optim.lr: 1000.0 saved, 0.0001 now" in (run / "config_changes.log").read_text()
    assert "lr: 0.0001" in (run / "config.yaml").read_text()


def test_a_nonfinite_state_with_a_finite_loss_is_not_saved(tmp_path, monkeypatch):
    """NaN in a BN running variance leaves the training loss finite: the state check catches it."""
    build = loop_module.build_model

    def poisoned(*args):
        net = build(*args)
        calls = []

        def poison(module, inputs):
            calls.append(1)
            if len(calls) == 6:  # before the forward of iteration 5, after the checkpoint at 4
                module.bn1.running_var.fill_(float("nan"))

        net.register_forward_pre_hook(poison)
        return net

    monkeypatch.setattr(loop_module, "build_model", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"bn1.running_var\) became NaN or infinite at iteration 7"):
        fit(tiny(), tmp_path / "run")
    kept = kept_checkpoints(tmp_path / "run")
    assert [k["state"]["iteration"] for k in kept] == [4]
    assert_finite(kept)


# ----------------------------------------------------------------------------- 2. config.yaml is the truth
def test_resume_with_another_result_changing_setting_is_refused_naming_the_field(tmp_path):
    fit(tiny("optim.iterations=8"), tmp_path / "run")
    before = (tmp_path / "run" / "config.yaml").read_text()
    with pytest.raises(ConfigMismatchError, match=r"optim\.lr: 0\.1 saved, 0\.05 now"):
        fit(tiny("optim.iterations=8", "optim.lr=0.05"), tmp_path / "run", resume=True)
    assert (tmp_path / "run" / "config.yaml").read_text() == before
    # presentation-only settings may change freely
    fit(tiny("optim.iterations=8", "log=lines", "threads=2"), tmp_path / "run", resume=True)
    assert not (tmp_path / "run" / "config_changes.log").exists()


def test_cli_resume_without_params_uses_the_folders_config(tmp_path):
    """A Fashion-MNIST-like non-default run (here: synthetic data) resumes from its config.yaml alone."""
    run = tmp_path / "run"
    sets = [a for o in (*TINY, "optim.iterations=8") for a in ("--set", o)]
    assert cli.main(["train", *sets, "--run-dir", str(run)]) == 0
    assert cli.main(["train", "--resume", "--run-dir", str(run)]) == 0
    assert cli.main(["train", "--resume", "--run-dir", str(run), "--set", "seed=3"]) == 2


# ------------------------------------------------------------------------------------------- 3. lock
def hold_lock(run_dir: Path) -> subprocess.Popen:
    """A process that takes the folder's lock and keeps it until killed."""
    code = (f"from resnetlib.train.lock import RunLock\nimport time\nwith RunLock({str(run_dir)!r}):\n"
            "    print('locked', flush=True)\n    time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_lock_refuses_a_second_process_naming_it_and_waits_when_asked(tmp_path):
    holder = hold_lock(tmp_path / "run")
    try:
        with pytest.raises(RunLockedError, match=f"in use by process {holder.pid}") as err:
            with RunLock(tmp_path / "run"):
                pass
        assert err.value.pid == holder.pid
    finally:
        holder.kill()
        holder.wait()
    with RunLock(tmp_path / "run", wait=True), RunLock(tmp_path / "run"):  # free again; re-entrant
        assert (tmp_path / "run" / ".lock").read_text().strip() == str(os.getpid())


def train_cli(run_dir: Path, *sets: str) -> subprocess.Popen:
    args = [a for o in (*TINY, *sets) for a in ("--set", o)]
    return subprocess.Popen([sys.executable, "-m", "resnetlib", "train", *args, "--run-dir", str(run_dir)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_processes_on_one_folder_leave_one_consistent_run_and_one_refusal(tmp_path):
    run = tmp_path / "run"
    first = train_cli(run, "optim.iterations=800", "eval_every=200", "checkpoint_every=100", "seed=1")
    deadline = time.time() + 120
    while not (run / ".lock").is_file() or (run / ".lock").read_text().strip() != str(first.pid):
        assert time.time() < deadline and first.poll() is None, first.communicate()
        time.sleep(0.05)
    second = train_cli(run, "optim.iterations=8", "seed=2")
    out2, err2 = second.communicate(timeout=300)
    assert first.poll() is None, "the first run ended before the second started: make it longer"
    out1, err1 = first.communicate(timeout=600)
    assert first.returncode == 0, err1
    assert second.returncode == 1 and err2.count("\n") == 1 and "Traceback" not in err2
    assert f"in use by process {first.pid}" in err2
    cfg = load_config(run / "config.yaml")
    assert cfg.seed == 1 and load_checkpoint(run / "checkpoints" / "last.pt")["config"]["seed"] == 1
    assert '"seed": 1' in (run / "summary.json").read_text()


# ----------------------------------------------------------------------------- 4. one line per bad input
def corrupt_fashion_mnist(tmp_path: Path) -> Path:
    root = tmp_path / "fm"
    root.mkdir()
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (root / stem).write_bytes(b"not an idx file at all")
    return root


def finished_run(tmp_path: Path) -> Path:
    fit(tiny("optim.iterations=8"), tmp_path / "done")
    return tmp_path / "done"


BAD_INPUTS = [
    # (name, arguments after "train" (callables get tmp_path), exit status, text of the one line)
    ("misspelt key", lambda t: ["--set", "optim.lrr=0.1"], 2, "did you mean 'lr'"),
    ("not a 6n+2 depth", lambda t: ["--set", "model.name=cifar_resnet21"], 2, "6n+2"),
    ("vgg on 1-channel data", lambda t: ["--set", "model.name=vgg16", "--set", "data.name=fashion_mnist"], 2,
     "3-channel"),
    ("run dir is a file", lambda t: [*tiny_sets(), "--run-dir", str(a_file(t))], 2, "is a file"),
    ("corrupt data file",
     lambda t: [*tiny_sets("data.name=fashion_mnist", f"data.root={corrupt_fashion_mnist(t)}"), "--run-dir",
                str(t / "r")], 2, "download the data set again"),
    ("missing data", lambda t: [*tiny_sets("data.name=cifar10", f"data.root={t}"), "--run-dir", str(t / "r")],
     2, "CIFAR-10"),
    ("resume without run dir", lambda t: ["--resume"], 2, "--run-dir"),
    ("resume with other settings", lambda t: [*tiny_sets("optim.iterations=8", "optim.lr=0.5"), "--resume",
                                              "--run-dir", str(finished_run(t))], 2, "optim.lr: 0.1 saved"),
    ("existing run", lambda t: [*tiny_sets("optim.iterations=8"), "--run-dir", str(finished_run(t))], 2,
     "already holds a run"),
    ("diverging lr", lambda t: [*tiny_sets("optim.lr=1000.0", "optim.milestones=[]"),
                                "--run-dir", str(t / "r")], 1, "NaN or infinite at iteration"),
]
if not torch.cuda.is_available():
    BAD_INPUTS.append(("no GPU", lambda t: [*tiny_sets("device=cuda")], 2, "no CUDA device"))


def tiny_sets(*extra: str) -> list[str]:
    return [a for o in (*TINY, *extra) for a in ("--set", o)]


def a_file(tmp_path: Path) -> Path:
    (tmp_path / "f").write_text("x")
    return tmp_path / "f"


@pytest.mark.parametrize("name,args,status,text", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_each_bad_input_is_one_line_without_traceback_and_the_right_status(tmp_path, capsys, name, args,
                                                                           status, text):
    argv = ["train", *args(tmp_path)]
    capsys.readouterr()
    assert cli.main(argv) == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("resnetlib: ") and "Traceback" not in err, err
    assert text in err, err


def test_the_cli_process_prints_one_line_for_a_bad_depth(tmp_path):
    out = subprocess.run([sys.executable, "-m", "resnetlib", "train", "--set", "model.name=cifar_resnet21"],
                         cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_config_time_checks_need_no_data():
    with pytest.raises(ConfigError, match="6n\\+2"):
        load_config(None, ["model.name=cifar_plain21"])
    with pytest.raises(ConfigError, match="3-channel"):
        load_config(None, ["model.name=vgg19", "data.name=fashion_mnist"])


# ------------------------------------------------------------------------------------- 6. temporaries
def test_temporaries_are_unique_and_a_killed_writers_are_removed_at_the_next_start(tmp_path):
    run = finished_run(tmp_path)
    assert temporary_name(run / "metrics.csv") != temporary_name(run / "metrics.csv")
    stale = [run / ".metrics.csv.tmp-123-abcd", run / "checkpoints" / ".last.pt.tmp-456-ef01"]
    for path in stale:
        path.write_text("partial")
    fit(tiny("optim.iterations=8"), run, resume=True)
    assert not any(p.exists() for p in stale)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.pt", "previous-last.pt"]


def test_corrupt_checkpoint_message_names_only_a_copy_that_exists(tmp_path):
    run = finished_run(tmp_path)
    (run / "checkpoints" / "previous-last.pt").unlink()
    (run / "checkpoints" / "last.pt").write_bytes(b"garbage")
    with pytest.raises(Exception, match="no earlier checkpoint is kept"):
        fit(tiny("optim.iterations=8"), run, resume=True)
