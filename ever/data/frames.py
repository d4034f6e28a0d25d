"""Decode training videos once into JPEG frame folders: ``ever data frames SRC... --out DIR [--short-side 256]``.

A random clip from a long-GOP video file (real-video-extra's 720p clips have key frames 250 frames apart)
makes the decoder seek to a key frame and decode every frame up to the clip: seconds per clip on a CPU,
more than a training step. Frame folders are read directly (:class:`ever.data.video.FrameFolder`):

    extract_frames(["../shared/data/real-video-extra"], "data/real-video-extra-frames", short_side=256)
    # -> data/real-video-extra-frames/<video stem>/00000.jpg ... (train with data.roots=[that folder])

Each video is decoded in order once, resized so its short side is ``short_side`` (never enlarged; antialiased)
and written as JPEG (quality 90) into ``DIR/<stem>/``, built in a temporary folder and renamed into place when
complete, so a folder that exists is whole and a rerun skips it. Folder names keep the video's stem, so
``data.groups`` patterns still match. Frame folders carry no frame rate: with ``data.fps`` > 0 train on the
video files (the default ``data.frame_stride`` steps over frames either way).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ever.data.clips import find_videos
from ever.data.video import open_video
from ever.errors import DataError

CHUNK = 32  # frames decoded per call


def extract_frames(
    roots: list[str], out: str | Path, short_side: int = 256, quality: int = 90, progress: bool = False
) -> dict[str, int]:
    """Write every video file under ``roots`` (see :func:`ever.data.clips.find_videos`; frame folders are
    skipped, they are already frames) as ``out/<stem>/NNNNN.jpg``; returns ``{stem: frames}`` of the videos
    written now (those already in ``out`` are skipped)."""
    from PIL import Image

    if short_side < 16:
        raise DataError(f"--short-side {short_side}: frames need at least 16 px a side")
    out = Path(out)
    videos = [p for p in find_videos(roots) if p.is_file()]
    stems = [p.stem for p in videos]
    dup = next((s for s in stems if stems.count(s) > 1), None)
    if dup:
        raise DataError(f"{out}: two videos under {', '.join(roots)} are named {dup!r} (one folder each is needed)")
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    for p in videos:
        dest = out / p.stem
        if dest.is_dir():
            continue
        tmp = out / f".{p.stem}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        v = open_video(p)
        for start in range(0, len(v), CHUNK):
            for t, frame in enumerate(v.get(range(start, min(start + CHUNK, len(v)))), start):
                im = Image.fromarray(np.ascontiguousarray(frame))
                scale = short_side / min(im.size)
                if scale < 1:
                    im = im.resize(
                        (max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.BICUBIC
                    )
                im.save(tmp / f"{t:05d}.jpg", quality=quality)
        v.close()
        tmp.rename(dest)
        written[p.stem] = len(v)
        if progress:
            print(f"{dest}: {len(v)} frames")
    return written
