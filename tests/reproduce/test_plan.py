"""``reproduce --plan``: runs, cached runs, estimate and disk, with a fake timer (no timing in tests)."""

from __future__ import annotations

import json

from resnetlib.reproduce import load_profile
from resnetlib.reproduce.plan import _macs_and_params, make_plan, plan_text
from resnetlib.train import TrainConfig


def fake_timer(config, shape, device):
    return 1000.0  # images/s of the cheapest net at each size


def test_plan_lists_runs_shares_cache_entries_and_counts_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("RESNETLIB_RUNS_DIR", str(tmp_path / "runs"))
    loaded = load_profile("smoke", ["architectures", "cifar_degradation", "layer_responses"], environ={},
                          set_items=["seeds=[0, 1]"])
    plan = make_plan(loaded, timer=fake_timer)
    assert len(plan.runs) == 8  # plain/resnet x 20/32 x 2 seeds; layer_responses reuses them
    first = plan.runs[0]
    first.run_dir.mkdir(parents=True)
    (first.run_dir / "summary.json").write_text(json.dumps({}))
    text = plan_text(make_plan(loaded, timer=fake_timer), jobs=2, jobs_note="--jobs")
    assert "architectures  [no data set on disk]\n  trains inside its notebook" in text
    assert "cifar_degradation  [fashion_mnist at (default search path)]  --set seeds=[0, 1]" in text
    assert "cifar_plain20" in text and "seeds 0,1" in text and "1/2 cached" in text
    assert "layer_responses" in text and "shared with an experiment above" in text
    assert "total: 8 distinct run(s), 1 cached" in text and "checkpoints ~" in text


def test_the_estimate_scales_with_multiply_adds_and_iterations(tmp_path, monkeypatch):
    monkeypatch.setenv("RESNETLIB_RUNS_DIR", str(tmp_path / "runs"))
    loaded = load_profile("smoke", ["cifar_degradation"], environ={}, set_items=["depths=[20, 56]"])
    plan = make_plan(loaded, timer=fake_timer)
    runs = {r.config.model.name: r for r in plan.runs if r.config.seed == 0}
    deep, shallow = runs["cifar_resnet56"], runs["cifar_resnet20"]
    macs = [_macs_and_params(r.config, r.shape())[0] for r in (deep, shallow)]
    ratio = plan.seconds[deep.run_dir] / plan.seconds[shallow.run_dir]
    assert abs(ratio - macs[0] / macs[1]) < 1e-6 and ratio > 2.5  # same iterations, images, evaluations


def test_multiply_adds_match_the_paper():
    config = TrainConfig.model_validate({"model": {"name": "cifar_resnet110"}, "data": {"name": "cifar10"}})
    macs, params = _macs_and_params(config, (3, 32, 32))
    assert round(macs / 1e6) == 253 and round(params / 1e6, 1) == 1.7  # Table 6: 1.7M parameters
    config = TrainConfig.model_validate({"model": {"name": "resnet50"}, "data": {"name": "imagefolder", "root": "/x"}})
    macs, params = _macs_and_params(config, (3, 224, 224))  # counted on the meta device
    assert round(macs / 1e8) == 39 and round(params / 1e6, 1) == 25.6  # Table 1: 3.8e9 FLOPs


def test_plan_with_the_slurm_launcher_lists_one_job_per_planned_run_with_its_resources(tmp_path, monkeypatch,
                                                                                         capsys):
    from resnetlib.reproduce.cli import add_arguments, main

    monkeypatch.setenv("RESNETLIB_RUNS_DIR", str(tmp_path / "runs"))
    import argparse

    args = add_arguments(argparse.ArgumentParser()).parse_args(
        ["--profile", "smoke", "--only", "cifar_degradation", "--plan", "--launcher", "slurm",
         "--slurm-partition", "gpu", "--slurm-time", "02:00:00", "--slurm-images-per-second", "3000"])
    assert main(args) == 0
    out = capsys.readouterr().out
    jobs = [line for line in out.splitlines() if "partition=gpu" in line]
    assert len(jobs) == 4 and all("gpus=1" in j and "time=02:00:00" in j for j in jobs)  # plain/ResNet x 20/32
    assert "4 job(s), 4 GPU(s) in all" in out
    assert not (tmp_path / "runs").exists()  # nothing trained, nothing written


def test_slurm_options_without_the_slurm_launcher_are_refused(capsys):
    import argparse

    from resnetlib.reproduce.cli import add_arguments, main

    args = add_arguments(argparse.ArgumentParser()).parse_args(["--profile", "smoke", "--plan",
                                                                "--slurm-partition", "gpu"])
    assert main(args) == 2
    assert "--slurm-* options need --launcher slurm" in capsys.readouterr().err
