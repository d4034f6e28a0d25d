"""Use EVER on your own video: carry a first-frame mask (and points) through every frame.

    ever propagate clip.mp4 --mask first.png [--points first.json] [--model NAME|CHECKPOINT] --out DIR
           [--long-side N] [--overwrite]
    r = ever.propagate("clip.mp4", "first.png", out="DIR", points=None, model=None)   # -> Propagation

Inputs:

* the video: any file decord reads (.mp4, .avi, .webm, .mkv, ...) or a folder of JPEG/PNG frames (in
  natural order, by the number in the name: ``frame2.jpg`` before ``frame10.jpg``;
  :func:`ever.data.video.frame_files`);
* the mask of its first frame, the size of the frames: a palette PNG (DAVIS style: index = object id,
  255 = void), a grey PNG (each value 1..254 one object, 0 background, 255 void; a 0/255 or 1-bit mask is
  one object, id 1), or an RGB PNG (each colour one object, black background, ids 1..K in sorted order).
  A lossy mask (JPEG, or a PNG with JPEG noise next to 0 and 255) is read as ONE object, grey > 127
  (:data:`LOSSY_THRESHOLD`), with a warning; a lossy mask of several objects (other grey levels, colours)
  is refused, since compression does not keep object ids;
* points (optional), a JSON file of pixel positions in the first frame, names optional::

      {"points": [[x, y], ...], "names": ["nose", ...]}

Outputs in ``DIR``:

* ``masks/<frame>.png``: one palette PNG per frame, the size of the video, pixel = object id (the
  mask's palette is kept; grey and RGB masks get the DAVIS palette);
* ``points.json`` (with points): ``{"names": [...], "size": [W, H], "frames": [{"frame": stem,
  "points": [[x, y], ...]}, ...]}``;
* ``overlay.mp4``: the frames with the masks blended in and the points drawn (H.264, imageio-ffmpeg).

``<frame>`` is the file stem of a frame folder, else the frame index as ``00000``. A ``DIR`` that holds
these files from an earlier run is refused unless ``overwrite`` (``--overwrite``), which deletes exactly
them first; temp files of an overlay a kill cut short are removed. Every file is written under a temp
name and renamed when whole: a write error (a full disk) is one ``OSError`` naming the file, and no
broken file is left under a final name.

Frames are processed with the long side at ``long_side`` px (``--long-side``; default
:func:`default_long_side`: the resolution the model's own scores were measured at, 427 px for the
shipped models, never above the video's; 0 = native). After the first frames the expected time of the
pass is printed. The propagation is ``ever eval``'s own
(:func:`ever.evaluate.propagation.propagate_masks`, :func:`ever.evaluate.keypoints.propagate_keypoints`)
with the settings of the model's ``eval`` config (every field that names one of their parameters:
n_context, topk, radius, temperature, context, ...). Frames are read ``chunk`` at a time and each mask is
written as soon as it is made, so memory does not grow with the length of the video (but for the points' positions, J
x 2 numbers a frame,
kept for the overlay). Points take a second pass over the video.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import tempfile
import time
import warnings
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
LOSSY_FORMATS = ("JPEG", "MPO")  # image formats whose compression changes pixel values, so object ids
LOSSY_THRESHOLD = 127  # a lossy black/white mask is read as one object: grey > 127
NEAR = 32  # grey values within this of 0 or 255 are compression noise of black or white
LOSSY_LEVEL_SHARE = 0.005  # a grey level (+-4) between black and white on more pixels than this is an object


def davis_palette() -> np.ndarray:
    """The DAVIS/PASCAL VOC palette (256, 3) uint8: index i -> the colour of object i (1 red, 2 green, ...)."""
    from ever.data.davis import davis_palette as flat

    return np.array(flat(), np.uint8).reshape(256, 3)


# ----------------------------------------------------------------------------- inputs


def open_frames(path: str | Path) -> Video:
    """A video file (decord) or a JPEG/PNG frame folder; unreadable input raises a one-line DataError."""
    p = Path(path)
    return FrameFolder(p, exts=IMAGE_EXTS) if p.is_dir() else open_video(p)


def _grey_level(grey: np.ndarray) -> tuple[int, float]:
    """The grey level between black and white (beyond :data:`NEAR` of both) with the most pixels within
    +-4 of it, and that share of all pixels: an object's id, not compression noise, when it is large."""
    mid = grey[(grey > NEAR) & (grey < 255 - NEAR)]
    if not len(mid):
        return 0, 0.0
    hist = np.convolve(np.bincount(mid, minlength=256), np.ones(9), mode="same")
    level = int(hist.argmax())
    return level, float(hist[level] / grey.size)


def _lossy_binary(grey: np.ndarray, path: Path, why: str) -> np.ndarray:
    """A black/white mask that went through lossy compression ((H, W) uint8 grey) -> labels (H, W) uint8,
    1 where grey > :data:`LOSSY_THRESHOLD`, with a warning; a grey level between black and white on more
    than :data:`LOSSY_LEVEL_SHARE` of the pixels (a second object) is refused: lossy compression does not
    keep object ids."""
    level, share = _grey_level(grey)
    if share > LOSSY_LEVEL_SHARE:
        raise DataError(
            f"{path}: {why} holds grey level ~{level} between black and white on {share:.1%} of the "
            "pixels (a second object?): lossy compression changes object ids, save the mask as a PNG"
        )
    labels = (grey > LOSSY_THRESHOLD).astype(np.uint8)
    if not labels.any():
        raise DataError(
            f"{path}: {why} has no pixel > {LOSSY_THRESHOLD} (object ids 1, 2, ... saved lossily?): "
            "save the mask as a PNG"
        )
    warnings.warn(
        f"{path}: {why}: read as one object, grey > {LOSSY_THRESHOLD} is the object (save masks as PNG "
        "to keep exact object ids)",
        stacklevel=2,
    )
    return labels


def _noisy_binary(values: set[int]) -> bool:
    """Grey values of a black/white mask after lossy compression: several values next to 0 and next to 255
    (object ids are not written that way; 255 itself is void)."""
    return len([v for v in values if 0 < v <= NEAR]) >= 2 and len([v for v in values if 255 - NEAR <= v < 255]) >= 2


def read_mask(
    path: str | Path, size: tuple[int, int] | None = None, video: str | Path = "the video"
) -> tuple[np.ndarray, np.ndarray]:
    """A first-frame mask (formats in the module docstring) -> labels (H, W) uint8 (0 background,
    1..254 objects, 255 void) and the palette (256, 3) uint8 of the output masks. ``size`` (H, W): the
    frames' of ``video``, checked first (a resized mask is refused as such, before its content is judged).

    A lossy mask (JPEG, or a grey PNG with compression noise next to 0 and 255) of one black/white object
    is read with a threshold, grey > :data:`LOSSY_THRESHOLD` = object 1, and a warning; one with other
    grey levels or colours (several objects) is refused: lossy compression does not keep object ids."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: unreadable mask image ({e})".splitlines()[0]) from None
    if size is not None and (im.height, im.width) != tuple(size):
        raise DataError(
            f"{path}: mask is {im.width}x{im.height} px but the frames of {video} are {size[1]}x{size[0]} px"
        )
    palette = davis_palette()
    if im.format in LOSSY_FORMATS:
        rgb = np.asarray(im.convert("RGB")).astype(np.int16)
        colour = np.abs(rgb - rgb.mean(-1, keepdims=True)).max(-1) > NEAR
        if colour.mean() > LOSSY_LEVEL_SHARE:
            raise DataError(
                f"{path}: a colour {im.format} mask: lossy compression changes the colours that "
                "tell objects apart, save the mask as a PNG"
            )
        return _lossy_binary(np.asarray(im.convert("L")), path, f"lossy {im.format} mask"), palette
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
        noisy = _noisy_binary(values)  # a black/white mask saved lossily once (e.g. a JPEG made a PNG)
        if len(values) > MAX_GREY_LEVELS and not (noisy and _grey_level(grey)[1] <= LOSSY_LEVEL_SHARE):
            # an anti-aliased or photographic mask, not object ids
            raise DataError(
                f"{path}: grey mask with {len(values)} levels (anti-aliased?): save a palette PNG or a "
                f"binary 0/255 mask"
            )
        if noisy:
            return _lossy_binary(
                grey.astype(np.uint8), path, "grey mask with compression noise next to 0 and 255"
            ), palette
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
    file ``.NAME.*.mp4`` in the same folder and renamed on :meth:`close` once it reads back whole (an
    interrupted run or a failed encoder leaves no broken video under the final name). An encoder that
    fails (a full disk) raises an ``OSError`` naming the final path."""

    def __init__(self, path: Path, size: tuple[int, int], fps: float):
        import imageio_ffmpeg

        self.path, (H, W) = path, size
        self.pad = (H % 2, W % 2)
        self.frames = 0
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".mp4")
        os.close(fd)
        self.tmp = Path(tmp)
        self.gen = imageio_ffmpeg.write_frames(
            str(self.tmp),
            (W + self.pad[1], H + self.pad[0]),
            fps=fps or 24.0,
            macro_block_size=1,
            ffmpeg_log_level="error",
            quality=7,
        )
        self.gen.send(None)

    def _failed(self, e: BaseException | None, why: str = "") -> OSError:
        """The error to raise for a failed encode: the OS's own, else ENOSPC when the disk is full, else
        the encoder's first line (or ``why``)."""
        import errno
        import shutil

        if isinstance(e, OSError) and e.errno is not None:
            return OSError(e.errno, e.strerror, str(self.path))
        if shutil.disk_usage(self.path.parent).free < 1 << 20:
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
        why = why or (str(e).strip().splitlines() or ["?"])[0]
        return OSError(errno.EIO, f"the video encoder (ffmpeg) failed: {why}", str(self.path))

    def write(self, rgb: np.ndarray) -> None:
        if any(self.pad):
            rgb = np.pad(rgb, ((0, self.pad[0]), (0, self.pad[1]), (0, 0)), mode="edge")
        try:
            self.gen.send(np.ascontiguousarray(rgb))
        except OSError as e:
            raise self._failed(e) from None
        self.frames += 1

    def close(self, keep: bool = True) -> None:
        """Finish the file; with ``keep``, check it reads back with every frame and rename it, else delete it."""
        try:
            self.gen.close()
            if keep:
                n = _count_frames(self.tmp)
                if n != self.frames:
                    raise self._failed(None, f"{n} of {self.frames} frames read back")
                os.chmod(self.tmp, 0o644)
                os.replace(self.tmp, self.path)
        finally:
            self.tmp.unlink(missing_ok=True)


def _count_frames(path: Path) -> int:
    """Frames of a video file as its container says (0 when it cannot be opened: a truncated mp4)."""
    import decord

    try:
        return len(decord.VideoReader(str(path), num_threads=1))
    except Exception:  # noqa: BLE001 - decord raises its own error types on a broken file
        return 0


# ----------------------------------------------------------------------------- propagation


@dataclass
class Propagation:
    """What :func:`propagate` wrote: ``masks`` (folder of ``frames`` PNGs), ``overlay`` (mp4), ``points``
    (JSON or None), the object ids, the model's name, the long side worked at (0 = native) and the speed
    of the mask pass."""

    out: Path
    masks: Path
    overlay: Path
    points: Path | None
    frames: int
    size: tuple[int, int]  # (H, W)
    object_ids: list[int]
    model: str
    long_side: int
    frames_per_s: float


OUTPUT_FILES = ("overlay.mp4", "points.json")  # besides masks/*.png: everything a run writes in its folder
DEFAULT_LONG_SIDE = 427  # half of DAVIS 480p's 854 px: what EVER's scores are measured at
ESTIMATE_AFTER = 2 * CHUNK  # frames timed before the expected time of a pass is printed


def protocol_kwargs(fn, eval_cfg) -> dict[str, Any]:
    """The fields of an ``EvalConfig`` that name parameters of ``fn`` (so protocol settings flow through)."""
    params = inspect.signature(fn).parameters
    return {k: v for k, v in asdict(eval_cfg).items() if k in params}


def default_long_side(model: str | Path | None) -> int:
    """The long side (px) a model's scores were measured at: for a shipped model the protocol of its card's
    own evaluation, else :data:`DEFAULT_LONG_SIDE`."""
    from ever.models import pretrained

    name = pretrained.DEFAULT if model is None else str(model)
    if name in pretrained.names():
        own = pretrained.card(name).get("evaluation", {}).get(name) or {}
        side = (own.get("protocol") or {}).get("long_side")
        if isinstance(side, int) and side >= 0:
            return side
    return DEFAULT_LONG_SIDE


def prepare_out(out: str | Path, overwrite: bool = False) -> tuple[Path, Path]:
    """Check the output folder before any work -> (out, out/masks). Files of an earlier run there
    (``masks/*.png``, ``overlay.mp4``, ``points.json``) are refused unless ``overwrite``, which deletes
    exactly those; temp files of writes a kill cut short are removed; a folder where an output file
    goes is refused."""
    from ever.errors import EverError
    from ever.utils import writable_dir

    out = writable_dir(out)
    for name in OUTPUT_FILES:
        if (out / name).exists() and not (out / name).is_file():
            raise EverError(f"{out / name}: not a file (a folder?), in the way of the output {name}")
    masks = writable_dir(out / "masks", "masks")
    earlier = [out / n for n in OUTPUT_FILES if (out / n).is_file()] + sorted(masks.glob("*.png"))
    if earlier and not overwrite:
        raise EverError(
            f"{out}: holds the results of an earlier run ({', '.join(_describe(earlier))}): "
            "pass --overwrite to replace them, or choose another --out"
        )
    for f in [*earlier, *out.glob(".overlay.*.mp4"), *masks.glob(".*.png.*.tmp"), *out.glob(".points.json.*.tmp")]:
        f.unlink(missing_ok=True)
    return out, masks


def _describe(files: list[Path]) -> list[str]:
    pngs = sum(f.suffix == ".png" for f in files)
    return [f.name for f in files if f.suffix != ".png"] + ([f"{pngs} masks in masks/"] if pngs else [])


def _duration(seconds: float) -> str:
    return (
        f"{seconds:.0f} s"
        if seconds < 90
        else f"{seconds / 60:.0f} min"
        if seconds < 5400
        else f"{seconds / 3600:.1f} h"
    )


class _Timer:
    """Counts the frames of a pass and, after :data:`ESTIMATE_AFTER` of them, prints once how long the
    whole pass will take at that rate (to stderr, through tqdm so the bar stays whole)."""

    def __init__(self, what: str, total: int, bar, say: bool):
        self.what, self.total, self.bar, self.say = what, total, bar, say
        self.done, self.t0 = 0, time.perf_counter()
        self.seconds = 0.0

    def tick(self) -> None:
        self.done += 1
        self.bar.update()
        self.seconds = time.perf_counter() - self.t0
        if self.say and self.done == min(ESTIMATE_AFTER, self.total) and self.done < self.total:
            per = self.seconds / self.done
            self.bar.write(
                f"ever: {self.what}: about {_duration(per * self.total)} for the {self.total} frames "
                f"({per:.2f} s a frame over the first {self.done})",
                file=sys.stderr,
            )


def propagate(
    video: str | Path,
    mask: str | Path,
    out: str | Path,
    points: str | Path | None = None,
    model: str | Path | None = None,
    overrides: list[str] | None = None,
    device: str | None = None,
    progress: bool = True,
    long_side: int | None = None,
    overwrite: bool = False,
) -> Propagation:
    """Propagate ``mask`` (and ``points``) through ``video`` with ``model`` (a shipped name, a checkpoint
    path, or None for the shipped default) and write ``out/masks/*.png``, ``out/points.json``,
    ``out/overlay.mp4`` (module docstring). ``overrides``: ``eval.key=value`` settings (as ``--set``).
    ``long_side``: the long side frames are processed at (0 = native; default ``eval.long_side`` when the
    overrides set it, else :func:`default_long_side`, never above the video's own). ``overwrite``:
    replace the files of an earlier run in ``out`` (refused otherwise)."""
    from tqdm import tqdm

    from ever.config import apply_overrides, config_from_dict
    from ever.evaluate.keypoints import propagate_keypoints
    from ever.evaluate.propagation import model_features, propagate_masks
    from ever.evaluate.run import overlay, save_prediction
    from ever.models import pretrained
    from ever.models.pretrained import resolve_model
    from ever.utils import atomic_write_json, select_device

    frames = open_frames(video)
    H, W = frames.get([0])[0].shape[:2]
    labels, palette = read_mask(mask, (H, W), video)
    seq = Stream(frames, labels)
    if not seq.object_ids:
        raise DataError(f"{mask}: no object in the mask (every pixel is background 0 or void 255)")
    xy, names = read_points(points, (H, W)) if points is not None else (None, [])
    net, cfg = resolve_model(model)
    overrides = list(overrides or [])
    if long_side is None and not any(o.split("=", 1)[0].strip() == "eval.long_side" for o in overrides):
        long_side = default_long_side(model)
    if long_side is not None:
        overrides.append(f"eval.long_side={int(long_side)}")
    if overrides:
        cfg = config_from_dict(apply_overrides(cfg.to_dict(), overrides), "--set")
    out, masks_dir = prepare_out(out, overwrite)  # last of the checks: --overwrite deletes the old results
    if cfg.eval.long_side >= max(H, W):  # never upsample: the video's own size is the most there is
        cfg.eval.long_side = 0
    side = cfg.eval.long_side
    if progress:
        h, w = (round(H * side / max(H, W)), round(W * side / max(H, W))) if side else (H, W)
        tqdm.write(
            f"ever: {len(seq)} frames of {W}x{H} px, worked at {w}x{h}"
            + (f" (--long-side {side}; --long-side 0 for the native size)" if side else " (native)"),
            file=sys.stderr,
        )
    dev = select_device(device or "auto")
    feature_fn = model_features(net.to(dev).eval(), cfg.model.eval_stage)
    name = str(model) if model is not None else pretrained.DEFAULT
    n = len(seq)

    tracks: list[np.ndarray] | None = None
    if xy is not None:  # first pass: points (positions are small; kept for the overlay)
        kw = protocol_kwargs(propagate_keypoints, cfg.eval)
        tracks = []
        with tqdm(total=n, desc="points", unit="frame", disable=not progress, dynamic_ncols=True) as bar:
            timer = _Timer("points (pass 1 of 2)", n, bar, progress)
            for pred in propagate_keypoints(seq, xy, np.ones(len(xy), bool), feature_fn, device=dev, chunk=CHUNK, **kw):
                tracks.append(pred.astype(np.float32))
                timer.tick()
        atomic_write_json(
            out / "points.json",
            {
                "video": str(video),
                "model": name,
                "names": names,
                "size": [W, H],
                "frames": [{"frame": seq.frame_stem(t), "points": p.round(2).tolist()} for t, p in enumerate(tracks)],
            },
        )

    writer = VideoWriter(out / "overlay.mp4", (H, W), getattr(frames, "fps", 0.0))
    ok = False
    try:
        kw = protocol_kwargs(propagate_masks, cfg.eval)
        with tqdm(total=n, desc="masks", unit="frame", disable=not progress, dynamic_ncols=True) as bar:
            timer = _Timer("masks" + ("" if tracks is None else " (pass 2 of 2)"), n, bar, progress)
            for t, pred in enumerate(propagate_masks(seq, feature_fn, device=dev, chunk=CHUNK, **kw)):
                save_prediction(masks_dir / f"{seq.frame_stem(t)}.png", pred, palette.reshape(-1).tolist())
                writer.write(overlay(seq.frame(t), pred, palette, None if tracks is None else tracks[t]))
                timer.tick()
        ok = True
    finally:
        writer.close(keep=ok)
    return Propagation(
        out=out,
        masks=masks_dir,
        overlay=out / "overlay.mp4",
        points=out / "points.json" if tracks is not None else None,
        frames=n,
        size=(H, W),
        object_ids=seq.object_ids,
        model=name,
        long_side=side,
        frames_per_s=n / timer.seconds if timer.seconds > 0 else float("nan"),
    )


def cli(args) -> int:
    """``ever propagate VIDEO --mask IMAGE [--points JSON] [--model NAME|CKPT] --out DIR [--long-side N]
    [--overwrite] [--set eval.k=v]``."""
    r = propagate(
        args.video,
        args.mask,
        args.out,
        points=args.points,
        model=args.model,
        overrides=args.set,
        long_side=args.long_side,
        overwrite=args.overwrite,
    )
    print(
        f"{r.frames} frames ({r.size[1]}x{r.size[0]}), {len(r.object_ids)} object(s)"
        f"{'' if r.points is None else ', points'}, model {r.model}: {r.frames_per_s:.2f} frames/s -> "
        f"{r.masks}/, {r.overlay}" + ("" if r.points is None else f", {r.points}")
    )
    return 0
