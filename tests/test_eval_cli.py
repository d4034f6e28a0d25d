"""evaluate() and `ever eval`: files written, scores of trivial cases, baselines, checkpoint errors."""
from __future__ import annotations

import csv
import json

import pytest
import torch

from ever.cli import main
from ever.config import EvalConfig, load_config
from ever.evaluate.run import evaluate
from test_davis import make_davis

SMALL_MODEL = ["model.width=4", "model.blocks=[1,1,1,1]", "model.proj_dim=8"]


@pytest.fixture
def davis(tmp_path):
    root = make_davis(tmp_path / "davis", {"one": (5, 40, 56, 1), "two": (4, 48, 40, 2)})
    kp = {"annotated_frames": [{"frame": f"{t:05d}", "joints_xy_480p": [[8.0 + 2 * t, 8.0], [0, 0]],
                                "visible": [True, False]} for t in (0, 2, 4)]}
    (root / "keypoints").mkdir()
    (root / "keypoints" / "one.json").write_text(json.dumps(kp))
    return root


def test_evaluate_copy_writes_results(davis, tmp_path):
    out = tmp_path / "out"
    s = evaluate("copy", davis, "val", out, EvalConfig(), "copy")
    for key in ("J&F-Mean", "J-Mean", "J-Recall", "F-Mean", "F-Recall", "PCK@0.1", "PCK@0.2"):
        assert 0.0 <= s[key] <= 1.0, key
    assert s["num_sequences"] == 2 and s["num_objects"] == 3 and s["frames"] == 9 and s["method"] == "copy"
    assert s["frames_per_s"] > 0 and s["cfg"]["topk"] == 10
    assert s["J-Mean"] < 1.0  # the squares move, the copy does not
    saved = json.loads((out / "summary.json").read_text())
    assert saved["J&F-Mean"] == pytest.approx(s["J&F-Mean"])
    rows = list(csv.DictReader((out / "per_sequence.csv").open()))
    assert [(r["sequence"], r["object"]) for r in rows] == [("one", "1"), ("two", "1"), ("two", "2")]
    assert rows[0]["frames"] == "3"  # 5 frames minus the first and the last
    assert set(s["keypoints"]) == {"one"} and s["keypoints"]["one"]["joints"] == 2


def test_evaluate_static_video_is_perfect(tmp_path):
    from test_davis import save_mask
    root = make_davis(tmp_path / "d", {"s": (4, 32, 32, 1)})
    first = (root / "Annotations" / "480p" / "s" / "00000.png")
    for t in range(1, 4):  # every frame annotated exactly like frame 0
        (root / "Annotations" / "480p" / "s" / f"{t:05d}.png").write_bytes(first.read_bytes())
    s = evaluate("copy", root, "val", tmp_path / "o", EvalConfig(), "copy")
    assert s["J&F-Mean"] == 1.0 and s["J-Recall"] == 1.0 and s["F-Mean"] == 1.0
    del save_mask


def test_cli_lab_with_overlays(davis, tmp_path, capsys):
    out = tmp_path / "lab"
    rc = main(["eval", "lab", "--data", str(davis), "--split", "val", "--out", str(out),
               "--set", "eval.overlays=true", "--set", "eval.n_context=2"])
    assert rc == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("lab on") and "J&F" in line and "PCK@0.1" in line
    s = json.loads((out / "summary.json").read_text())
    assert s["cfg"]["n_context"] == 2 and s["split"] == "val"
    assert sorted(p.name for p in (out / "overlays" / "two").iterdir()) == [f"{t:05d}.png" for t in range(4)]


def test_cli_bad_split_is_one_line(davis, capsys):
    assert main(["eval", "copy", "--data", str(davis), "--split", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope.txt" in err


def _checkpoint(path, overrides):
    from ever.models import EverModel

    cfg = load_config(None, overrides)
    model = EverModel(cfg.model)
    torch.save({"model": {f"model.{k}": v for k, v in model.state_dict().items()}, "config": cfg.to_dict()}, path)
    return cfg


def test_cli_random_and_checkpoint(davis, tmp_path, capsys):
    pytest.importorskip("ever.models")
    out = tmp_path / "random"
    sets = [x for kv in SMALL_MODEL for x in ("--set", kv)]
    assert main(["eval", "random", "--data", str(davis), "--out", str(out), *sets]) == 0
    assert json.loads((out / "summary.json").read_text())["method"] == "random"

    ckpt = tmp_path / "run" / "ckpt.pt"
    ckpt.parent.mkdir()
    _checkpoint(ckpt, SMALL_MODEL + ["eval.topk=3"])
    assert main(["eval", str(ckpt), "--data", str(davis), "--split", "val", "--set", "eval.n_context=2"]) == 0
    summary = json.loads((ckpt.parent / "eval" / "val" / "summary.json").read_text())  # default out
    assert summary["cfg"]["topk"] == 3  # the run's own eval settings, without --config
    assert summary["cfg"]["n_context"] == 2  # with --set on top
    assert "J&F" in capsys.readouterr().out
    assert (ckpt.parent / "ledger.json").is_file()  # the evaluation's cost joins the run's ledger


def test_cli_checkpoint_errors(davis, tmp_path, capsys):
    pytest.importorskip("ever.models")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    assert main(["eval", str(bad), "--data", str(davis)]) == 2
    assert "bad.pt" in capsys.readouterr().err

    # weights of one architecture under the config of another
    other = tmp_path / "other.pt"
    _checkpoint(other, SMALL_MODEL)
    ck = torch.load(other, weights_only=False)
    ck["config"]["model"]["width"] = 8
    torch.save(ck, other)
    assert main(["eval", str(other), "--data", str(davis)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "other.pt" in err

    # a --config describing another architecture than the checkpoint's
    good = tmp_path / "good.pt"
    _checkpoint(good, SMALL_MODEL)
    cfg_file = tmp_path / "wide.yaml"
    cfg_file.write_text("model:\n  width: 8\n")
    assert main(["eval", str(good), "--config", str(cfg_file), "--data", str(davis)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "good.pt" in err and "wide.yaml" in err
