"""DAVIS J/F and PCK on hand-built masks with known scores."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import binary_dilation
from skimage.morphology import disk

from ever.evaluate import metrics as M


def square(y0, x0, size, shape=(100, 100)):
    m = np.zeros(shape, bool)
    m[y0:y0 + size, x0:x0 + size] = True
    return m


def test_iou_of_overlapping_squares():
    # 10x10 squares offset by (5, 5): overlap 25, union 175
    assert M.j_measure(square(0, 0, 10), square(5, 5, 10)) == pytest.approx(25 / 175)
    assert M.j_measure(square(0, 0, 10), square(0, 0, 10)) == 1.0


def test_iou_empty_cases():
    empty = np.zeros((20, 20), bool)
    assert M.j_measure(empty, empty) == 1.0
    assert M.j_measure(empty, square(2, 2, 4, (20, 20))) == 0.0


def test_tolerance_is_davis():
    assert M.tolerance_px((480, 854)) == 8  # ceil(0.008 * 979.6)
    assert M.tolerance_px((100, 100)) == 2  # ceil(1.13)
    assert M.tolerance_px((100, 100), bound_th=3) == 3


def test_f_identical_and_far():
    assert M.f_measure(square(10, 10, 20), square(10, 10, 20)) == (1.0, 1.0, 1.0)
    assert M.f_measure(square(0, 0, 10), square(80, 80, 10))[0] == 0.0


def test_f_empty_cases():
    empty = np.zeros((100, 100), bool)
    assert M.f_measure(empty, empty)[0] == 1.0
    assert M.f_measure(empty, square(10, 10, 20))[0] == 0.0
    assert M.f_measure(square(10, 10, 20), empty)[0] == 0.0
    # an empty prediction: nothing predicted is wrong (P = 1), nothing of the truth is found (R = 0)
    assert M.f_measure(square(10, 10, 20), empty)[1:] == (1.0, 0.0)
    assert M.f_measure(empty, square(10, 10, 20))[1:] == (0.0, 1.0)


def test_f_by_hand_shifted_square():
    # 100x100 image: tolerance 2 px. gt = 20x20 square at cols 10..29, pred = shifted 3 px right (13..32).
    # Inner boundaries have 76 px each. Pred boundary pixels within 2 px of gt's boundary:
    # top and bottom rows: cols 13..31 (19 each); left column (col 13, rows 11..28): only rows 11, 12,
    # 27, 28 (close to gt's top/bottom rows) -> 4; right column (col 32): 3 px from gt's -> 0.
    # precision = 42 / 76, and recall = 42 / 76 by symmetry, so F = 42 / 76.
    f, p, r = M.f_measure(square(10, 10, 20), square(10, 13, 20))
    assert p == pytest.approx(42 / 76) and r == pytest.approx(42 / 76) and f == pytest.approx(42 / 76)


def test_f_precision_recall_asymmetric():
    # pred is a sub-square sharing gt's top-left corner, far from gt's other sides (tolerance 2)
    gt, pred = square(10, 10, 40), square(10, 10, 10)
    f, p, r = M.f_measure(gt, pred)
    assert r < p < 1.0
    assert f == pytest.approx(2 * p * r / (p + r))


@pytest.mark.parametrize("r", [1, 2, 8])
def test_dilation_equals_disk_dilation(r):
    b = M.boundary(square(20, 30, 25) | square(50, 10, 7))
    assert (M.dilate(b, r) == binary_dilation(b, structure=disk(r).astype(bool))).all()


def test_statistics_and_decay():
    s = M.statistics(np.array([1, 1, 1, 1, 0, 0, 0, 0.6]))
    assert s["Mean"] == pytest.approx(4.6 / 8)
    assert s["Recall"] == pytest.approx(5 / 8)
    # DAVIS bins 8 frames as [0:3], [2:5], [4:6], [5:8]: decay = 1 - mean(0, 0, 0.6)
    assert s["Decay"] == pytest.approx(1 - 0.2)
    assert np.isnan(M.statistics(np.array([]))["Mean"])


def test_scorer_excludes_first_and_last_frames_and_unannotated():
    gt = np.zeros((100, 100), np.int64)
    gt[10:30, 10:30] = 1
    gt[50:70, 50:70] = 2
    wrong = np.zeros_like(gt)
    wrong[10:30, 10:30] = 1  # object 1 right, object 2 missed
    scorer = M.SequenceScorer([1, 2], num_frames=5)
    scorer.add(0, gt, wrong)  # excluded (given frame)
    scorer.add(1, gt, gt)
    scorer.add(2, None, wrong)  # no annotation
    scorer.add(3, gt, wrong)
    scorer.add(4, gt, wrong)  # excluded (last frame)
    rows = scorer.summary()
    assert [r["frames"] for r in rows] == [2, 2]
    assert rows[0]["J-Mean"] == 1.0 and rows[0]["F-Mean"] == 1.0
    assert rows[1]["J-Mean"] == 0.5 and rows[1]["J-Recall"] == 0.5 and rows[1]["F-Mean"] == 0.5
    summary = M.dataset_summary(rows)
    assert summary["J-Mean"] == 0.75 and summary["F-Mean"] == 0.75 and summary["J&F-Mean"] == 0.75


def test_pck():
    gt = np.array([[[10.0, 10.0], [50.0, 50.0], [0.0, 0.0]]])  # (T=1, J=3, 2)
    pred = np.array([[[13.0, 14.0], [50.0, 62.0], [90.0, 90.0]]])  # errors 5, 12, (invisible)
    vis = np.array([[True, True, False]])
    ref = np.array([100.0])
    assert M.pck(pred, gt, vis, ref, alpha=0.1) == 0.5  # threshold 10 px
    assert M.pck(pred, gt, vis, ref, alpha=0.2) == 1.0  # threshold 20 px
    assert np.isnan(M.pck(pred, gt, np.zeros_like(vis), ref))
