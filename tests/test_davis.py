"""DAVIS-layout reader: lazy sequences, sparse masks, and one-line errors naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ever.data.davis import DavisDataset
from ever.errors import DataError

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "davis2016-dev"
PALETTE = [0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [128] * (256 * 3 - 12)


def save_mask(path: Path, labels: np.ndarray) -> None:
    im = Image.fromarray(labels.astype(np.uint8), mode="P")
    im.putpalette(PALETTE)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)


def moving_squares(T: int, H: int, W: int, n_objects: int = 1, step: int = 2, size: int = 16):
    """Frames (T, H, W, 3) uint8 and label maps (T, H, W): coloured squares moving right on a grey field."""
    colours = [(220, 30, 30), (30, 200, 40), (40, 60, 230)]
    frames = np.full((T, H, W, 3), 110, np.uint8)
    labels = np.zeros((T, H, W), np.int64)
    for t in range(T):
        for k in range(n_objects):
            y0, x0 = 4 + k * (size + 4), 4 + t * step
            frames[t, y0 : y0 + size, x0 : x0 + size] = colours[k]
            labels[t, y0 : y0 + size, x0 : x0 + size] = k + 1
    return frames, labels


def make_davis(
    root: Path,
    seqs: dict[str, tuple[int, int, int, int]],
    split: str = "val",
    imagesets: str = "2017",
    annotate_every: int = 1,
) -> Path:
    """Write a tiny DAVIS-layout folder: seqs = {name: (T, H, W, n_objects)} of moving squares."""
    for name, (T, H, W, n) in seqs.items():
        frames, labels = moving_squares(T, H, W, n)
        for t in range(T):
            fdir = root / "JPEGImages" / "480p" / name
            fdir.mkdir(parents=True, exist_ok=True)
            Image.fromarray(frames[t]).save(fdir / f"{t:05d}.jpg", quality=95)
            if t % annotate_every == 0:
                save_mask(root / "Annotations" / "480p" / name / f"{t:05d}.png", labels[t])
    sets = root / "ImageSets" / imagesets if imagesets else root / "ImageSets"
    sets.mkdir(parents=True, exist_ok=True)
    (sets / f"{split}.txt").write_text("".join(f"{s}\n" for s in seqs))
    return root


def test_reads_lazy_sequence(tmp_path):
    make_davis(tmp_path, {"a": (6, 40, 60, 2), "b": (3, 33, 47, 1)}, annotate_every=2)
    ds = DavisDataset(tmp_path, "val")
    assert ds.sequences == ["a", "b"]
    seq = ds.sequence("a")
    assert len(seq) == 6 and seq.size == (40, 60)
    frame = seq.frame(3)
    assert frame.shape == (40, 60, 3) and frame.dtype == np.uint8
    first = seq.first_mask()
    assert first.shape == (40, 60) and set(np.unique(first)) == {0, 1, 2}
    assert seq.object_ids == [1, 2]
    assert seq.mask(1) is None and seq.mask(2) is not None  # sparse annotations
    assert ds.sequence("b").size == (33, 47)


@pytest.mark.parametrize("imagesets", ["2016", ""])
def test_other_imageset_layouts(tmp_path, imagesets):
    make_davis(tmp_path, {"a": (2, 16, 16, 1)}, split="train", imagesets=imagesets)
    assert DavisDataset(tmp_path, "train").sequences == ["a"]


def test_missing_split_file(tmp_path):
    make_davis(tmp_path, {"a": (2, 16, 16, 1)})
    with pytest.raises(DataError, match=r"test\.txt.*not found"):
        DavisDataset(tmp_path, "test")


def test_listed_sequence_missing(tmp_path):
    make_davis(tmp_path, {"a": (2, 16, 16, 1)})
    (tmp_path / "ImageSets" / "2017" / "val.txt").write_text("a\nghost\n")
    with pytest.raises(DataError, match="ghost"):
        DavisDataset(tmp_path, "val")


def test_no_frames(tmp_path):
    make_davis(tmp_path, {"a": (2, 16, 16, 1)})
    for p in (tmp_path / "JPEGImages" / "480p" / "a").iterdir():
        p.unlink()
    with pytest.raises(DataError, match="no JPEG frames"):
        DavisDataset(tmp_path, "val").sequence("a")


def test_missing_first_annotation(tmp_path):
    make_davis(tmp_path, {"a": (2, 16, 16, 1)})
    (tmp_path / "Annotations" / "480p" / "a" / "00000.png").unlink()
    with pytest.raises(DataError, match=r"00000\.png.*first frame"):
        DavisDataset(tmp_path, "val").sequence("a")


def test_mask_size_mismatch(tmp_path):
    make_davis(tmp_path, {"a": (2, 16, 16, 1)})
    save_mask(tmp_path / "Annotations" / "480p" / "a" / "00001.png", np.zeros((8, 16)))
    seq = DavisDataset(tmp_path, "val").sequence("a")
    with pytest.raises(DataError, match=r"00001\.png: mask is 16x8, frame is 16x16"):
        seq.mask(1)


def test_rgb_mask_rejected(tmp_path):
    make_davis(tmp_path, {"a": (2, 16, 16, 1)})
    Image.new("RGB", (16, 16)).save(tmp_path / "Annotations" / "480p" / "a" / "00001.png")
    seq = DavisDataset(tmp_path, "val").sequence("a")
    with pytest.raises(DataError, match=r"00001\.png: mask must be an indexed"):
        seq.mask(1)


def test_unreadable_jpeg(tmp_path):
    make_davis(tmp_path, {"a": (3, 16, 16, 1)})
    (tmp_path / "JPEGImages" / "480p" / "a" / "00002.jpg").write_bytes(b"not a jpeg")
    seq = DavisDataset(tmp_path, "val").sequence("a")
    seq.frame(1)
    with pytest.raises(DataError, match=r"00002\.jpg: unreadable"):
        seq.frame(2)


def test_grayscale_binary_mask(tmp_path):
    make_davis(tmp_path, {"a": (2, 16, 16, 1)})
    m = np.zeros((16, 16), np.uint8)
    m[2:6, 2:6] = 255
    Image.fromarray(m, mode="L").save(tmp_path / "Annotations" / "480p" / "a" / "00001.png")
    mask = DavisDataset(tmp_path, "val").sequence("a").mask(1)
    assert set(np.unique(mask)) == {0, 1} and mask.sum() == 16


def test_void_label_is_not_an_object(tmp_path):
    make_davis(tmp_path, {"a": (2, 16, 16, 1)})
    first = np.zeros((16, 16), np.uint8)
    first[2:6, 2:6] = 1
    first[0, :] = 255  # DAVIS-2017 void
    save_mask(tmp_path / "Annotations" / "480p" / "a" / "00000.png", first)
    seq = DavisDataset(tmp_path, "val").sequence("a")
    assert set(np.unique(seq.first_mask())) == {0, 1, 255}  # the reader keeps void; it is not an object
    assert seq.object_ids == [1]


@pytest.mark.skipif(not DEV.is_dir(), reason="davis2016-dev not available")
def test_real_davis2016_dev():
    ds = DavisDataset(DEV, "train")
    assert len(ds.sequences) == 15
    seq = ds.sequence("dog-agility")
    assert len(seq) == 25 and seq.size == (480, 854)
    assert seq.frame(24).shape == (480, 854, 3)
    assert seq.object_ids == [1]
    assert ds.keypoints_file("bear") is not None and ds.keypoints_file("boat") is None
