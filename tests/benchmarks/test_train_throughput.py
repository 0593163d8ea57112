"""benchmarks/train_throughput.py runs end to end in --quick mode and writes the expected results.

Only the plumbing is checked (keys, positive numbers, files): timings are never asserted, since this
suite runs on shared, noisy machines.
"""

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "train_throughput.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("train_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


TINY = ["--quick", "--models", "cifar_resnet8", "--batch", "8", "--iters", "2", "--warmup", "1", "--rounds", "1",
        "--train-size", "64", "--threads", "1", "--tag", "test"]


def test_quick_fp32_run_writes_json_and_markdown(bench, tmp_path):
    result = bench.main([*TINY, "--skip-memory", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "train_throughput-test.json").read_text())
    assert (tmp_path / "train_throughput-test.md").read_text() == saved["table_markdown"]
    assert set(saved) == {"meta", "throughput", "memory", "table_markdown"}
    assert saved["memory"] is None and result["throughput"] == saved["throughput"]
    meta = saved["meta"]
    assert meta["device"] == "cpu" and meta["amp"] == "off" and meta["batch"] == 8 and meta["threads"] == 1
    r = saved["throughput"]["cifar_resnet8"]
    assert r["iters"] == 2 and r["rounds"] == 1
    assert set(r["methods"]) == {"bare", "ours", "conventional"}
    for method in r["methods"].values():
        assert positive(method["img_s"]) and len(method["runs"]) == 1
        assert positive(method["runs"][0]["seconds"])
    assert positive(r["methods"]["ours"]["runs"][0]["loop_reported_img_s"])
    assert set(r["ratios"]) == {"ours_over_bare", "ours_over_conventional"}
    assert all(positive(v) for v in r["ratios"].values())
    assert [t["status"] in ("PASS", "MISS") for t in r["targets"]] == [True, True]
    assert "| cifar_resnet8 |" in saved["table_markdown"]


@pytest.mark.slow  # two memory subprocesses: ~15 s on a loaded 2-core CPU
def test_quick_bf16_run_measures_the_fp32_baseline_and_memory(bench, tmp_path):
    bench.main([*TINY, "--amp", "bf16", "--mem-model", "cifar_resnet8", "--mem-batch", "2", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "train_throughput-test.json").read_text())
    r = saved["throughput"]["cifar_resnet8"]
    assert set(r["methods"]) == {"bare", "ours", "conventional", "conventional_fp32"}
    assert positive(r["ratios"]["ours_over_conventional_fp32"])
    assert [t["target"] for t in r["targets"]] == ["ours >= 1.5 x conventional_fp32"]
    memory = saved["memory"]
    assert memory["model"] == "cifar_resnet8" and memory["batch"] == 2
    variants = {v["activation_checkpointing"]: v for v in memory["variants"]}
    assert set(variants) == {False, True}
    for v in variants.values():
        assert "error" not in v, v.get("error")
        for key in ("saved_for_backward_bytes", "saved_for_backward_bytes_extrapolated", "param_bytes",
                    "step_seconds"):
            assert positive(v[key]), key
        assert v["peak_rss_growth_bytes"] is None or v["peak_rss_growth_bytes"] >= 0
    # checkpointing keeps only the block inputs for backward
    assert variants[True]["saved_for_backward_bytes"] < variants[False]["saved_for_backward_bytes"]
