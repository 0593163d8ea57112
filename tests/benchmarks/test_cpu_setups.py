"""benchmarks/cpu_setups.py runs end to end in --quick mode and records the CPU with its results.

Only the plumbing is checked (rows, positive numbers, the CPU's flags, files): timings are never asserted.
"""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "cpu_setups.py"


@pytest.fixture(scope="module")
def bench():
    # the two-process setup spawns workers that import the script by name: put its folder on sys.path
    sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("cpu_setups", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)
        sys.path.remove(str(SCRIPT.parent))


def test_candidates_follow_the_cpu(bench):
    without = [s.name for s in bench.candidates(bf16=False, compile_=False)]
    assert without[0] == "fp32 NCHW" and not any("bf16" in n for n in without)
    with_bf16 = [s.name for s in bench.candidates(bf16=True, compile_=True)]
    assert "bf16 channels_last" in with_bf16 and "compiled bf16 channels_last" in with_bf16
    assert with_bf16[-1].startswith("2 processes x 1 thread, bf16 channels_last")


@pytest.mark.slow
def test_quick_run_writes_rows_and_the_cpu(bench, tmp_path):
    result = bench.main(["--quick", "--threads", "2", "--out", str(tmp_path)])
    saved = json.loads(next(tmp_path.glob("cpu_setups-*-quick.json")).read_text())
    assert saved["rows"] == result["rows"]
    cpu = saved["meta"]["cpu"]
    assert cpu["model"] and cpu["capability"] and isinstance(cpu["flags"], list)
    setups = [r["setup"] for r in saved["rows"]]
    assert setups[0] == "fp32 NCHW" and setups[-1].startswith("2 processes")
    assert all(r["images_per_s"] > 0 for r in saved["rows"]) and saved["rows"][0]["ratio_to_fp32_nchw"] == 1.0
    assert "| cifar_resnet20 | 1x28x28 | fp32 NCHW |" in next(tmp_path.glob("cpu_setups-*-quick.md")).read_text()
