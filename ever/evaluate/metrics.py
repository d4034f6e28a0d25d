"""DAVIS video-object-segmentation metrics (J, F and their statistics) and keypoint PCK.

Every definition below is the one of the official DAVIS evaluation (davisvideochallenge/davis2017-evaluation,
``davis2017/metrics.py``, ``utils.py``, ``evaluation.py``; semi-supervised task), re-implemented here with
numpy/scipy; ``tests/test_metrics.py`` pins values computed by the official functions.

* **J (region similarity)** of one object in one frame: the IoU |G n P| / |G u P| of the binary ground-truth
  mask G and predicted mask P. Both empty gives J = 1.
* **F (contour accuracy)**: the boundary F-measure. The boundary map of a mask is DAVIS's ``seg2bmap``
  (:func:`boundary_map`): a pixel is a boundary pixel when it differs from one of its east, south or
  south-east neighbours that lie inside the image (boundaries sit half a pixel towards the origin). Maps are
  compared at the mask's own resolution: a boundary pixel of P is matched when a boundary pixel of G lies in
  the disk of radius ``ceil(bound_th * diag)`` pixels around it (``diag`` = image diagonal, ``bound_th`` =
  0.008, 8 px at 854x480; a ``bound_th`` >= 1 is the radius itself). precision = matched P pixels / P
  boundary pixels, recall = matched G pixels / G boundary pixels, F = 2PR / (P + R) (0 when P + R = 0).
  Empty boundaries: both empty -> P = R = 1; only P empty -> P = 1, R = 0; only G empty -> P = 0, R = 1.
* **Void label 255** (DAVIS-2017 masks): never an object. The official semi-supervised evaluation sets void
  pixels of the ground truth to background and passes no void mask to J and F (``void_pixels=None``; only
  its unsupervised task excludes them), so a prediction covering void pixels counts as a false positive.
  :class:`SequenceScorer` does exactly that.
* Per-object statistics over the scored frames of a sequence (``db_statistics``): **Mean**; **Recall** =
  fraction of frames with a score > 0.5; **Decay** = mean of the first minus mean of the last of 4 bins,
  the bins being ``[ids[i], ids[i+1]]`` (inclusive) with ``ids = round(linspace(1, n, 5)) - 1`` (consecutive
  bins share their edge frame). (The official code stores ``ids`` as uint8, which wraps beyond 256 frames;
  here it does not.)
* The **first frame (given) and the last frame are excluded**: a sequence of T frames is scored on frames
  1..T-2 (the official code scores the annotated frames but the first and the last; DAVIS annotates every
  frame). Frames without a ground-truth annotation are skipped.
* Dataset level: every object of every sequence counts once: J-Mean = mean over objects of their J-Mean
  (likewise J-Recall, F-Mean, F-Recall, decays), and J&F-Mean = (J-Mean + F-Mean) / 2. Objects with no
  scored frame (NaN) are left out (the official code would return NaN for the whole set).
* Objects are the ids of the first mask (background 0 and void 255 excluded); the official code scores ids
  1..max, the same for DAVIS, whose ids are consecutive.

**PCK** (percentage of correct keypoints) has two conventions, named in every summary
(``pck_convention``), see :func:`pck_badja` and :func:`pck_jhmdb`:

* ``badja`` (Biggs et al., ACCV 2018; their evaluation code in benjiebob/WLDO ``metrics.py``): a visible
  joint is correct when its error is < ``alpha * sqrt(area of the ground-truth mask of that frame)``; PCK
  of a frame = fraction of its visible joints; the score = mean over frames.
* ``jhmdb`` (the CRW/UVC script, ajabri/videowalk ``code/eval/eval_pck.py``): a visible joint is correct when
  its error is <= ``alpha * 0.6 * diagonal of the bounding box of the frame's visible ground-truth joints``;
  the first frame is excluded; PCK of each joint over all its scored frames, then the mean over joints.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import distance_transform_edt

from ever.data.davis import VOID  # DAVIS-2017's "void" label (255): never an object, background for scoring

BOUND_TH = 0.008
PCK_CONVENTIONS = ("badja", "jhmdb")


def j_measure(gt: np.ndarray, pred: np.ndarray) -> float:
    """IoU of two (H, W) boolean masks; 1.0 when both are empty."""
    gt, pred = gt.astype(bool), pred.astype(bool)
    union = np.logical_or(gt, pred).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(gt, pred).sum() / union)


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """DAVIS ``seg2bmap`` of an (H, W) mask -> (H, W) bool: pixels that differ from their east, south or
    south-east neighbour (only neighbours inside the image count)."""
    seg = mask.astype(bool)
    b = np.zeros_like(seg)
    b[:, :-1] |= seg[:, :-1] != seg[:, 1:]  # east
    b[:-1, :] |= seg[:-1, :] != seg[1:, :]  # south
    b[:-1, :-1] |= seg[:-1, :-1] != seg[1:, 1:]  # south-east
    return b


def tolerance_px(shape: tuple[int, int], bound_th: float = BOUND_TH) -> int:
    """Matching radius in pixels: ``ceil(bound_th * image diagonal)``, or ``bound_th`` itself if >= 1."""
    if bound_th >= 1:
        return int(bound_th)
    return int(math.ceil(bound_th * math.hypot(*shape)))


def f_measure(gt: np.ndarray, pred: np.ndarray, bound_th: float = BOUND_TH) -> tuple[float, float, float]:
    """Boundary (F, precision, recall) of two (H, W) masks (definition in the module docstring)."""
    gt, pred = gt.astype(bool), pred.astype(bool)
    r = tolerance_px(gt.shape, bound_th)
    # Work inside the bounding box of both masks grown by r + 2: the boundary maps (which reach one pixel
    # above/left of a mask) and their dilations are all inside it, and a crop that stops at the image
    # border keeps the border's seg2bmap rule.
    ys, xs = np.nonzero(gt | pred)
    if len(ys):
        y0, y1 = max(ys.min() - r - 2, 0), ys.max() + r + 3
        x0, x1 = max(xs.min() - r - 2, 0), xs.max() + r + 3
        gt, pred = gt[y0:y1, x0:x1], pred[y0:y1, x0:x1]
    gt_b, pred_b = boundary_map(gt), boundary_map(pred)
    n_gt, n_pred = int(gt_b.sum()), int(pred_b.sum())
    if n_gt == 0 and n_pred == 0:
        return 1.0, 1.0, 1.0
    if n_gt == 0 or n_pred == 0:
        return 0.0, float(n_pred == 0), float(n_gt == 0)  # (F, precision, recall)
    precision = float((pred_b & dilate(gt_b, r)).sum() / n_pred)
    recall = float((gt_b & dilate(pred_b, r)).sum() / n_gt)
    if precision + recall == 0:
        return 0.0, precision, recall
    return 2 * precision * recall / (precision + recall), precision, recall


def dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Binary dilation of a non-empty (H, W) bool mask by ``skimage.morphology.disk(r)`` (offsets with
    dy^2 + dx^2 <= r^2), as the official ``cv2.dilate`` with that disk; computed exactly (and fast for
    r = 8) as "Euclidean distance to the mask <= r" with scipy's distance transform."""
    return distance_transform_edt(~mask) <= r


def decay(per_frame: np.ndarray, n_bins: int = 4) -> float:
    """DAVIS decay of (N,) per-frame scores: mean of the first of ``n_bins`` bins minus mean of the last."""
    per_frame = np.asarray(per_frame, dtype=np.float64)
    if len(per_frame) == 0:
        return float("nan")
    ids = np.round(np.linspace(1, len(per_frame), n_bins + 1) + 1e-10).astype(int) - 1
    bins = [per_frame[ids[i] : ids[i + 1] + 1] for i in range(n_bins)]
    return float(np.nanmean(bins[0]) - np.nanmean(bins[-1]))


def statistics(per_frame: np.ndarray) -> dict[str, float]:
    """Mean, Recall (fraction > 0.5) and Decay of (N,) per-frame scores (NaN if there are none)."""
    per_frame = np.asarray(per_frame, dtype=np.float64)
    if len(per_frame) == 0:
        return {"Mean": float("nan"), "Recall": float("nan"), "Decay": float("nan")}
    return {"Mean": float(np.nanmean(per_frame)), "Recall": float((per_frame > 0.5).mean()), "Decay": decay(per_frame)}


def frame_scores(
    gt: np.ndarray, pred: np.ndarray, object_ids: list[int], bound_th: float = BOUND_TH
) -> tuple[np.ndarray, np.ndarray]:
    """J and F of each object in one frame: gt, pred (H, W) int label maps -> (J (N,), F (N,)).

    Void pixels (255) of ``gt`` are background, as in the official semi-supervised evaluation."""
    if gt.shape != pred.shape:
        raise ValueError(f"prediction is {pred.shape[1]}x{pred.shape[0]}, ground truth {gt.shape[1]}x{gt.shape[0]}")
    gt = np.where(gt == VOID, 0, gt)
    j = np.array([j_measure(gt == k, pred == k) for k in object_ids])
    f = np.array([f_measure(gt == k, pred == k, bound_th)[0] for k in object_ids])
    return j, f


class SequenceScorer:
    """Accumulates per-frame J and F of one sequence, frame by frame (memory: two floats per object-frame).

    scorer = SequenceScorer(object_ids, num_frames=len(seq))
    for t, pred in enumerate(predictions):
        scorer.add(t, seq.mask(t), pred)
    rows = scorer.summary()   # one dict per object
    """

    def __init__(self, object_ids: list[int], num_frames: int, bound_th: float = BOUND_TH):
        self.object_ids = [int(k) for k in object_ids if k not in (0, VOID)]
        self.num_frames = num_frames
        self.bound_th = bound_th
        self.j: list[np.ndarray] = []
        self.f: list[np.ndarray] = []

    def scored(self, t: int) -> bool:
        """DAVIS scores frames 1..T-2 (the given first frame and the last frame are excluded)."""
        return 0 < t < self.num_frames - 1

    def add(self, t: int, gt: np.ndarray | None, pred: np.ndarray) -> None:
        """Score frame ``t``: gt (H, W) int ids or None (not annotated), pred (H, W) int ids."""
        if gt is None or not self.scored(t):
            return
        j, f = frame_scores(gt, pred, self.object_ids, self.bound_th)
        self.j.append(j)
        self.f.append(f)

    def summary(self) -> list[dict[str, float]]:
        """Per object: J-Mean, J-Recall, J-Decay, F-Mean, F-Recall, F-Decay, frames (scored)."""
        n = len(self.object_ids)
        j = np.stack(self.j, 1) if self.j else np.zeros((n, 0))
        f = np.stack(self.f, 1) if self.f else np.zeros((n, 0))
        rows = []
        for i, k in enumerate(self.object_ids):
            row: dict[str, float] = {"object": k, "frames": j.shape[1]}
            row.update({f"J-{s}": v for s, v in statistics(j[i]).items()})
            row.update({f"F-{s}": v for s, v in statistics(f[i]).items()})
            rows.append(row)
        return rows


def dataset_summary(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean over objects (rows from :meth:`SequenceScorer.summary`) and J&F-Mean; NaN rows are ignored."""
    keys = ["J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
    out: dict[str, float] = {}
    for key in keys:
        vals = np.array([r[key] for r in rows], dtype=np.float64)
        vals = vals[~np.isnan(vals)]
        out[key] = float(vals.mean()) if len(vals) else float("nan")
    out["J&F-Mean"] = (out["J-Mean"] + out["F-Mean"]) / 2
    return {"J&F-Mean": out.pop("J&F-Mean"), **out}


# ---------------------------------------------------------------------------------------------- PCK
def badja_threshold(mask: np.ndarray) -> float:
    """BADJA's reference length of one frame: sqrt(number of object pixels) of its (H, W) id mask
    (ids > 0, void 255 excluded)."""
    return float(math.sqrt(np.count_nonzero((mask > 0) & (mask != VOID))))


def jhmdb_threshold(gt_xy: np.ndarray, visible: np.ndarray) -> float:
    """The CRW/UVC reference length of one frame: 0.6 x diagonal of the bounding box of the visible
    ground-truth joints, gt_xy (J, 2), visible (J,); NaN when no joint is visible."""
    pts = np.asarray(gt_xy, np.float64)[np.asarray(visible, bool)]
    if len(pts) == 0:
        return float("nan")
    return float(0.6 * np.linalg.norm(pts.max(0) - pts.min(0)))


def joint_hits(pred_xy: np.ndarray, gt_xy: np.ndarray, ref: np.ndarray, alpha: float, convention: str) -> np.ndarray:
    """(T, J) bool: joint within ``alpha * ref`` px of the truth; pred_xy, gt_xy (T, J, 2), ref (T,).

    ``badja`` uses a strict ``<``, ``jhmdb`` ``<=`` (as their reference code)."""
    if convention not in PCK_CONVENTIONS:
        raise ValueError(f"unknown PCK convention {convention!r} (one of {', '.join(PCK_CONVENTIONS)})")
    dist = np.linalg.norm(np.asarray(pred_xy, np.float64) - np.asarray(gt_xy, np.float64), axis=-1)
    thr = alpha * np.asarray(ref, np.float64)[:, None]
    return dist < thr if convention == "badja" else dist <= thr


def pck_badja(hits: np.ndarray, visible: np.ndarray) -> float:
    """BADJA PCK: mean over frames of the fraction of visible joints hit; hits, visible (T, J) bool.
    Frames without a visible joint are left out; NaN if none is left."""
    visible = np.asarray(visible, bool)
    n = visible.sum(1)
    keep = n > 0
    if not keep.any():
        return float("nan")
    return float(np.mean((hits & visible).sum(1)[keep] / n[keep]))


def pck_jhmdb(hits: np.ndarray, visible: np.ndarray) -> float:
    """CRW/UVC PCK: per joint, the fraction of its visible instances hit; then the mean over the joints
    that have any; hits, visible (T, J) bool (T pools every scored frame of every video)."""
    visible = np.asarray(visible, bool)
    n = visible.sum(0)
    keep = n > 0
    if not keep.any():
        return float("nan")
    return float(np.mean((hits & visible).sum(0)[keep] / n[keep]))


def pck(hits: np.ndarray, visible: np.ndarray, convention: str) -> float:
    """PCK of (T, J) hits and visibility under ``convention`` ('badja' or 'jhmdb')."""
    return pck_badja(hits, visible) if convention == "badja" else pck_jhmdb(hits, visible)
