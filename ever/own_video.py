"""Use EVER on your own video: carry a first-frame mask (and points) through every frame.

    ever propagate clip.mp4 --mask first.png [--points first.json] [--model NAME|CHECKPOINT] --out DIR
    r = ever.propagate("clip.mp4", "first.png", out="DIR", points=None, model=None)   # -> Propagation

Inputs:

* the video: any file decord reads (.mp4, .avi, .webm, .mkv, ...) or a folder of JPEG/PNG frames (sorted
  by file name);
* the mask of its first frame, the size of the frames: a palette PNG (DAVIS style: index = object id,
  255 = void), a grey PNG (each value 1..254 one object, 0 background, 255 void; a 0/255 or 1-bit mask is
  one object, id 1), or an RGB PNG (each colour one object, black background, ids 1..K in sorted order);
* points (optional), a JSON file of pixel positions in the first frame, names optional::

      {"points": [[x, y], ...], "names": ["nose", ...]}

Outputs in ``DIR``:

* ``masks/<frame>.png``: one palette PNG per frame, the size of the video, pixel = object id (the
  mask's palette is kept; grey and RGB masks get the DAVIS palette);
* ``points.json`` (with points): ``{"names": [...], "size": [W, H], "frames": [{"frame": stem,
  "points": [[x, y], ...]}, ...]}``;
* ``overlay.mp4``: the frames with the masks blended in and the points drawn (H.264, imageio-ffmpeg).

``<frame>`` is the file stem of a frame folder, else the frame index as ``00000``. The propagation is
``ever eval``'s own (:func:`ever.evaluate.propagation.propagate_masks`,
:func:`ever.evaluate.keypoints.propagate_keypoints`) with the settings of the model's ``eval`` config
(every field that names one of their parameters: n_context, topk, radius, temperature, long_side,
context, ...). Frames are read ``chunk`` at a time and each mask is written as soon as it is made, so
memory does not grow with the length of the video (but for the points' positions, J x 2 numbers a frame,
kept for the overlay). Points take a second pass over the video.
"""
from __future__ import annotations

import inspect
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ever.data.davis import VOID
from ever.data.video import FRAME_EXTS, FrameFolder, Video, open_video
from ever.errors import DataError

IMAGE_EXTS = FRAME_EXTS + (".png",)
CHUNK = 8  # frames read (and encoded) at a time
MAX_GREY_LEVELS = 32  # more distinct grey values than this is not a mask of object ids


def davis_palette() -> np.ndarray:
    """The DAVIS/PASCAL VOC palette (256, 3) uint8: index i -> the colour of object i (1 red, 2 green, ...)."""
    from ever.data.davis import davis_palette as flat

    return np.array(flat(), np.uint8).reshape(256, 3)


# ----------------------------------------------------------------------------- inputs

class ImageFolder(FrameFolder):
    """A folder of JPEG or PNG frames, sorted by file name (``FrameFolder`` reads JPEG only)."""

    def __init__(self, path: str | Path, fps: float = 24.0):
        self.path, self.fps = Path(path), float(fps)
        self.files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_EXTS)
        if not self.files:
            raise DataError(f"{self.path}: folder contains no .jpg or .png frames")


def open_frames(path: str | Path) -> Video:
    """A video file (decord) or a JPEG/PNG frame folder; unreadable input raises a one-line DataError."""
    p = Path(path)
    return ImageFolder(p) if p.is_dir() else open_video(p)


def read_mask(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A first-frame mask PNG (formats in the module docstring) -> labels (H, W) uint8 (0 background,
    1..254 objects, 255 void) and the palette (256, 3) uint8 of the output masks."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: unreadable mask image ({e})".splitlines()[0]) from None
    palette = davis_palette()
    if im.mode == "P":
        labels = np.asarray(im, np.uint8)
        pal = np.asarray(im.getpalette() or [], np.uint8).reshape(-1, 3)[:256]
        palette[: len(pal)] = pal
    elif im.mode in ("RGB", "RGBA"):
        rgb = np.asarray(im.convert("RGB")).reshape(-1, 3)
        colours, inverse = np.unique(rgb, axis=0, return_inverse=True)  # sorted; black (if any) first
        ids = np.cumsum(colours.any(1))  # black -> 0, the others 1..K
        if ids[-1] > 254:
            raise DataError(f"{path}: {ids[-1]} colours: at most 254 objects")
        labels = np.where(colours.any(1), ids, 0)[inverse.reshape(-1)].reshape(im.size[1], im.size[0]).astype(np.uint8)
        palette[ids[colours.any(1)]] = colours[colours.any(1)]
    else:  # 1, L, LA, I, I;16: grey levels
        grey = np.asarray(im.convert("L") if im.mode in ("1", "LA") else im)
        if grey.max(initial=0) > 255:
            raise DataError(f"{path}: grey values up to {grey.max()}: use an 8-bit mask (values 0..255)")
        values = set(np.unique(grey).tolist()) - {0}
        if len(values) > MAX_GREY_LEVELS:  # an anti-aliased or photographic mask, not object ids
            raise DataError(f"{path}: grey mask with {len(values)} levels (anti-aliased?): save a palette PNG or a "
                            f"binary 0/255 mask")
        labels = (grey == 255).astype(np.uint8) if values == {VOID} else grey.astype(np.uint8)
    return labels, palette


def read_points(path: str | Path, size: tuple[int, int]) -> tuple[np.ndarray, list[str]]:
    """Points JSON (module docstring) -> xy (J, 2) float64 pixels, names (J,). ``size`` = (H, W) of the frames."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: unreadable points JSON ({e})".splitlines()[0]) from None
    try:
        xy = np.asarray(data["points"], np.float64)
        names = [str(n) for n in data.get("names", range(len(xy)))]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise DataError(f'{path}: expected {{"points": [[x, y], ...], "names": [...] (optional)}}') from None
    if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) == 0 or not np.isfinite(xy).all():
        raise DataError(f"{path}: 'points' must be a non-empty list of [x, y] numbers")
    if len(names) != len(xy):
        raise DataError(f"{path}: {len(names)} names for {len(xy)} points")
    H, W = size
    outside = np.flatnonzero((xy[:, 0] < 0) | (xy[:, 0] > W - 1) | (xy[:, 1] < 0) | (xy[:, 1] > H - 1))
    if len(outside):
        j = outside[0]
        raise DataError(f"{path}: point {names[j]!r} at {xy[j].tolist()} is outside the {W}x{H} frame")
    return xy, names


class Stream:
    """A video as the ``seq`` of ``propagate_masks``/``propagate_keypoints``: ``len``, ``size`` (H, W),
    ``frame(i)`` (H, W, 3) uint8, ``first_mask()``, ``object_ids``, ``frame_stem(i)``.

    Frames are decoded ``chunk`` at a time; the current and the previous chunk are kept (the results of a
    frame arrive after the next frames were read), anything older is decoded again when asked for.
    """

    def __init__(self, video: Video, first_mask: np.ndarray, chunk: int = CHUNK):
        self.video, self._mask, self.chunk = video, first_mask, chunk
        self.size = tuple(video.get([0])[0].shape[:2])
        self.object_ids = [int(i) for i in np.unique(first_mask) if i not in (0, VOID)]
        self._blocks: list[tuple[int, np.ndarray]] = []  # (first index, (n, H, W, 3)), at most 2

    def __len__(self) -> int:
        return len(self.video)

    def first_mask(self) -> np.ndarray:
        return self._mask

    def frame_stem(self, i: int) -> str:
        files = getattr(self.video, "files", None)
        return files[i].stem if files else f"{i:05d}"

    def frame(self, i: int) -> np.ndarray:
        for start, block in self._blocks:
            if start <= i < start + len(block):
                return block[i - start]
        block = self.video.get(range(i, min(i + self.chunk, len(self))))
        self._blocks = self._blocks[-1:] + [(i, block)]
        return block[0]


# ----------------------------------------------------------------------------- outputs

class VideoWriter:
    """H.264 mp4 writer (imageio-ffmpeg), frames (H, W, 3) uint8 padded to even sides; written to a temp
    file in the same folder and renamed on :meth:`close` (an interrupted run leaves no half video)."""

    def __init__(self, path: Path, size: tuple[int, int], fps: float):
        import imageio_ffmpeg

        self.path, (H, W) = path, size
        self.pad = (H % 2, W % 2)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".mp4")
        os.close(fd)
        self.tmp = Path(tmp)
        self.gen = imageio_ffmpeg.write_frames(str(self.tmp), (W + self.pad[1], H + self.pad[0]), fps=fps or 24.0,
                                               macro_block_size=1, ffmpeg_log_level="error", quality=7)
        self.gen.send(None)

    def write(self, rgb: np.ndarray) -> None:
        if any(self.pad):
            rgb = np.pad(rgb, ((0, self.pad[0]), (0, self.pad[1]), (0, 0)), mode="edge")
        self.gen.send(np.ascontiguousarray(rgb))

    def close(self, keep: bool = True) -> None:
        self.gen.close()
        if keep:
            os.chmod(self.tmp, 0o644)
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- propagation

@dataclass
class Propagation:
    """What :func:`propagate` wrote: ``masks`` (folder of ``frames`` PNGs), ``overlay`` (mp4), ``points``
    (JSON or None), the object ids, the model's name, and the speed of the mask pass."""

    out: Path
    masks: Path
    overlay: Path
    points: Path | None
    frames: int
    size: tuple[int, int]  # (H, W)
    object_ids: list[int]
    model: str
    frames_per_s: float


def protocol_kwargs(fn, eval_cfg) -> dict[str, Any]:
    """The fields of an ``EvalConfig`` that name parameters of ``fn`` (so protocol settings flow through)."""
    params = inspect.signature(fn).parameters
    return {k: v for k, v in asdict(eval_cfg).items() if k in params}


def propagate(video: str | Path, mask: str | Path, out: str | Path, points: str | Path | None = None,
              model: str | Path | None = None, overrides: list[str] | None = None, device: str | None = None,
              progress: bool = True) -> Propagation:
    """Propagate ``mask`` (and ``points``) through ``video`` with ``model`` (a shipped name, a checkpoint
    path, or None for the shipped default) and write ``out/masks/*.png``, ``out/points.json``,
    ``out/overlay.mp4`` (module docstring). ``overrides``: ``eval.key=value`` settings (as ``--set``)."""
    from tqdm import tqdm

    from ever.config import apply_overrides, config_from_dict
    from ever.evaluate.keypoints import propagate_keypoints
    from ever.evaluate.propagation import model_features, propagate_masks
    from ever.evaluate.run import overlay, save_prediction
    from ever.models import pretrained, resolve_model
    from ever.utils import atomic_write_json, select_device, writable_dir

    frames = open_frames(video)
    labels, palette = read_mask(mask)
    seq = Stream(frames, labels)
    H, W = seq.size
    if labels.shape != (H, W):
        raise DataError(f"{mask}: mask is {labels.shape[1]}x{labels.shape[0]} px but the frames of {video} are "
                        f"{W}x{H} px")
    if not seq.object_ids:
        raise DataError(f"{mask}: no object in the mask (every pixel is background 0 or void 255)")
    xy, names = read_points(points, (H, W)) if points is not None else (None, [])
    out = writable_dir(out)
    masks_dir = writable_dir(out / "masks", "masks")

    net, cfg = resolve_model(model)
    if overrides:
        cfg = config_from_dict(apply_overrides(cfg.to_dict(), list(overrides)), "--set")
    dev = select_device(device or "auto")
    feature_fn = model_features(net.to(dev).eval(), cfg.model.eval_stage)
    name = str(model) if model is not None else pretrained.DEFAULT
    n = len(seq)

    tracks: list[np.ndarray] | None = None
    if xy is not None:  # first pass: points (positions are small; kept for the overlay)
        kw = protocol_kwargs(propagate_keypoints, cfg.eval)
        bar = tqdm(total=n, desc="points", unit="frame", disable=not progress, dynamic_ncols=True)
        tracks = []
        for pred in propagate_keypoints(seq, xy, np.ones(len(xy), bool), feature_fn, device=dev, chunk=CHUNK, **kw):
            tracks.append(pred.astype(np.float32))
            bar.update()
        bar.close()
        atomic_write_json(out / "points.json", {
            "video": str(video), "model": name, "names": names, "size": [W, H],
            "frames": [{"frame": seq.frame_stem(t), "points": p.round(2).tolist()} for t, p in enumerate(tracks)]})

    writer = VideoWriter(out / "overlay.mp4", (H, W), getattr(frames, "fps", 0.0))
    ok = False
    try:
        kw = protocol_kwargs(propagate_masks, cfg.eval)
        bar = tqdm(total=n, desc="masks", unit="frame", disable=not progress, dynamic_ncols=True)
        t0 = time.perf_counter()
        for t, pred in enumerate(propagate_masks(seq, feature_fn, device=dev, chunk=CHUNK, **kw)):
            save_prediction(masks_dir / f"{seq.frame_stem(t)}.png", pred, palette.reshape(-1).tolist())
            writer.write(overlay(seq.frame(t), pred, palette, None if tracks is None else tracks[t]))
            bar.update()
        seconds = time.perf_counter() - t0
        bar.close()
        ok = True
    finally:
        writer.close(keep=ok)
    return Propagation(out=out, masks=masks_dir, overlay=out / "overlay.mp4",
                       points=out / "points.json" if tracks is not None else None, frames=n, size=(H, W),
                       object_ids=seq.object_ids, model=name, frames_per_s=n / seconds if seconds > 0 else float("nan"))


def cli(args) -> int:
    """``ever propagate VIDEO --mask PNG [--points JSON] [--model NAME|CKPT] --out DIR [--set eval.k=v]``."""
    r = propagate(args.video, args.mask, args.out, points=args.points, model=args.model, overrides=args.set)
    print(f"{r.frames} frames ({r.size[1]}x{r.size[0]}), {len(r.object_ids)} object(s)"
          f"{'' if r.points is None else ', points'}, model {r.model}: {r.frames_per_s:.2f} frames/s -> "
          f"{r.masks}/, {r.overlay}" + ("" if r.points is None else f", {r.points}"))
    return 0
