"""Keypoint propagation (pose tracking by label propagation) and its PCK score.

Annotation format (``ROOT/keypoints/<seq>.json``, as in davis2016-dev's BADJA joints)::

    {"sequence": "bear",                      # optional
     "annotated_frames": [                    # sparse: any subset of the frames, in any order
        {"frame": "00002",                    # stem of the frame's JPEG (an int index is accepted too)
         "joints_xy_480p": [[x, y], ...],     # (J, 2) pixels of the 480p frame ("joints_xy" is accepted too)
         "visible": [true, false, ...]},      # (J,) invisible joints are ignored (their xy may be 0)
        ...]}

Protocol: propagation starts at the first annotated frame (its visible joints are given). Each visible
joint becomes a Gaussian heat map (one channel per joint, ``sigma`` in feature cells) that is propagated
exactly like mask labels (:func:`ever.evaluate.propagation.propagate`); the predicted position is the
arg-max of the channel upsampled to the native resolution. A joint is scored on a later annotated frame
when it is visible there and was visible in the first annotated frame; the reference size of PCK is the
longer side of the bounding box of the ground-truth mask of that frame (of the visible joints when the
frame has no mask). The copy baseline keeps the joints where they were given.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ever.errors import DataError
from ever.evaluate.metrics import pck
from ever.evaluate.propagation import STRIDE, FeatureFn, Grid, propagate


@dataclass
class Keypoints:
    """Sparse joint annotations of one sequence: ``frames`` (A,) frame indices, xy (A, J, 2), visible (A, J)."""

    frames: list[int]
    xy: np.ndarray
    visible: np.ndarray


def read_keypoints(path: str | Path, stems: list[str]) -> Keypoints:
    """Read a keypoint JSON (format in the module docstring); ``stems`` are the sequence's frame names."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        entries = data["annotated_frames"]
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: unreadable keypoint JSON ({e})") from None
    except (KeyError, TypeError):
        raise DataError(f"{path}: keypoint JSON has no 'annotated_frames' list") from None
    index = {s: i for i, s in enumerate(stems)}
    rows = []
    for e in entries:
        try:
            frame = e["frame"]
            xy = np.asarray(e["joints_xy_480p"] if "joints_xy_480p" in e else e["joints_xy"], np.float64)
            vis = np.asarray(e["visible"], bool)
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{path}: each annotated frame needs 'frame', 'joints_xy_480p' and 'visible'") from None
        t = int(frame) if isinstance(frame, int) else index.get(str(frame))
        if t is None or not 0 <= t < len(stems):
            raise DataError(f"{path}: annotated frame {frame!r} is not a frame of the sequence")
        if xy.ndim != 2 or xy.shape[1] != 2 or vis.shape != (xy.shape[0],):
            raise DataError(f"{path}: frame {frame!r}: joints must be (J, 2) with a (J,) visible flag")
        rows.append((t, xy, vis))
    if not rows:
        raise DataError(f"{path}: no annotated frames")
    if len({r[1].shape[0] for r in rows}) != 1:
        raise DataError(f"{path}: annotated frames have different numbers of joints")
    rows.sort(key=lambda r: r[0])
    return Keypoints([r[0] for r in rows], np.stack([r[1] for r in rows]), np.stack([r[2] for r in rows]))


def heatmaps(xy: np.ndarray, grid: Grid, sigma: float = 1.0) -> torch.Tensor:
    """Gaussian heat maps (J, h, w) at feature resolution of joints xy (J, 2) given in native pixels."""
    xr = (torch.as_tensor(xy, dtype=torch.float32) + 0.5) * grid.scale - 0.5  # resized pixels
    cells = (xr - (STRIDE - 1) / 2) / STRIDE  # cell (i, j) is centred on pixel 8 * j + 3.5
    h, w = grid.cells
    gy, gx = torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32)
    d2 = (gx[None, None, :] - cells[:, 0, None, None]) ** 2 + (gy[None, :, None] - cells[:, 1, None, None]) ** 2
    return torch.exp(-d2 / (2 * sigma ** 2))


def propagate_keypoints(seq, joints_xy: np.ndarray, visible: np.ndarray, feature_fn: FeatureFn | str,
                        start: int = 0, sigma: float = 1.0, n_context: int = 20, topk: int = 10,
                        radius: float = 12.0, temperature: float = 0.05, long_side: int = 0,
                        device: str | torch.device = "cpu", chunk: int = 8) -> Iterator[np.ndarray]:
    """Yield predicted joints (J, 2) (x, y pixels; NaN for joints not visible at ``start``) for frames
    ``start``, ``start + 1``, ..., ``len(seq) - 1``, given joints_xy (J, 2) and visible (J,) at ``start``."""
    joints_xy = np.asarray(joints_xy, np.float64)
    visible = np.asarray(visible, bool)
    given = np.where(visible[:, None], joints_xy, np.nan)
    yield given
    if isinstance(feature_fn, str):
        if feature_fn != "copy":
            raise ValueError(f"unknown feature function {feature_fn!r} (a callable or 'copy')")
        for _ in range(start + 1, len(seq)):
            yield given
        return
    grid = Grid(seq.size, long_side)
    sel = np.flatnonzero(visible)
    if len(sel) == 0:
        for _ in range(start + 1, len(seq)):
            yield given
        return
    H, W = seq.size
    frames = (seq.frame(i) for i in range(start, len(seq)))
    for soft in propagate(frames, heatmaps(joints_xy[sel], grid, sigma), grid, feature_fn, n_context, topk,
                          radius, temperature, device, chunk):
        flat = grid.up(soft.cpu()).reshape(len(sel), -1).argmax(1).numpy()  # (J',)
        pred = np.full_like(given, np.nan)
        pred[sel, 0], pred[sel, 1] = flat % W, flat // W
        yield pred


def reference_size(mask: np.ndarray | None, xy: np.ndarray, visible: np.ndarray) -> float:
    """Longer side of the bounding box of the object mask (> 0), or of the visible joints if no mask."""
    if mask is not None and (mask > 0).any():
        ys, xs = np.nonzero(mask > 0)
        return float(max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1))
    pts = xy[visible]
    if len(pts) == 0:
        return float("nan")
    return float((pts.max(0) - pts.min(0)).max())


def score_keypoints(seq, kp: Keypoints, feature_fn: FeatureFn | str, alphas: tuple[float, ...] = (0.1, 0.2),
                    **kwargs) -> dict[str, float]:
    """Propagate from the first annotated frame and return {'PCK@0.1': ..., 'PCK@0.2': ..., 'frames', 'joints'}.

    ``kwargs`` go to :func:`propagate_keypoints` (n_context, topk, radius, temperature, long_side, device).
    """
    start = kp.frames[0]
    targets = {t: a for a, t in enumerate(kp.frames) if t > start}
    preds, gts, vis, refs = [], [], [], []
    for offset, pred in enumerate(propagate_keypoints(seq, kp.xy[0], kp.visible[0], feature_fn, start=start,
                                                      **kwargs)):
        t = start + offset
        if t in targets:
            a = targets[t]
            preds.append(np.nan_to_num(pred))
            gts.append(kp.xy[a])
            vis.append(kp.visible[a] & kp.visible[0])
            refs.append(reference_size(seq.mask(t), kp.xy[a], kp.visible[a]))
    out: dict[str, float] = {"frames": len(preds), "joints": int(np.sum(vis)) if vis else 0}
    for alpha in alphas:
        out[f"PCK@{alpha:g}"] = (pck(np.stack(preds), np.stack(gts), np.stack(vis), np.array(refs), alpha)
                                 if preds else float("nan"))
    return out
