"""``reproduce --jobs auto``: one job per core on a CPU; on CUDA the device check's packing factor."""

from __future__ import annotations

import json

from resnetlib.reproduce import jobs


def test_auto_is_one_job_per_core_on_a_cpu():
    assert jobs.resolve_jobs("auto", "cpu", cores=8)[0] == 8
    assert jobs.resolve_jobs(3, "cuda") == (3, "--jobs")


def test_cuda_packing_from_the_device_check_else_one(tmp_path, monkeypatch):
    assert jobs.packing_factor(tmp_path)[0] == 1
    rows = [{"processes": 1, "total_images_per_s": 1000}, {"processes": 2, "total_images_per_s": 1900},
            {"processes": 4, "total_images_per_s": 2600}, {"processes": 8, "total_images_per_s": 2700}]
    (tmp_path / "device_check-h100.json").write_text(json.dumps({"sections": {"packing": {"rows": rows}}}))
    assert jobs.packing_factor(tmp_path) == (4, "packing measured in device_check-h100.json")
    monkeypatch.setattr(jobs, "RESULTS_DIR", tmp_path)
    assert jobs.resolve_jobs("auto", "cuda")[0] == 4
