"""benchmarks/gpu/device_check.py runs end to end with ``--device cpu --quick`` (the CI run of the GPU
session's prepared check, so that it cannot rot between sessions that have a GPU).

Only the plumbing is checked: every section ran, wrote its numbers, and the fault check really killed a
run and resumed it to the uninterrupted run's weights. Timings are never asserted.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu" / "device_check.py"


@pytest.fixture(scope="module")
def check(tmp_path_factory):
    out = tmp_path_factory.mktemp("device-check")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, json.loads((out / "check.json").read_text())


@pytest.mark.slow
def test_every_section_ran_and_wrote_its_files(check):
    out, result = check
    assert list(result["sections"]) == ["gpu_tests", "memory", "schedule", "fault", "packing", "throughput"]
    assert all(section["ok"] for section in result["sections"].values())
    names = {p.name for p in out.iterdir()}
    assert {"check.json", "check.md", "gpu-tests.txt"} <= names and len(names) <= 8  # the device tool's limit


@pytest.mark.slow
def test_fault_check_killed_and_resumed_to_the_same_weights(check):
    fault = check[1]["sections"]["fault"]
    assert fault["killed_mid_run"] and fault["resume_exit_status"] == 0
    assert fault["bit_identical"]


@pytest.mark.slow
def test_packing_and_schedule_numbers(check):
    sections = check[1]["sections"]
    rows = sections["packing"]["rows"]
    assert [r["processes"] for r in rows] == [1, 2] and rows[0]["vs_one_alone"] == 1.0
    assert all(len(r["per_process_images_per_s"]) == r["processes"] for r in rows)
    (row,) = sections["schedule"]["rows"]
    assert row["extrapolated_64k_h"] > 0 and row["iterations"] == 4
    assert [v["activation_checkpointing"] for v in sections["memory"]["variants"]] == [False, True]
