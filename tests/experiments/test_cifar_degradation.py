"""Fig. 1 / Fig. 6 / Table 6 experiment: runs, files, and how claims become verdicts."""

import json
import math

import pandas as pd
import pytest

from resnetlib.config import ConfigError, validate
from resnetlib.experiments import cifar_degradation as exp
from resnetlib.experiments import layer_responses

TINY_TRAIN = {"data": {"name": "synthetic", "train_size": 64, "test_size": 32},
              "optim": {"batch_size": 16, "iterations": 4, "milestones": [2]}, "eval_every": 2, "threads": 1}
TINY = dict(train=TINY_TRAIN, depths=[8, 14], device="cpu")


def scale(data=None, **optim):
    """A ``train`` section: Fashion-MNIST at 10k images unless ``data`` says otherwise."""
    return {"data": data or {"name": "fashion_mnist", "train_size": 10_000}, "optim": optim}


def test_tiny_run_writes_curves_final_errors_and_results(tmp_path):
    params = exp.Params(**TINY, output_dir=str(tmp_path / "out"), runs_dir=str(tmp_path / "runs"))
    results = exp.run(params)
    curves = pd.read_csv(tmp_path / "out" / "curves.csv")
    assert list(curves.columns) == list(results.curves.columns) and len(curves) == len(results.curves)
    assert curves.groupby(["kind", "depth"]).ngroups == 4 and set(curves.iteration) == {2, 4}
    assert json.loads((tmp_path / "out" / "results.json").read_text())["experiment"] == "cifar_degradation"
    assert results["data_source"] == "synthetic (random)"
    # synthetic data: no qualitative claim can be judged
    assert {c["verdict"] for c in results["claims"]} == {"not measurable at this scale"}

    # the layer-response notebook with the same training parameters reuses the trained nets
    lr_params = layer_responses.Params(**{k: v for k, v in TINY.items() if k != "depths"},
                                       plain_depths=[8, 14], resnet_depths=[8, 14],
                                       output_dir=str(tmp_path / "lr"), runs_dir=str(tmp_path / "runs"))
    runs_before = sorted(p.name for p in (tmp_path / "runs").iterdir())
    lr_results = layer_responses.run(lr_params)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == runs_before
    responses = pd.read_csv(tmp_path / "lr" / "responses.csv")
    per_definition = responses[responses.definition == "whole"].groupby("model").size().to_dict()
    assert per_definition == {"ResNet-8": 7, "ResNet-14": 13, "plain-8": 7, "plain-14": 13}
    assert responses.groupby("definition").size().to_dict() == {"whole": 40, "per_channel": 40}
    ids = [c["id"] for c in lr_results["claims"]]  # one claim per comparison, read under both definitions
    assert ids == ["fig7_resnet8_smaller_than_plain8", "fig7_resnet14_smaller_than_plain14",
                   "fig7_resnet14_smaller_than_resnet8"]
    assert all([r["name"] for r in c["readings"]] == ["whole", "per_channel"] for c in lr_results["claims"])
    assert lr_results["claims"]


def cpu_scale(**extra):
    return exp.Params(train=scale(batch_size=128, iterations=400, milestones=[200, 300]), depths=[20, 56], **extra)


def curves(make_curves, plain20, plain56, res20, res56, **kw):
    """Per-seed final training errors of the four nets (test error one point above)."""
    finals = {("plain", 20): plain20, ("plain", 56): plain56, ("resnet", 20): res20, ("resnet", 56): res56}
    return make_curves(finals, iterations=400, last_milestone=300, **kw)


def judged(params, table):
    return {c.id: c for c in exp.claims_from(params, table)}


def test_three_seeds_reproduce_the_degradation(make_curves):
    claims = judged(cpu_scale(), curves(make_curves, [15, 16, 14.5], [25, 27, 26], [17, 18, 17.5], [12, 12.5, 11]))
    for cid in ("fig1_plain_degradation", "fig6_resnet_deeper_lower_train_error",
                "table6_resnet_deeper_lower_test_error", "fig6_residual_beats_plain"):
        assert claims[cid].verdict == "reproduced", claims[cid].reason
    degradation = claims["fig1_plain_degradation"]
    assert (degradation.n_seeds, degradation.margin) == (3, 1.0)
    assert degradation.effect == pytest.approx(32.5 / 3, abs=1e-3)  # (10 + 11 + 11.5) / 3
    assert 0 < degradation.ci_low < degradation.effect < degradation.ci_high
    assert claims["table6_resnet20_test_error"].verdict == "not measurable at this scale"  # not CIFAR-10
    assert claims["table6_resnet20_test_error"].kind == "number"


def test_opposite_effect_in_every_seed_is_contradicted_and_noise_is_inconclusive(make_curves):
    claims = judged(cpu_scale(), curves(make_curves, [25, 27, 26], [15, 16, 14.5], [17, 18, 17.5], [17.5, 17, 18]))
    assert claims["fig1_plain_degradation"].verdict == "contradicted"
    assert claims["fig6_resnet_deeper_lower_train_error"].verdict == "inconclusive"  # effects -0.5, +1, -0.5


def test_one_seed_is_at_most_inconclusive_with_the_binomial_interval(make_curves):
    claims = judged(cpu_scale(), curves(make_curves, [15], [25], [17], [12]))
    c = claims["fig1_plain_degradation"]
    assert c.verdict == "inconclusive" and c.n_seeds == 1 and "binomial" in c.reason
    # eval_every 4 x batch 128 = 512 images per training-error evaluation: 15% and 25% on 512 images
    se = math.hypot(math.sqrt(0.15 * 0.85 / 512), math.sqrt(0.25 * 0.75 / 512)) * 100  # 2.48 points
    assert c.ci_high - c.ci_low == pytest.approx(2 * 1.96 * se, abs=0.01)


def test_a_net_that_did_not_train_makes_its_comparisons_not_measurable(make_curves):
    claims = judged(cpu_scale(), curves(make_curves, [15, 16, 14.5], [88, 87, 88.5], [17, 18, 17.5], [12, 12.5, 11]))
    c = claims["fig1_plain_degradation"]
    assert c.verdict == "not measurable at this scale"
    assert "plain-56 (seed 0) did not train" in c.reason and "88.0%" in c.reason
    assert claims["fig6_residual_beats_plain"].verdict == "not measurable at this scale"
    assert claims["fig6_resnet_deeper_lower_train_error"].verdict == "reproduced"  # both ResNets trained


def test_ending_better_claims_carry_their_budget_for_the_replication_rule(make_curves):
    """Deeper-ResNet-is-better is about where the nets end: contradicted at this budget, it stands only if the
    budget study replicates it at >= 3x the budget (claims.budget); an equal-budget claim is left alone."""
    from resnetlib.claims.emergence import with_budget_evidence

    table = curves(make_curves, [15, 16, 14.5], [25, 27, 26], [12, 12.5, 11], [17, 18, 17.5])
    claims = judged(cpu_scale(), table)
    deeper, residual = claims["fig6_resnet_deeper_lower_train_error"], claims["fig6_residual_beats_plain"]
    assert deeper.verdict == "contradicted" and deeper.ends_better and not residual.ends_better
    assert (deeper.budget.dataset, deeper.budget.iterations, deeper.budget.batch_size) == ("fashion_mnist", 400, 128)
    assert deeper.scope == "at this budget"
    study = pd.DataFrame([{"id": deeper.id, "ref": "Fig. 6 middle", "setting": "1200 it", "iterations": 1200,
                           "batch_size": 128, "image_size": 28, "core_hours": 1.0, "verdict": "contradicted",
                           "effect": -1.5, "ci_low": -2.0, "ci_high": -1.2, "margin": 1.0}])
    after = {c.id: c for c in with_budget_evidence(list(claims.values()), "fashion_mnist", study)}
    assert after[deeper.id].verdict == "not measurable at this scale"
    assert "still converging: effect -5.7 -> -1.5 over 400 -> 1200 iterations" in after[deeper.id].reason
    assert after[residual.id].verdict == "reproduced"


def test_too_few_epochs_is_not_measurable(make_curves):
    """Below one pass over the training set (64 x 128 images of 10k: 0.8 epochs) nothing is judged."""
    short = exp.Params(train=scale(batch_size=128, iterations=64, milestones=[32]), depths=[20, 56])
    table = make_curves({("plain", 20): [15] * 3, ("plain", 56): [25] * 3, ("resnet", 20): [17] * 3,
                         ("resnet", 56): [12] * 3}, iterations=64, last_milestone=32)
    claims = exp.claims_from(short, table)
    assert {c.verdict for c in claims} == {"not measurable at this scale"}
    assert ">= 1 epochs" in claims[0].reason and "0.8 epochs" in claims[0].reason


def test_paper_scale_compares_table6_numbers(make_curves):
    data = {"name": "cifar10", "train_size": None, "val_size": 5000, "test_size": None}
    paper = exp.Params(train=scale(data, batch_size=128, iterations=64_000, milestones=[0.5, 0.75]), depths=[20, 56])
    assert paper.at_paper_scale()
    table = make_curves({("plain", 20): [9], ("plain", 56): [12], ("resnet", 20): [7.75], ("resnet", 56): [7.2]},
                        iterations=64_000, last_milestone=48_000)
    claims = judged(paper, table)
    assert claims["table6_resnet20_test_error"].verdict == "reproduced"      # 8.75 vs 8.75
    assert claims["table6_resnet56_test_error"].verdict == "not reproduced"  # 8.2 vs 6.97


def test_bad_depth_and_milestones_fail_validation():
    with pytest.raises(ConfigError, match="6n\\+2"):
        validate(exp.Params, {"depths": [21]})
    with pytest.raises(ConfigError, match="milestones"):
        validate(exp.Params, {"train": {"optim": {"iterations": 10, "milestones": [20]}}})
    with pytest.raises(ConfigError, match="data_root"):
        validate(exp.Params, {"train": {"data": {"root": "/data"}}})
    with pytest.raises(ConfigError, match="imagefolder"):
        validate(exp.Params, {"train": {"data": {"name": "imagefolder"}}})
    with pytest.raises(ConfigError, match="did you mean 'iterations'"):
        validate(exp.Params, {"train": {"optim": {"iteration": 10}}})


def responses_table(stds):
    """Per-seed mean response stds: ``stds`` maps (kind, depth) to {definition: [std of seed 0, 1, ...]}."""
    return pd.DataFrame([dict(kind=k, depth=d, seed=seed, definition=definition, layer=1, std=std)
                         for (k, d), by_def in stds.items() for definition, values in by_def.items()
                         for seed, std in enumerate(values)])


def test_layer_response_claims_are_judged_under_both_definitions(make_curves):
    p = layer_responses.Params(train=scale(batch_size=128, iterations=400, milestones=[200, 300]),
                               plain_depths=[20, 56], resnet_depths=[20, 56], seeds=[0, 1, 2])

    def three(v):
        return [v, v + 0.01, v - 0.01]  # three seeds, a little spread

    stds = {("plain", 20): {"whole": three(1.0), "per_channel": three(0.5)},
            ("plain", 56): {"whole": three(2.0), "per_channel": three(2.0)},
            ("resnet", 20): {"whole": three(0.98), "per_channel": three(0.6)},
            ("resnet", 56): {"whole": three(0.6), "per_channel": three(0.6)}}
    trained = make_curves({net: [10, 11, 12] for net in stds}, iterations=400, last_milestone=300)
    claims = {c.id: c for c in layer_responses.claims_from(p, responses_table(stds), trained)}
    verdicts = {cid: c.verdict for cid, c in claims.items()}
    readings = {cid: {r.name: r.verdict for r in c.readings} for cid, c in claims.items()}
    assert readings == {
        # whole: 2%, real but within the 5% margin; per channel: 20% larger
        "fig7_resnet20_smaller_than_plain20": {"whole": "inconclusive", "per_channel": "contradicted"},
        "fig7_resnet56_smaller_than_plain56": {"whole": "reproduced", "per_channel": "reproduced"},  # 70% smaller
        # whole: 38.8% smaller; per channel: equal
        "fig7_resnet56_smaller_than_resnet20": {"whole": "reproduced", "per_channel": "inconclusive"},
    }
    assert verdicts == {  # one claim per comparison: both readings must agree
        "fig7_resnet20_smaller_than_plain20": "inconclusive",
        "fig7_resnet56_smaller_than_plain56": "reproduced",
        "fig7_resnet56_smaller_than_resnet20": "inconclusive",
    }
    assert claims["fig7_resnet56_smaller_than_plain56"].ours == pytest.approx(70.0, abs=0.1)
    assert "the readings disagree" in claims["fig7_resnet56_smaller_than_resnet20"].reason
    assert claims["fig7_resnet56_smaller_than_resnet20"].ends_better

    stuck = make_curves({**{net: [10, 11, 12] for net in stds}, ("plain", 56): [88, 88, 88]}, iterations=400,
                        last_milestone=300)
    claims = {c.id: c for c in layer_responses.claims_from(p, responses_table(stds), stuck)}
    stopped = claims["fig7_resnet56_smaller_than_plain56"]
    assert stopped.verdict == "not measurable at this scale" and "plain-56 (seed 0) did not train" in stopped.reason
    assert claims["fig7_resnet56_smaller_than_resnet20"].verdict == "inconclusive"  # both ResNets trained


def test_resnet_depths_leave_out_a_net_and_its_comparisons(make_curves):
    """A profile sized by cost trains plain-20/56 and ResNet-20 only: ResNet-56's three comparisons are not
    stated (not judged from nets that were never trained); the degradation still is."""
    params = cpu_scale(resnet_depths=[20], seeds=[0, 1, 2])
    assert sorted({(k, d) for k, d, _ in exp.nets(params)}) == [("plain", 20), ("plain", 56), ("resnet", 20)]
    assert [c.model.name for c in exp.planned_runs(params)].count("cifar_resnet56") == 0
    finals = {("plain", 20): [10.0, 11.0, 12.0], ("plain", 56): [30.0, 33.0, 31.0], ("resnet", 20): [9.0, 10.0, 11.0]}
    table = make_curves(finals, iterations=400, last_milestone=300)
    ids = [c.id for c in exp.claims_from(params, table)]
    assert ids == ["fig1_plain_degradation", "table6_resnet20_test_error"]
    assert exp.statements(cpu_scale(seeds=[0, 1, 2])) and len(exp.statements(cpu_scale(seeds=[0, 1, 2]))) == 4
