"""bench/gpu_check.py in its reduced form: the one script a lent GPU runs, checked here so that call is not wasted."""

import importlib.util
import json
import math
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "bench" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_reduced_gpu_check_writes_its_three_parts(tmp_path):
    out = tmp_path / "gpu_check.json"
    result = _gpu_check().main(["--reduced", "--work", str(tmp_path / "work"), "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result["reduced"] is True and result["config"] == "configs/crw-reference.yaml"
    l4, l3 = result["training_step"]
    assert (l4["train_stage"], l3["train_stage"]) == ("layer4", "layer3")
    for r in (l4, l3):
        assert r["loss_finite"] and r["step_ms"] > 0 and r["clips_per_s"] > 0 and r["nodes_per_frame"] == 9
    assert 0 < l3["gflops_per_clip"] < l4["gflops_per_clip"]  # no layer4: fewer FLOPs
    p = result["propagation"]
    assert (p["height"], p["width"]) == (64, 112) and p["frames"] > 0 and p["frames_per_s"] > 0
    t = result["short_training"]
    assert t["steps"] == 3 and math.isfinite(t["final_loss"]) and 0 <= t["J&F-Mean"] <= 1
    assert (Path(t["run"]) / "checkpoint.pt").is_file()
