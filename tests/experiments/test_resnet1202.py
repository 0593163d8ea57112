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


def final_table(train110, test110, train1202, test1202):
    return pd.DataFrame([dict(kind="resnet", depth=110, train_error=train110, test_error=test110,
                              test_error_std=None, test_error_best=test110, seeds=1),
                         dict(kind="resnet", depth=1202, train_error=train1202, test_error=test1202,
                              test_error_std=None, test_error_best=test1202, seeds=1)])


def profile(name):
    return validate(exp.Params, {**load_yaml(params_file_for("resnet1202", name)), "profile": name})


def test_paper_profile_judges_overfitting_and_numbers():
    params = profile("paper")
    assert params.at_paper_scale() and params.paper_depths() and params.activation_checkpointing
    e110, e1202 = paper.value("table6.error.resnet110"), paper.value("table6.error.resnet1202")
    claims = {c.id: c.verdict for c in exp.claims_from(params, final_table(0.05, e110, 0.02, e1202))}
    assert claims["fig6_right_similar_training_error"] == "reproduced"
    assert claims["table6_resnet1202_overfits"] == "reproduced"
    assert claims["table6_resnet1202_test_error"] == "reproduced"
    assert claims["table6_params_resnet1202"] == "reproduced"
    claims = {c.id: c.verdict for c in exp.claims_from(params, final_table(0.05, e110, 3.0, e110))}
    assert claims["fig6_right_similar_training_error"] == claims["table6_resnet1202_overfits"] == "not reproduced"


def test_cpu_profile_trains_the_paper_nets_but_cannot_judge_overfitting():
    params = profile("cpu")
    assert params.paper_depths() and not params.at_paper_scale()
    claims = {c.id: c.verdict for c in exp.claims_from(params, final_table(80, 85, 90, 90))}
    assert claims["table6_resnet1202_overfits"] == NOT_MEASURABLE
    assert claims["table6_params_resnet110"] == "reproduced"  # exact at every scale


def test_validation():
    with pytest.raises(ConfigError, match="below deep_depth"):
        validate(exp.Params, {"shallow_depth": 32, "deep_depth": 20})
    with pytest.raises(ConfigError, match="6n\\+2"):
        validate(exp.Params, {"memory_depths": [100]})
