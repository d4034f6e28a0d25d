"""DAVIS video-object-segmentation metrics (J, F and their statistics) and keypoint PCK.

Definitions (as in the DAVIS 2017 semi-supervised benchmark, Pont-Tuset et al. 2017; Perazzi et al. 2016):

* **J (region similarity)** of one object in one frame: the IoU |G n P| / |G u P| of the binary ground-truth
  mask G and predicted mask P. Both empty gives J = 1.
* **F (contour accuracy)**: the boundary F-measure. The boundaries of G and P are the 1-pixel contours
  ``skimage.segmentation.find_boundaries(mask, mode='inner')`` (object pixels 4-adjacent to background;
  the image border is not a boundary). A boundary pixel of P is matched if a boundary pixel of G lies
  within the tolerance, i.e. inside G's boundary dilated by a disk of radius ``ceil(bound_th * diag)``
  pixels (``diag`` = image diagonal; ``bound_th`` = 0.008 as in DAVIS, 8 px at 854x480; a ``bound_th``
  >= 1 is taken as the radius in pixels; the dilation is computed exactly by a distance transform). precision = matched P pixels / P boundary pixels,
  recall = matched G pixels / G boundary pixels, F = 2PR / (P + R) (0 when P + R = 0). Empty
  boundaries: both empty -> F = 1; only one empty -> F = 0.
* Per-object statistics over the frames of a sequence: **Mean**; **Recall** = fraction of frames with a
  score > 0.5; **Decay** = mean of the first quarter of the frames minus the mean of the last quarter
  (DAVIS bins the frames into 4 near-equal parts).
* As DAVIS does for the semi-supervised task, the **first frame (given) and the last frame are excluded**
  from these statistics: a sequence of T frames is scored on frames 1..T-2. Frames without a ground-truth
  annotation are skipped as well.
* Dataset level: every object of every sequence counts once: J-Mean = mean over objects of their J-Mean
  (likewise J-Recall, F-Mean, F-Recall, decays), and J&F-Mean = (J-Mean + F-Mean) / 2.

**PCK** (percentage of correct keypoints): a visible ground-truth joint is correct when the predicted
position lies within ``alpha * ref_size`` pixels (Euclidean) of it. The caller chooses the reference size;
:mod:`ever.evaluate.run` uses the longer side of the bounding box of the object's ground-truth mask in
that frame (the bounding box of the visible joints when there is no mask), so PCK@0.1 allows an error of
a tenth of the object's size.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import distance_transform_edt
from skimage.segmentation import find_boundaries

BOUND_TH = 0.008


def j_measure(gt: np.ndarray, pred: np.ndarray) -> float:
    """IoU of two (H, W) boolean masks; 1.0 when both are empty."""
    gt, pred = gt.astype(bool), pred.astype(bool)
    union = np.logical_or(gt, pred).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(gt, pred).sum() / union)


def boundary(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: object pixels 4-adjacent to a background pixel."""
    return find_boundaries(mask.astype(bool), mode="inner", connectivity=1)


def tolerance_px(shape: tuple[int, int], bound_th: float = BOUND_TH) -> int:
    """Matching radius in pixels: ``ceil(bound_th * image diagonal)``, or ``bound_th`` itself if >= 1."""
    if bound_th >= 1:
        return int(round(bound_th))
    return int(math.ceil(bound_th * math.hypot(*shape)))


def f_measure(gt: np.ndarray, pred: np.ndarray, bound_th: float = BOUND_TH) -> tuple[float, float, float]:
    """Boundary (F, precision, recall) of two (H, W) masks (see module docstring)."""
    gt, pred = gt.astype(bool), pred.astype(bool)
    r = tolerance_px(gt.shape, bound_th)
    # Work inside the bounding box of both masks grown by the radius: nothing outside it can matter.
    ys, xs = np.nonzero(gt | pred)
    if len(ys):
        y0, y1 = max(ys.min() - r - 2, 0), ys.max() + r + 3
        x0, x1 = max(xs.min() - r - 2, 0), xs.max() + r + 3
        gt, pred = gt[y0:y1, x0:x1], pred[y0:y1, x0:x1]
    gt_b, pred_b = boundary(gt), boundary(pred)
    n_gt, n_pred = int(gt_b.sum()), int(pred_b.sum())
    if n_gt == 0 and n_pred == 0:
        return 1.0, 1.0, 1.0
    if n_gt == 0 or n_pred == 0:
        return 0.0, float(n_pred == 0), float(n_gt == 0)  # (F, precision, recall)
    gt_dil, pred_dil = dilate(gt_b, r), dilate(pred_b, r)
    precision = float((pred_b & gt_dil).sum() / n_pred)
    recall = float((gt_b & pred_dil).sum() / n_gt)
    if precision + recall == 0:
        return 0.0, precision, recall
    return 2 * precision * recall / (precision + recall), precision, recall


def dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Binary dilation by ``skimage.morphology.disk(r)`` (points with dy^2 + dx^2 <= r^2).

    Computed with scipy's exact Euclidean distance transform (distance to the mask <= r), which gives
    the same pixels as ``scipy.ndimage.binary_dilation(mask, disk(r))`` but much faster for r = 8.
    """
    return distance_transform_edt(~mask) <= r


def decay(per_frame: np.ndarray, n_bins: int = 4) -> float:
    """DAVIS decay: mean of the first of ``n_bins`` near-equal chunks minus mean of the last."""
    per_frame = np.asarray(per_frame, dtype=np.float64)
    if len(per_frame) == 0:
        return float("nan")
    ids = np.round(np.linspace(1, len(per_frame), n_bins + 1) + 1e-10).astype(int) - 1
    bins = [per_frame[ids[i]:ids[i + 1] + 1] for i in range(n_bins)]
    return float(np.mean(bins[0]) - np.mean(bins[-1]))


def statistics(per_frame: np.ndarray) -> dict[str, float]:
    """Mean, Recall (fraction > 0.5) and Decay of per-frame scores (NaN if there are none)."""
    per_frame = np.asarray(per_frame, dtype=np.float64)
    if len(per_frame) == 0:
        return {"Mean": float("nan"), "Recall": float("nan"), "Decay": float("nan")}
    return {"Mean": float(per_frame.mean()), "Recall": float((per_frame > 0.5).mean()),
            "Decay": decay(per_frame)}


def frame_scores(gt: np.ndarray, pred: np.ndarray, object_ids: list[int],
                 bound_th: float = BOUND_TH) -> tuple[np.ndarray, np.ndarray]:
    """J and F of each object in one frame: gt, pred (H, W) int label maps -> (J (N,), F (N,))."""
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
        self.object_ids = list(object_ids)
        self.num_frames = num_frames
        self.bound_th = bound_th
        self.j: list[np.ndarray] = []
        self.f: list[np.ndarray] = []

    def scored(self, t: int) -> bool:
        """DAVIS scores frames 1..T-2 (the given first frame and the last frame are excluded)."""
        return 0 < t < self.num_frames - 1

    def add(self, t: int, gt: np.ndarray | None, pred: np.ndarray) -> None:
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


def pck(pred_xy: np.ndarray, gt_xy: np.ndarray, visible: np.ndarray, ref_size: np.ndarray,
        alpha: float = 0.1) -> float:
    """Fraction of visible joints predicted within ``alpha * ref_size`` px.

    pred_xy, gt_xy: (T, J, 2) (x, y) pixels; visible: (T, J) bool; ref_size: (T,) pixels (object size in
    each frame). NaN if no joint is visible.
    """
    pred_xy, gt_xy = np.asarray(pred_xy, np.float64), np.asarray(gt_xy, np.float64)
    visible = np.asarray(visible, bool)
    dist = np.linalg.norm(pred_xy - gt_xy, axis=-1)  # (T, J)
    thr = alpha * np.asarray(ref_size, np.float64)[:, None]  # (T, 1)
    if visible.sum() == 0:
        return float("nan")
    return float((dist <= thr)[visible].mean())
