"""Training on a mix of roots: per-root weights, near-duplicate groups, the real-video-extra manifest."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from ever.config import ConfigError, DataConfig, load_config
from ever.data import manifest
from ever.data.clips import ClipDataset, find_videos, find_videos_by_root, video_weights
from ever.data.synth import SynthConfig, generate
from ever.errors import DataError

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-video-extra"


@pytest.fixture(scope="module")
def two_roots(tmp_path_factory) -> tuple[Path, Path]:
    """Root ``a``: 3 distinct videos; root ``b``: 1 video and 4 copies named like near-duplicates."""
    base = tmp_path_factory.mktemp("mix")
    generate(base / "s", SynthConfig(num_train=3, num_eval=1, frames_train=10, frames_eval=4, height=48, width=64))
    a, b = base / "a", base / "b"
    shutil.copytree(base / "s" / "videos" / "train", a)
    b.mkdir()
    src = sorted(a.glob("*.mp4"))
    shutil.copy(src[0], b / "street.mp4")
    for k in range(4):
        shutil.copy(src[1 + k % 2], b / f"asl_{k}.mp4")
    return a, b


# --------------------------------------------------------------------------------------- weights


def test_video_weights_groups_and_root_shares():
    names = ["x.mp4", "y.mp4", "asl_a.mkv", "asl_b.mkv", "asl_c.mkv", "z.mp4"]
    root_of = [0, 0, 1, 1, 1, 1]
    w = video_weights(root_of, names)  # every video alike
    assert np.allclose(w, 1 / 6)
    w = video_weights(root_of, names, groups=["asl_*"])  # the three asl clips weigh one video together
    assert np.allclose(w * 4, [1, 1, 1 / 3, 1 / 3, 1 / 3, 1]) and np.isclose(w.sum(), 1)
    w = video_weights(root_of, names, root_weights=[1, 3], groups=["asl_*"])
    assert np.isclose(w[:2].sum(), 0.25) and np.isclose(w[2:].sum(), 0.75)
    assert np.isclose(w[5], 0.75 / 2) and np.allclose(w[2:5], 0.75 / 2 / 3)  # group = one video of root 1
    # a pattern groups within a root: the same name pattern in two roots makes two groups
    w = video_weights([0, 0, 1, 1], ["asl_1", "asl_2", "asl_3", "asl_4"], groups=["asl_*"])
    assert np.allclose(w, 0.25)


def test_videos_are_listed_per_root_and_an_overlap_belongs_to_the_first(two_roots):
    a, b = two_roots
    by_root = find_videos_by_root([str(b), str(a), str(a / "train000.mp4")])
    assert [len(v) for v in by_root] == [5, 3, 0]
    assert find_videos([str(a), str(b)]) == sorted(by_root[0] + by_root[1])


def test_equal_weights_keep_the_round_robin_of_before(two_roots):
    a, b = two_roots
    ds = ClipDataset([str(a), str(b)], clip_len=3, size=32, seed=1, groups=["nothing_*"])
    assert ds._cum is None and [ds._pick(i) for i in range(10)] == [i % 8 for i in range(10)]
    plain = ClipDataset([str(a), str(b)], clip_len=3, size=32, seed=1)
    assert torch.equal(ds[5], plain[5])


def test_weighted_picks_follow_the_weights_and_are_a_function_of_seed_and_index(two_roots):
    a, b = two_roots
    kw = dict(clip_len=3, size=32, root_weights=[1.0, 3.0], groups=["asl_*"])
    ds = ClipDataset([str(a), str(b)], seed=0, **kw)
    assert ds.root_shares() == pytest.approx({str(a): 0.25, str(b): 0.75})
    n = 4000
    picks = [ds._pick(i) for i in range(n)]
    freq = np.bincount(picks, minlength=len(ds)) / n
    assert np.abs(freq - ds.weights).max() < 2 / n * 10  # quasi-random: within a few 1/n of the weights
    names = Counter(ds.videos[k][0].name for k in picks[:80])
    assert names["street.mp4"] == pytest.approx(80 * 0.375, abs=2)  # even in a short run of samples
    assert sum(v for k, v in names.items() if k.startswith("asl_")) == pytest.approx(80 * 0.375, abs=2)
    again = ClipDataset([str(a), str(b)], seed=0, **kw)
    assert [again._pick(i) for i in range(n)] == picks
    assert torch.equal(again[123], ds[123])  # same (seed, i): same video, same clip
    other = ClipDataset([str(a), str(b)], seed=1, **kw)
    assert [other._pick(i) for i in range(50)] != picks[:50]


def test_a_weighted_root_without_usable_videos_is_an_error(two_roots, tmp_path):
    a, _ = two_roots
    from PIL import Image

    clip = tmp_path / "short" / "clip"
    clip.mkdir(parents=True)
    for t in range(2):  # 2 frames: shorter than a 3-frame clip
        Image.fromarray(np.full((48, 64, 3), 40 * t, np.uint8)).save(clip / f"{t:05d}.jpg")
    with pytest.raises(DataError, match="short: data root has no usable video"):
        ClipDataset([str(a), str(tmp_path / "short")], clip_len=3, size=32, root_weights=[1, 1], max_fail_frac=1.0)
    with pytest.raises(DataError, match="2 root weights for 1 roots"):
        ClipDataset([str(a)], clip_len=3, size=32, root_weights=[1, 1])


def test_training_batches_resume_exactly_with_weights(two_roots, tmp_path):
    """Step s of a run started at step k is the batch step s of a run from step 0 had (the resume contract)."""
    from ever.train import build_loader

    a, b = two_roots

    class Patches:
        needs_segments = False

    cfg = load_config(
        None,
        [
            f"data.roots=[{a}, {b}]",
            "data.root_weights=[1, 2]",
            "data.groups=['asl_*']",
            "data.num_workers=0",
            "data.size=32",
            "data.clip_len=3",
            "train.steps=4",
            "train.batch_size=3",
            "nodes.patch_size=16",
            "nodes.patch_stride=16",
            "seed=5",
        ],
    )
    full = [batch[0] for batch in build_loader(cfg, 0, 0, 1, torch.device("cpu"), Patches())]
    resumed = [batch[0] for batch in build_loader(cfg, 2, 0, 1, torch.device("cpu"), Patches())]
    assert len(full) == 4 and len(resumed) == 2
    assert all(torch.equal(x, y) for x, y in zip(full[2:], resumed))


# ---------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "sets, message",
    [
        (["data.roots=[a, b]", "data.root_weights=[1]"], "one weight per root"),
        (["data.roots=[a, b]", "data.root_weights=[1, 0]"], "finite and > 0"),
        (["data.roots=[a, a]"], "names a root twice"),
        (["data.groups=['x', 'x']"], "distinct, non-empty"),
        (["data.groups=['']"], "distinct, non-empty"),
    ],
)
def test_bad_mixes_are_one_line_config_errors(sets, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, sets)


def test_default_groups_are_the_near_duplicates_the_manifests_declare():
    declared = [p for name in manifest.list_datasets() for p in manifest.load_manifest(name).get("near_duplicates", [])]
    assert DataConfig().groups == declared == ["intel_asl_gestures_*"]


# -------------------------------------------------------------------------------- real-video-extra


def test_real_video_extra_manifest_lists_35_videos_by_source():
    m = manifest.load_manifest("real-video-extra")
    files = [f["path"] for f in m["checksums"]["files"]]
    assert len(files) == len(set(files)) == m["num_videos"] == 35
    from fnmatch import fnmatchcase

    repos = m["source"]["repositories"]
    assert all(sum(fnmatchcase(f, r["files"]) for r in repos) == 1 for f in files)  # one licence per file
    assert {r["licence"].split(" (")[0] for r in repos} == {"Apache-2.0", "CC BY 4.0", "CC BY-NC 4.0"}
    assert sum(fnmatchcase(f, m["near_duplicates"][0]) for f in files) == 20


@pytest.mark.skipif(not REAL.is_dir(), reason=f"{REAL} not present (shared training video)")
def test_real_video_extra_verifies_and_its_sign_language_clips_do_not_dominate():
    assert manifest.verify("real-video-extra", REAL) == []
    ds = ClipDataset([str(REAL)], clip_len=4, frame_stride=2, size=64, groups=DataConfig().groups)
    assert len(ds) == 35 and not ds.skipped
    asl = sum(w for (p, _, _), w in zip(ds.videos, ds.weights) if p.name.startswith("intel_asl_gestures_"))
    assert asl == pytest.approx(1 / 16)  # 20 clips of one scene weigh as 1 video of 16 (were 20 of 35)


# ------------------------------------------------------------------------------------ frame folders


def test_frames_are_extracted_once_resized_and_train_like_the_videos(two_roots, tmp_path, capsys):
    from ever.cli import main
    from ever.data.video import FrameFolder, open_video

    a, b = two_roots
    out = tmp_path / "frames"
    assert main(["data", "frames", str(a), str(b / "asl_0.mp4"), "--out", str(out), "--short-side", "24"]) == 0
    assert "4 videos written (40 frames)" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["asl_0", "train000", "train001", "train002"]  # no temp left
    src, dst = open_video(a / "train001.mp4"), open_video(out / "train001")
    assert isinstance(dst, FrameFolder) and len(dst) == len(src) == 10
    x, y = src.get([0, 9]), dst.get([0, 9])
    assert y.shape == (2, 24, 32, 3)  # 48 x 64 -> short side 24
    small = torch.nn.functional.interpolate(
        torch.from_numpy(x).permute(0, 3, 1, 2).float(), size=(24, 32), mode="bilinear", antialias=True
    )
    assert np.abs(small.permute(0, 2, 3, 1).numpy() - y).mean() < 8  # the same pictures, up to JPEG
    (out / "train000" / "00003.jpg").unlink()  # a rerun skips what exists
    assert main(["data", "frames", str(a), "--out", str(out)]) == 0
    assert "every video was already there" in capsys.readouterr().out
    ds = ClipDataset([str(out)], clip_len=3, size=16, groups=["asl_*"])
    assert len(ds) == 4 and ds[0].shape == (3, 3, 16, 16)
    from ever.data.frames import extract_frames

    shutil.copy(b / "asl_0.mp4", tmp_path / "asl_0.mp4")
    with pytest.raises(DataError, match="named 'asl_0'"):  # two videos, one folder name
        extract_frames([str(b), str(tmp_path / "asl_0.mp4")], tmp_path / "other")
