"""Reader for DAVIS-layout folders (DAVIS 2016/2017, ``ever-synth``).

Layout::

    ROOT/JPEGImages/480p/<seq>/00000.jpg ...     RGB frames, sorted by file name
    ROOT/Annotations/480p/<seq>/00000.png ...    indexed (palette) PNGs: 0 = background, 1..N = objects,
                                                 255 = void (DAVIS-2017: never an object)
    ROOT/ImageSets/2017/<split>.txt              one sequence name a line
        (or ImageSets/2016/<split>.txt, or ImageSets/<split>.txt)

A mask PNG is matched to a frame by its stem (``00000.jpg`` <-> ``00000.png``); frames without a PNG
have no annotation (``Sequence.mask(i)`` returns None), but frame 0 must have one. Grayscale ('L')
masks are accepted too, with the DAVIS-2016 convention 0/255 read as background/object 1.

Everything is lazy: a :class:`Sequence` holds file names only, and reads one frame or mask per call,
so memory does not grow with the length of the video.

    ds = DavisDataset("data/ever-synth", split="val")
    for name in ds.sequences:
        seq = ds.sequence(name)
        first = seq.first_mask()            # (H, W) int64
        rgb = seq.frame(len(seq) - 1)       # (H, W, 3) uint8
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ever.data.video import frame_files
from ever.errors import DataError

RESOLUTION = "480p"
VOID = 255  # DAVIS-2017 void label (object borders, unlabelled regions): never an object; background when scored


def davis_palette() -> list[int]:
    """The DAVIS / PASCAL VOC colour map (256 x RGB, flat): the bits of an id spread over R, G, B."""
    pal = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def _split_file(root: Path, split: str) -> Path:
    candidates = [
        root / "ImageSets" / "2017" / f"{split}.txt",
        root / "ImageSets" / "2016" / f"{split}.txt",
        root / "ImageSets" / f"{split}.txt",
    ]
    for path in candidates:
        if path.is_file():
            return path
    raise DataError(
        f"{candidates[0]}: split file not found (also looked for ImageSets/2016/{split}.txt and ImageSets/{split}.txt)"
    )


class Sequence:
    """One video of a DAVIS-layout folder: frames and (possibly sparse) masks, read on demand."""

    def __init__(self, name: str, frame_paths: list[Path], mask_dir: Path):
        self.name = name
        self.frame_paths = frame_paths
        self.mask_paths = [mask_dir / f"{p.stem}.png" for p in frame_paths]
        if not self.mask_paths[0].is_file():
            raise DataError(f"{self.mask_paths[0]}: annotation of the first frame of '{name}' is missing")
        self._size: tuple[int, int] | None = None
        self._object_ids: list[int] | None = None

    def __len__(self) -> int:
        return len(self.frame_paths)

    def __repr__(self) -> str:
        return f"Sequence({self.name!r}, frames={len(self)})"

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the frames (read from the first frame's header)."""
        if self._size is None:
            path = self.frame_paths[0]
            try:
                with Image.open(path) as im:
                    self._size = (im.height, im.width)
            except (OSError, UnidentifiedImageError) as e:
                raise DataError(f"{path}: unreadable image ({e})") from None
        return self._size

    @property
    def object_ids(self) -> list[int]:
        """Object ids of the first mask, background 0 and void 255 excluded (sorted)."""
        if self._object_ids is None:
            self._object_ids = [int(i) for i in np.unique(self.first_mask()) if i not in (0, VOID)]
        return self._object_ids

    def frame_stem(self, i: int) -> str:
        return self.frame_paths[i].stem

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` as (H, W, 3) uint8."""
        path = self.frame_paths[i]
        try:
            with Image.open(path) as im:
                rgb = np.asarray(im.convert("RGB"))
        except (OSError, UnidentifiedImageError, SyntaxError) as e:
            raise DataError(f"{path}: unreadable image ({e})") from None
        if rgb.shape[:2] != self.size:
            raise DataError(
                f"{path}: frame is {rgb.shape[1]}x{rgb.shape[0]}, the sequence's first frame is "
                f"{self.size[1]}x{self.size[0]}"
            )
        return rgb

    def mask(self, i: int) -> np.ndarray | None:
        """Mask of frame ``i`` as (H, W) int64 object ids, or None if the frame has no annotation."""
        path = self.mask_paths[i]
        if not path.is_file():
            return None
        try:
            with Image.open(path) as im:
                mode = im.mode
                arr = np.asarray(im)
        except (OSError, UnidentifiedImageError, SyntaxError) as e:
            raise DataError(f"{path}: unreadable mask ({e})") from None
        if mode not in ("P", "L", "1"):
            raise DataError(f"{path}: mask must be an indexed (palette) PNG of object ids, got mode {mode}")
        arr = arr.astype(np.int64)
        if mode == "1" or (mode == "L" and np.isin(arr, (0, 255)).all()):
            arr = (arr > 0).astype(np.int64)  # binary DAVIS-2016 style mask
        if arr.shape != self.size:
            raise DataError(f"{path}: mask is {arr.shape[1]}x{arr.shape[0]}, frame is {self.size[1]}x{self.size[0]}")
        return arr

    def first_mask(self) -> np.ndarray:
        """The (H, W) annotation of frame 0 (always present)."""
        mask = self.mask(0)
        assert mask is not None
        return mask


class DavisDataset:
    """The sequences of one split of a DAVIS-layout root (see module docstring)."""

    def __init__(self, root: str | Path, split: str = "val"):
        self.root = Path(root)
        self.split = split
        if not self.root.is_dir():
            raise DataError(f"{self.root}: DAVIS-layout data folder not found")
        self.split_file = _split_file(self.root, split)
        names: list[str] = []
        for line in self.split_file.read_text().splitlines():
            name = line.strip()
            if name and not name.startswith("#") and name not in names:
                names.append(name)
        if not names:
            raise DataError(f"{self.split_file}: split file lists no sequences")
        for name in names:
            if not (self.frame_dir(name)).is_dir():
                raise DataError(
                    f"{self.split_file}: sequence '{name}' is listed but {self.frame_dir(name)} does not exist"
                )
        self.sequences = names

    def frame_dir(self, name: str) -> Path:
        return self.root / "JPEGImages" / RESOLUTION / name

    def mask_dir(self, name: str) -> Path:
        return self.root / "Annotations" / RESOLUTION / name

    def __len__(self) -> int:
        return len(self.sequences)

    def sequence(self, name: str) -> Sequence:
        if name not in self.sequences:
            raise DataError(f"{self.split_file}: no sequence '{name}' in split '{self.split}'")
        frame_dir = self.frame_dir(name)
        frames = frame_files(frame_dir)  # natural order (frame2 before frame10); ambiguous names refused
        if not frames:
            raise DataError(f"{frame_dir}: no JPEG frames")
        return Sequence(name, frames, self.mask_dir(name))

    def __iter__(self):
        for name in self.sequences:
            yield self.sequence(name)

    def keypoints_file(self, name: str) -> Path | None:
        """``ROOT/keypoints/<seq>.json`` if present (see :mod:`ever.evaluate.keypoints`)."""
        path = self.root / "keypoints" / f"{name}.json"
        return path if path.is_file() else None
