"""Keypoint propagation (pose tracking by label propagation) and its PCK score.

Annotation format (``ROOT/keypoints/<seq>.json``, as in davis2016-dev's BADJA joints)::

    {"sequence": "bear",                      # optional
     "pck_convention": "badja",               # optional: "badja" (the default) or "jhmdb", see below
     "annotated_frames": [                    # sparse: any subset of the frames, in any order
        {"frame": "00002",                    # stem of the frame's JPEG (an int index is accepted too)
         "joints_xy_480p": [[x, y], ...],     # (J, 2) pixels of the 480p frame ("joints_xy" is accepted too)
         "visible": [true, false, ...]},      # (J,) invisible joints are ignored (their xy may be 0)
        ...]}

Protocol: propagation starts at the first annotated frame (its visible joints are given). Each visible
joint becomes a Gaussian heat map (one channel per joint, ``sigma`` in feature cells) that is propagated
exactly like mask labels (:func:`ever.evaluate.propagation.propagate`); the predicted position is the
arg-max of the channel upsampled to the native resolution. When the joints are given in frame 0, one
propagation serves the masks and the joints (:func:`propagate_masks_keypoints`: the heat maps are extra
label channels of the masks' propagation, whose affinities and top-k do not depend on the labels). A joint is scored
on a later annotated frame
(the given frame never is) when it is visible there and was visible in the first annotated frame. The copy
baseline keeps the joints where they were given.

PCK convention (named ``pck_convention`` in every result; definitions in :mod:`ever.evaluate.metrics`):
the file's ``"pck_convention"`` field, else ``"badja"``, since this format is the BADJA-on-DAVIS export:

* ``badja``: threshold alpha x sqrt(area of the frame's ground-truth mask) (strict ``<``), PCK per frame,
  averaged over frames (frames without a mask are not scored);
* ``jhmdb``: threshold alpha x 0.6 x diagonal of the bounding box of the frame's visible ground-truth
  joints (``<=``), PCK per joint over all scored frames, averaged over joints.

Over a dataset (:func:`pool_pck`), the scored frames of all sequences are pooled before averaging (BADJA:
every frame counts once; JHMDB: per joint over every frame of every video, as the CRW/UVC script).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ever.errors import DataError
from ever.evaluate.metrics import (
    PCK_CONVENTIONS,
    badja_threshold,
    jhmdb_threshold,
    joint_hits,
    pck,
    pck_badja,
    pck_jhmdb,
)
from ever.evaluate.propagation import (
    STRIDE,
    CellGrid,
    FeatureFn,
    first_mask,
    label_map,
    mask_labels,
    propagate,
    propagate_masks,
)


@dataclass
class Keypoints:
    """Sparse joint annotations of one sequence: ``frames`` (A,) frame indices, xy (A, J, 2), visible (A, J),
    and the PCK convention ('badja' or 'jhmdb') of the file."""

    frames: list[int]
    xy: np.ndarray
    visible: np.ndarray
    convention: str = "badja"


def keypoint_convention(data: dict, path: str | Path) -> str:
    """The PCK convention of a parsed keypoint file: its ``pck_convention`` field, else 'badja'."""
    convention = data.get("pck_convention", "badja")
    if convention not in PCK_CONVENTIONS:
        raise DataError(f"{path}: pck_convention must be one of {', '.join(PCK_CONVENTIONS)}, got {convention!r}")
    return convention


def read_keypoints(path: str | Path, stems: list[str]) -> Keypoints:
    """Read a keypoint JSON (format in the module docstring); ``stems`` are the sequence's frame names."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        entries = data["annotated_frames"]
        convention = keypoint_convention(data, path)
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
    return Keypoints([r[0] for r in rows], np.stack([r[1] for r in rows]), np.stack([r[2] for r in rows]), convention)


def heatmaps(xy: np.ndarray, grid: CellGrid, sigma: float = 1.0) -> torch.Tensor:
    """Gaussian heat maps (J, h, w) at feature resolution of joints xy (J, 2) given in native pixels."""
    xr = (torch.as_tensor(xy, dtype=torch.float32) + 0.5) * grid.scale - 0.5  # resized pixels
    cells = (xr - (STRIDE - 1) / 2) / STRIDE  # cell (i, j) is centred on pixel 8 * j + 3.5
    h, w = grid.cells
    gy, gx = torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32)
    d2 = (gx[None, None, :] - cells[:, 0, None, None]) ** 2 + (gy[None, :, None] - cells[:, 1, None, None]) ** 2
    return torch.exp(-d2 / (2 * sigma**2))


def propagate_keypoints(
    seq,
    joints_xy: np.ndarray,
    visible: np.ndarray,
    feature_fn: FeatureFn | str,
    start: int = 0,
    sigma: float = 1.0,
    n_context: int = 20,
    topk: int = 10,
    radius: float = 12.0,
    temperature: float = 0.05,
    long_side: int = 0,
    device: str | torch.device = "cpu",
    chunk: int = 8,
    context: str = "reference",
) -> Iterator[np.ndarray]:
    """Yield predicted joints (J, 2) (x, y pixels; NaN for joints not visible at ``start``) for frames
    ``start``, ``start + 1``, ..., ``len(seq) - 1``, given joints_xy (J, 2) and visible (J,) at ``start``.
    ``context``: see :mod:`ever.evaluate.propagation` (heat maps are made at feature resolution, so there
    is no label resizing)."""
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
    grid = CellGrid(seq.size, long_side)
    sel = np.flatnonzero(visible)
    if len(sel) == 0:
        for _ in range(start + 1, len(seq)):
            yield given
        return
    H, W = seq.size
    frames = (seq.frame(i) for i in range(start, len(seq)))
    for soft in propagate(
        frames,
        heatmaps(joints_xy[sel], grid, sigma),
        grid,
        feature_fn,
        n_context,
        topk,
        radius,
        temperature,
        device,
        chunk,
        context,
    ):
        yield _joints(grid.up(soft.cpu()), sel, given, W)


def _joints(heat: torch.Tensor, sel: np.ndarray, given: np.ndarray, W: int) -> np.ndarray:
    """Heat maps (J', H, W) of the joints ``sel`` -> joints (J, 2) (x, y), NaN where not predicted."""
    flat = heat.reshape(len(sel), -1).argmax(1).numpy()  # (J',)
    pred = np.full_like(given, np.nan)
    pred[sel, 0], pred[sel, 1] = flat % W, flat // W
    return pred


def propagate_masks_keypoints(
    seq,
    joints_xy: np.ndarray,
    visible: np.ndarray,
    feature_fn: FeatureFn | str,
    sigma: float = 1.0,
    n_context: int = 20,
    topk: int = 10,
    radius: float = 12.0,
    temperature: float = 0.05,
    long_side: int = 0,
    device: str | torch.device = "cpu",
    chunk: int = 8,
    context: str = "reference",
    label_resize: str = "bilinear",
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (mask (H, W) int64, joints (J, 2)) for every frame from one propagation, the joints
    (J, 2) with visible (J,) given in frame 0: the K mask channels and the J' heat maps of the visible
    joints are propagated together (one encoding, one top-k a frame), so each equals what
    :func:`ever.evaluate.propagation.propagate_masks` and :func:`propagate_keypoints` (``start=0``) yield."""
    if isinstance(feature_fn, str):
        yield from zip(propagate_masks(seq, feature_fn), propagate_keypoints(seq, joints_xy, visible, feature_fn))
        return
    joints_xy = np.asarray(joints_xy, np.float64)
    visible = np.asarray(visible, bool)
    given = np.where(visible[:, None], joints_xy, np.nan)
    first = first_mask(seq)
    yield first, given
    grid = CellGrid(seq.size, long_side)
    ids, labels = mask_labels(first, seq.object_ids, grid, label_resize)
    K, sel = len(ids), np.flatnonzero(visible)
    if len(sel):
        labels = torch.cat([labels, heatmaps(joints_xy[sel], grid, sigma)])
    W = seq.size[1]
    frames = (seq.frame(i) for i in range(len(seq)))
    for soft in propagate(
        frames, labels, grid, feature_fn, n_context, topk, radius, temperature, device, chunk, context
    ):
        up = grid.up(soft.cpu())  # (K + J', H, W)
        yield ids[label_map(up[:K])].numpy(), _joints(up[K:], sel, given, W) if len(sel) else given


def score_keypoints(
    seq,
    kp: Keypoints,
    feature_fn: FeatureFn | str,
    alphas: tuple[float, ...] = (0.1, 0.2),
    predicted: list[np.ndarray] | None = None,
    **kwargs,
) -> dict:
    """Propagate from the first annotated frame and score the later annotated frames.

    Returns {'pck_convention', 'frames' (scored), 'joints' (scored joint instances), 'PCK@0.1', 'PCK@0.2',
    'hits': {'PCK@0.1': (F, J) 0/1 lists, ...}, 'visible': (F, J) 0/1 list (what :func:`pool_pck` pools),
    'predictions': [{'frame': stem, 'joints_xy': (J, 2) list, None for joints not predicted}, ...]} (one
    per annotated frame, the given one included). ``kwargs`` go to :func:`propagate_keypoints`, unless
    ``predicted`` gives the joints (J, 2) of frames ``kp.frames[0]``, ... already (as
    :func:`propagate_masks_keypoints` yields them)."""
    start = kp.frames[0]
    targets = {t: a for a, t in enumerate(kp.frames)}
    preds, gts, vis, refs, predictions = [], [], [], [], []
    if predicted is None:
        predicted = propagate_keypoints(seq, kp.xy[0], kp.visible[0], feature_fn, start=start, **kwargs)
    for offset, pred in enumerate(predicted):
        t = start + offset
        if t not in targets:
            continue
        a = targets[t]
        predictions.append(
            {
                "frame": seq.frame_stem(t),
                "joints_xy": [None if np.isnan(p).any() else [float(p[0]), float(p[1])] for p in pred],
            }
        )
        if t == start:
            continue
        visible = kp.visible[a] & kp.visible[0]
        if kp.convention == "badja":
            mask = seq.mask(t)
            if mask is None:
                continue
            ref = badja_threshold(mask)
        else:
            ref = jhmdb_threshold(kp.xy[a], kp.visible[a])
        preds.append(np.nan_to_num(pred))
        gts.append(kp.xy[a])
        vis.append(visible)
        refs.append(ref)
    n_joints = kp.xy.shape[1]
    visible = np.stack(vis) if vis else np.zeros((0, n_joints), bool)
    out: dict = {"pck_convention": kp.convention, "frames": len(preds), "joints": int(visible.sum())}
    hits = {}
    for alpha in alphas:
        key = f"PCK@{alpha:g}"
        h = (
            joint_hits(np.stack(preds), np.stack(gts), np.array(refs), alpha, kp.convention)
            if preds
            else np.zeros((0, n_joints), bool)
        )
        out[key] = pck(h, visible, kp.convention)
        hits[key] = h.astype(int).tolist()
    out.update(hits=hits, visible=visible.astype(int).tolist(), predictions=predictions)
    return out


def pool_pck(results: list[dict]) -> dict:
    """Dataset PCK from :func:`score_keypoints` results of several sequences (one convention): the scored
    frames of every sequence pooled, then averaged as the convention says. -> {'pck_convention',
    'PCK@0.1', ...}"""
    conventions = {r["pck_convention"] for r in results}
    if len(conventions) != 1:
        raise DataError(f"keypoint files mix PCK conventions ({', '.join(sorted(conventions))}); score them separately")
    convention = conventions.pop()
    out: dict = {"pck_convention": convention}
    used = [r for r in results if r["frames"]]
    if convention == "jhmdb" and len({len(r["visible"][0]) for r in used}) > 1:
        raise DataError("jhmdb PCK pools each joint over the videos: every keypoint file needs the same joints")
    for key in results[0]["hits"]:
        if convention == "badja":  # every frame counts once (files may have different joint lists)
            per_frame = [
                pck_badja(np.asarray([h], bool), np.asarray([v], bool))
                for r in used
                for h, v in zip(r["hits"][key], r["visible"])
            ]
            per_frame = [p for p in per_frame if not np.isnan(p)]
            out[key] = float(np.mean(per_frame)) if per_frame else float("nan")
        else:  # every joint over every scored frame of every video
            hits = [np.asarray(r["hits"][key], bool) for r in used]
            vis = [np.asarray(r["visible"], bool) for r in used]
            out[key] = pck_jhmdb(np.concatenate(hits), np.concatenate(vis)) if used else float("nan")
    return out
