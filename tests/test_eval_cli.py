"""evaluate() and `ever eval`: files written, scores of trivial cases, baselines, checkpoint errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from test_davis import make_davis

from ever.cli import main
from ever.config import EvalConfig, load_config
from ever.errors import DataError
from ever.evaluate.run import evaluate
from ever.models import EverModel

SMALL_MODEL = ["model.width=4", "model.blocks=[1,1,1,1]", "model.proj_dim=8"]


@pytest.fixture
def davis(tmp_path):
    root = make_davis(tmp_path / "davis", {"one": (5, 40, 56, 1), "two": (4, 48, 40, 2)})
    kp = {
        "annotated_frames": [
            {"frame": f"{t:05d}", "joints_xy_480p": [[8.0 + 2 * t, 8.0], [0, 0]], "visible": [True, False]}
            for t in (0, 2, 4)
        ]
    }
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
    first = root / "Annotations" / "480p" / "s" / "00000.png"
    for t in range(1, 4):  # every frame annotated exactly like frame 0
        (root / "Annotations" / "480p" / "s" / f"{t:05d}.png").write_bytes(first.read_bytes())
    s = evaluate("copy", root, "val", tmp_path / "o", EvalConfig(), "copy")
    assert s["J&F-Mean"] == 1.0 and s["J-Recall"] == 1.0 and s["F-Mean"] == 1.0
    del save_mask


def test_cli_lab_with_overlays(davis, tmp_path, capsys):
    out = tmp_path / "lab"
    rc = main(
        [
            "eval",
            "lab",
            "--data",
            str(davis),
            "--split",
            "val",
            "--out",
            str(out),
            "--set",
            "eval.overlays=true",
            "--set",
            "eval.n_context=2",
        ]
    )
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
    cfg = load_config(None, overrides)
    model = EverModel(cfg.model)
    torch.save({"model": {f"model.{k}": v for k, v in model.state_dict().items()}, "config": cfg.to_dict()}, path)
    return cfg


def test_cli_random_and_checkpoint(davis, tmp_path, capsys):
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


# ------------------------------------------------------------------ predictions out, results survive failure


def test_save_masks_davis_layout_and_keypoints(davis, tmp_path, capsys):
    from PIL import Image

    masks = tmp_path / "pred"
    assert (
        main(
            [
                "eval",
                "copy",
                "--data",
                str(davis),
                "--split",
                "val",
                "--out",
                str(tmp_path / "o"),
                "--save-masks",
                str(masks),
            ]
        )
        == 0
    )
    assert "(badja)" in capsys.readouterr().out  # the PCK convention is named
    assert sorted(p.name for p in masks.iterdir()) == ["keypoints", "one", "two"]
    assert sorted(p.name for p in (masks / "two").iterdir()) == [f"{t:05d}.png" for t in range(4)]
    gt_png = Image.open(davis / "Annotations" / "480p" / "two" / "00000.png")
    for t in range(4):  # copy baseline: every predicted frame is the first mask, in its palette
        im = Image.open(masks / "two" / f"{t:05d}.png")
        assert im.mode == "P" and im.getpalette() == gt_png.getpalette()
        assert (np.asarray(im) == np.asarray(gt_png)).all()
    kp = json.loads((masks / "keypoints" / "one.json").read_text())
    assert kp["pck_convention"] == "badja"
    assert [f["frame"] for f in kp["annotated_frames"]] == ["00000", "00002", "00004"]
    assert kp["annotated_frames"][1]["joints_xy_480p"] == [[8.0, 8.0], None]  # copied joint, invisible joint


def _bad_mask(root, seq, t):
    (root / "Annotations" / "480p" / seq / f"{t:05d}.png").write_bytes(b"not a png")


def test_results_survive_an_error_and_resume_skips_done_sequences(davis, tmp_path, monkeypatch):
    import ever.evaluate.run as R

    out = tmp_path / "out"
    _bad_mask(davis, "two", 2)
    with pytest.raises(DataError, match=r"two/00002.png"):
        evaluate("copy", davis, "val", out, EvalConfig(), "copy")
    assert (out / "sequences" / "one.json").is_file()  # sequence 1 is kept ...
    assert [r["sequence"] for r in csv.DictReader((out / "per_sequence.csv").open())] == ["one"]
    assert not (out / "summary.json").exists()  # ... and no summary claims the set is done

    make_davis(tmp_path / "fixed", {"two": (4, 48, 40, 2)})
    src = tmp_path / "fixed" / "Annotations" / "480p" / "two" / "00002.png"
    (davis / "Annotations" / "480p" / "two" / "00002.png").write_bytes(src.read_bytes())
    done = []
    real = R._evaluate_sequence
    monkeypatch.setattr(R, "_evaluate_sequence", lambda ds, name, *a: done.append(name) or real(ds, name, *a))
    s = evaluate("copy", davis, "val", out, EvalConfig(), "copy")
    assert done == ["two"] and s["resumed_sequences"] == 1 and s["num_objects"] == 3
    assert [r["sequence"] for r in csv.DictReader((out / "per_sequence.csv").open())] == ["one", "two", "two"]
    fresh = evaluate("copy", davis, "val", tmp_path / "fresh", EvalConfig(), "copy")
    assert s["J&F-Mean"] == pytest.approx(fresh["J&F-Mean"])  # the resumed score is the full score
    # other settings (or another method) -> computed again
    done.clear()
    evaluate("copy", davis, "val", out, EvalConfig(topk=3), "copy")
    assert done == ["one", "two"]
    done.clear()
    evaluate("copy", davis, "val", out, EvalConfig(topk=3), "copy", identity="another checkpoint")
    assert done == ["one", "two"]


@pytest.mark.parametrize("how", ["file", "readonly"])
def test_unwritable_output_is_one_line_before_any_work(davis, tmp_path, capsys, how, monkeypatch):
    import os

    import ever.evaluate.run as R

    if how == "file":
        out = tmp_path / "taken"
        out.write_text("a file in the way")
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        out = ro / "out"
        if os.geteuid() == 0:  # root writes into read-only folders: make the write fail as it would
            import ever.utils

            real = ever.utils.tempfile.mkstemp

            def denied(*a, **k):
                if str(k.get("dir", "")).startswith(str(ro)):
                    raise PermissionError(13, "Permission denied")
                return real(*a, **k)

            monkeypatch.setattr(ever.utils.tempfile, "mkstemp", denied)
    monkeypatch.setattr(R, "DavisDataset", lambda *a: pytest.fail("work started"))
    assert main(["eval", "copy", "--data", str(davis), "--split", "val", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(out) in err
    # the same for --save-masks
    assert (
        main(
            [
                "eval",
                "copy",
                "--data",
                str(davis),
                "--split",
                "val",
                "--out",
                str(tmp_path / "ok"),
                "--save-masks",
                str(out),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(out) in err


def test_one_frame_sequence_is_warned_and_counted(tmp_path):
    root = make_davis(tmp_path / "d", {"long": (5, 32, 32, 1), "single": (1, 32, 32, 1), "pair": (2, 32, 32, 1)})
    with pytest.warns(UserWarning, match="sequence skipped, nothing to score") as caught:
        s = evaluate("copy", root, "val", tmp_path / "o", EvalConfig(), "copy")
    assert sorted(str(w.message).split(":")[0].rsplit("/", 1)[1] for w in caught) == ["pair", "single"]
    assert [x["sequence"] for x in s["skipped_sequences"]] == ["single", "pair"]
    assert s["num_sequences"] == 3 and s["num_objects"] == 1


def test_void_label_is_no_object_and_saved_as_background(tmp_path):
    from PIL import Image
    from test_davis import save_mask

    root = make_davis(tmp_path / "d", {"s": (4, 32, 32, 1)})
    first = root / "Annotations" / "480p" / "s" / "00000.png"
    m = np.asarray(Image.open(first)).astype(np.int64)
    m[0:2, :] = 255  # a void band
    save_mask(first, m)
    s = evaluate("copy", root, "val", tmp_path / "o", EvalConfig(), "copy", save_masks=tmp_path / "p")
    assert s["num_objects"] == 1
    saved = np.asarray(Image.open(tmp_path / "p" / "s" / "00001.png"))
    assert saved.max() == 1 and (saved[0:2] == 0).all()


def test_pck_conventions_of_files(davis, tmp_path):
    kp_file = davis / "keypoints" / "one.json"
    ann = json.loads(kp_file.read_text())
    ann["pck_convention"] = "jhmdb"
    kp_file.write_text(json.dumps(ann))
    s = evaluate("copy", davis, "val", tmp_path / "o", EvalConfig(), "copy")
    assert s["pck_convention"] == "jhmdb" and s["keypoints"]["one"]["pck_convention"] == "jhmdb"
    # one visible joint per frame: the JHMDB box is a point (0 px), so only exact positions count; the
    # copy is exact on frame 0 only, which is not scored -> 0
    assert s["PCK@0.2"] == 0.0
    ann["pck_convention"] = "coco"
    kp_file.write_text(json.dumps(ann))
    with pytest.raises(DataError, match="one.json: pck_convention must be one of badja, jhmdb"):
        evaluate("copy", davis, "val", tmp_path / "o2", EvalConfig(), "copy")


def test_eval_stage_override_is_read_from_the_set_options():
    from ever.evaluate.run import _stage_override

    assert _stage_override(["eval.topk=5", "model.eval_stage=layer3"]) == "layer3"
    assert _stage_override(["eval.topk=5"]) is None


def test_eval_sequences_scores_a_subset_and_reuses_its_records(davis, tmp_path):
    out = tmp_path / "sub"
    s = evaluate("copy", davis, "val", out, EvalConfig(sequences=["two"]), "copy")
    assert s["num_sequences"] == 1 and s["num_objects"] == 2 and "keypoints" not in s
    rows = list(csv.DictReader((out / "per_sequence.csv").open()))
    assert {r["sequence"] for r in rows} == {"two"}
    full = evaluate("copy", davis, "val", out, EvalConfig(), "copy")  # the subset's record is reused
    assert full["num_sequences"] == 2 and full["resumed_sequences"] == 1
    with pytest.raises(DataError, match="no sequence 'three'"):
        evaluate("copy", davis, "val", tmp_path / "x", EvalConfig(sequences=["three"]), "copy")


# ----------------------------------------------------------------------------- issue #30: nothing silent


def _error_line(err: str) -> str:
    """The one error line of a run's stderr (after its progress bar); never a traceback."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.replace("\r", "\n").splitlines() if ln.startswith("ever: error:")]
    assert len(lines) == 1, err
    return lines[0]


def _strict_json(path):
    """Parse as strict JSON: a bare NaN or Infinity (not JSON) fails."""

    def refuse(name):
        raise ValueError(f"{path}: {name} is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_no_scorable_frame_is_one_line_and_the_summary_is_valid_json(tmp_path, capsys):
    """Ground truth only on frame 0 (the input): nothing to score. Says so, exit 2, summary.json strict JSON."""
    root = make_davis(tmp_path / "d", {"a": (5, 32, 40, 1), "b": (4, 32, 40, 1)}, annotate_every=99)
    out = tmp_path / "o"
    assert main(["eval", "copy", "--data", str(root), "--split", "val", "--out", str(out)]) == 2
    err = _error_line(capsys.readouterr().err)
    assert err.startswith(f"ever: error: {root}: no frame could be scored"), err
    assert "2 sequence(s)" in err and str(out / "summary.json") in err
    summary = _strict_json(out / "summary.json")
    assert summary["J&F-Mean"] is None and summary["J-Mean"] is None and summary["num_sequences"] == 2
    for f in (out / "sequences").iterdir():
        _strict_json(f)
    s = evaluate("copy", root, "val", out, EvalConfig(), "copy")  # the records (nulls on disk) read back
    assert s["resumed_sequences"] == 2 and np.isnan(s["J&F-Mean"])


def test_corrected_ground_truth_is_scored_again(davis, tmp_path):
    """The 'already done' check hashes the sequence's annotations: a rerun after a fix is not the old score."""
    out = tmp_path / "out"
    before = evaluate("copy", davis, "val", out, EvalConfig(), "copy")
    ann = davis / "Annotations" / "480p" / "one"
    for f in sorted(ann.glob("*.png"))[1:]:  # 'corrected' masks of frames 1..: shifted by 6 px
        from PIL import Image

        with Image.open(f) as im:
            pal, m = im.getpalette(), np.asarray(im)
        fixed = Image.fromarray(np.roll(m, 6, axis=1), mode="P")
        fixed.putpalette(pal)
        fixed.save(f)
    again = evaluate("copy", davis, "val", out, EvalConfig(), "copy")
    fresh = evaluate("copy", davis, "val", tmp_path / "fresh", EvalConfig(), "copy")
    assert again["resumed_sequences"] == 1  # 'two' is unchanged and reused; 'one' is scored again
    assert again["J&F-Mean"] == pytest.approx(fresh["J&F-Mean"]) and again["J&F-Mean"] != pytest.approx(
        before["J&F-Mean"]
    )


def test_a_full_disk_during_eval_names_the_file(davis, tmp_path, capsys, monkeypatch):
    from conftest import fill_disk

    out = tmp_path / "out"
    fill_disk(monkeypatch, full=lambda p: p.name.startswith(".two.json"))  # the disk fills up at sequence 'two'
    assert main(["eval", "copy", "--data", str(davis), "--split", "val", "--out", str(out)]) == 2
    err = _error_line(capsys.readouterr().err)
    assert (
        err == f"ever: error: {out / 'sequences' / 'two.json'}: No space left on device (results and checkpoints "
        "written so far are kept)"
    ), err
    assert (out / "sequences" / "one.json").is_file() and not (out / "sequences" / "two.json").exists()
    assert not list((out / "sequences").glob(".*.tmp"))  # no temp file left behind


def test_davis_frames_named_without_padding_are_read_in_natural_order(tmp_path):
    """A DAVIS-layout sequence named 0.jpg ... 11.jpg (ffmpeg's %d): frames 2..9 come before 10, 11."""
    from ever.data.davis import DavisDataset

    root = make_davis(tmp_path / "d", {"a": (12, 32, 40, 1)})
    for sub, ext in (("JPEGImages", ".jpg"), ("Annotations", ".png")):
        for f in sorted((root / sub / "480p" / "a").iterdir()):
            f.rename(f.with_name(f"{int(f.stem)}{ext}"))
    seq = DavisDataset(root, "val").sequence("a")
    assert [seq.frame_stem(i) for i in range(12)] == [str(t) for t in range(12)]
    assert evaluate("copy", root, "val", tmp_path / "o", EvalConfig(), "copy")["frames"] == 12
