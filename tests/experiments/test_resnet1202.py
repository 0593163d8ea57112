"""Table 6 / Fig. 6 right experiment (ResNet-110 vs 1202): memory helper, runs, honest verdicts."""

import json

import pandas as pd
import pytest
import torch
from torch import nn

from resnetlib import models, paper
from resnetlib.config import ConfigError, load_yaml, validate
from resnetlib.experiments import resnet1202 as exp
from resnetlib.reproduce import params_file_for

NOT_MEASURABLE = "not measurable at this scale"
TINY = dict(train={"data": {"name": "synthetic", "train_size": 32, "test_size": 16},
                   "optim": {"batch_size": 8, "iterations": 2, "milestones": [1]}, "eval_every": 1, "threads": 1},
            shallow_depth=8, deep_depth=14, memory_depths=[8, 14], device="cpu")


def test_activation_bytes_counts_saved_activations_not_weights():
    torch.manual_seed(0)
    x = torch.randn(3, 100)
    assert exp.activation_bytes(nn.Linear(100, 10), x) == x.numel() * 4  # the input; the weight is excluded


def test_activation_bytes_smaller_with_checkpointing_and_scales_with_batch():
    torch.manual_seed(0)
    full = models.build("cifar_resnet20")
    ckpt = models.build("cifar_resnet20", activation_checkpointing=True)
    x2, x4 = torch.randn(2, 3, 32, 32), torch.randn(4, 3, 32, 32)
    b_full, b_ckpt = exp.activation_bytes(full, x2), exp.activation_bytes(ckpt, x2)
    assert 0 < b_ckpt < b_full / 2
    assert 1.9 < exp.activation_bytes(full, x4) / b_full < 2.05


def test_tiny_run_writes_files_and_says_what_was_measured(tmp_path):
    params = exp.Params(**TINY, activation_checkpointing=True, output_dir=str(tmp_path / "out"),
                        runs_dir=str(tmp_path / "runs"))
    results = exp.run(params)
    out = tmp_path / "out"
    curves = pd.read_csv(out / "curves.csv")
    assert set(curves.depth) == {8, 14} and set(curves.kind) == {"resnet"}
    runs = pd.read_csv(out / "runs.csv").set_index("depth")
    assert runs.loc[14, "activation_checkpointing"] and not runs.loc[8, "activation_checkpointing"]
    assert (runs.train_images_per_s > 0).all()
    memory = pd.read_csv(out / "memory.csv")
    assert len(memory) == 4 and (memory.activation_bytes > 0).all()
    assert json.loads((out / "results.json").read_text())["experiment"] == "resnet1202"
    verdicts = {c["id"]: c["verdict"] for c in results["claims"]}
    assert verdicts["fig6_right_similar_training_error"] == verdicts["table6_resnet1202_overfits"] == NOT_MEASURABLE
    assert results["measured"] and any("not the paper's 110 and 1202" in s for s in results["not_measured"])


def curves(make_curves, train110, test110, train1202, test1202, *, iterations=64_000, last_milestone=48_000):
    """Per-seed final training errors of ResNet-110 and -1202; test errors as given (one per seed too)."""
    table = make_curves({("resnet", 110): train110, ("resnet", 1202): train1202}, iterations=iterations,
                        last_milestone=last_milestone)
    tests = {(110, s): e for s, e in enumerate(test110)} | {(1202, s): e for s, e in enumerate(test1202)}
    table["test_error"] = [tests[(d, s)] for d, s in zip(table.depth, table.seed)]
    return table


def profile(name):
    return validate(exp.Params, {**load_yaml(params_file_for("resnet1202", name)), "profile": name})


def test_paper_profile_judges_overfitting_and_numbers(make_curves):
    params = profile("paper")
    assert params.at_paper_scale() and params.paper_depths() and params.activation_checkpointing
    e110, e1202 = paper.value("table6.error.resnet110"), paper.value("table6.error.resnet1202")
    table = curves(make_curves, [0.05, 0.06, 0.04], [e110, e110 + 0.2, e110 - 0.1], [0.02, 0.03, 0.02],
                   [e1202, e1202 + 0.1, e1202 - 0.2])
    claims = {c.id: c.verdict for c in exp.claims_from(params, table)}
    assert claims["fig6_right_similar_training_error"] == "reproduced"
    assert claims["table6_resnet1202_overfits"] == "reproduced"
    assert claims["table6_resnet1202_test_error"] == "reproduced"
    assert not any(cid.startswith("table6_params") for cid in claims)  # the architectures notebook counts them
    table = curves(make_curves, [0.05, 0.06, 0.04], [e110] * 3, [3.0, 3.1, 2.9], [e110 - 1, e110 - 1.2, e110 - 0.9])
    claims = {c.id: c.verdict for c in exp.claims_from(params, table)}
    assert claims["fig6_right_similar_training_error"] == claims["table6_resnet1202_overfits"] == "contradicted"
    one_seed = curves(make_curves, [0.05], [e110], [0.02], [e1202])
    claims = {c.id: c.verdict for c in exp.claims_from(params, one_seed)}
    assert claims["table6_resnet1202_overfits"] == "inconclusive"


def test_cpu_profile_trains_the_paper_nets_but_cannot_judge_overfitting(make_curves):
    params = profile("cpu")
    assert params.paper_depths() and not params.at_paper_scale()
    claims = {c.id: c.verdict for c in exp.claims_from(params, curves(make_curves, [80], [85], [90], [90],
                                                                          iterations=20, last_milestone=15))}
    assert claims["table6_resnet1202_overfits"] == NOT_MEASURABLE


def test_validation():
    with pytest.raises(ConfigError, match="below deep_depth"):
        validate(exp.Params, {"shallow_depth": 32, "deep_depth": 20})
    with pytest.raises(ConfigError, match="6n\\+2"):
        validate(exp.Params, {"memory_depths": [100]})
