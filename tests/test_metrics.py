"""DAVIS J/F and PCK on hand-built masks with known scores.

The OFFICIAL_* values were computed by the official DAVIS evaluation code, davisvideochallenge/
davis2017-evaluation at commit ac7c43fca936f9722837b7fbd337d284ba37004b (``davis2017/metrics.py``:
``db_eval_iou``, ``f_measure``; ``davis2017/utils.py``: ``db_statistics``, ``save_mask``;
``davis2017/evaluation.py``: ``DAVISEvaluation(task='semi-supervised', gt_set='train').evaluate``), run
outside this repository in a venv with numpy 2, opencv-python-headless, scikit-image, scipy, pandas, on the
masks of ``tests/davis_fixtures.py``: J = ``db_eval_iou(gt, pred)``, F = ``f_measure(pred, gt)``,
statistics = ``db_statistics(series)``, and the sequences written as palette PNGs (``save_mask``) into a
DAVIS folder (ImageSets/2017/train.txt) and a results folder, then scored like ``evaluation_method.py``
does (means over objects of J["M"], J["R"], J["D"], ...). They are not outputs of EVER's code.
"""

from __future__ import annotations

import davis_fixtures as fx
import numpy as np
import pytest
from scipy.ndimage import binary_dilation
from skimage.morphology import disk

from ever.evaluate import metrics as M

# (J, F) of each pair of davis_fixtures.mask_pairs(), by the official db_eval_iou / f_measure
OFFICIAL_PAIRS = {
    "shifted_square": (0.7391304347826086, 0.55),
    "bottom_right_border": (0.7246376811594203, 0.0),
    "top_left_border": (0.782608695652174, 0.42105263157894735),
    "disk_vs_square": (0.8432098765432099, 0.6746166950596252),
    "ring_vs_filled": (0.6478190630048465, 0.25806451612903225),
    "one_pixel": (0.0, 0.8),
    "blobs": (0.4453889147647881, 0.4215072315777427),
    "blob_480p": (0.9155180016785445, 0.8116538632954583),
    "empty_pred": (0.0, 0.0),
    "empty_gt": (0.0, 0.0),
    "both_empty": (1.0, 1.0),
}
# (Mean, Recall, Decay) of each series of davis_fixtures.per_frame_series(), by the official db_statistics
OFFICIAL_SERIES = {
    "n8": (0.575, 0.625, 0.8),
    "n5": (0.48, 0.4, 0.15000000000000008),
    "n1": (0.3, 0.0, 0.0),
    "n13": (0.5750000000000001, 0.6153846153846154, 0.5625),
}
# Global scores of davis_fixtures.sequences() by the official semi-supervised evaluation
OFFICIAL_SEQUENCES = {
    "J&F-Mean": 0.5634209601035614,
    "J-Mean": 0.6062972757303453,
    "J-Recall": 0.8611111111111112,
    "J-Decay": 0.273343701711952,
    "F-Mean": 0.5205446444767775,
    "F-Recall": 0.4444444444444444,
    "F-Decay": 0.34215301276003346,
}
# (J-Mean, F-Mean) per (sequence, object), the official M_per_object
OFFICIAL_OBJECTS = {
    ("two", 1): (0.621540626929643, 0.5435884833114587),
    ("two", 2): (0.6888981408829605, 0.5061952938501761),
    ("one", 1): (0.5084530593784324, 0.5118501562686977),
}


def square(y0, x0, size, shape=(100, 100)):
    m = np.zeros(shape, bool)
    m[y0 : y0 + size, x0 : x0 + size] = True
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


def test_f_precision_recall_asymmetric():
    # pred is a sub-square sharing gt's top-left corner, far from gt's other sides (tolerance 2)
    gt, pred = square(10, 10, 40), square(10, 10, 10)
    f, p, r = M.f_measure(gt, pred)
    assert r < p < 1.0
    assert f == pytest.approx(2 * p * r / (p + r))


@pytest.mark.parametrize("r", [1, 2, 8])
def test_dilation_equals_disk_dilation(r):
    b = M.boundary_map(square(20, 30, 25) | square(50, 10, 7))
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


@pytest.mark.parametrize("name", sorted(OFFICIAL_PAIRS))
def test_j_and_f_agree_with_official_code(name):
    gt, pred = fx.mask_pairs()[name]
    j, f = OFFICIAL_PAIRS[name]
    assert M.j_measure(gt, pred) == pytest.approx(j, abs=1e-12)
    assert M.f_measure(gt, pred)[0] == pytest.approx(f, abs=1e-12)


@pytest.mark.parametrize("name", sorted(OFFICIAL_SERIES))
def test_statistics_agree_with_official_code(name):
    s = M.statistics(fx.per_frame_series()[name])
    assert (s["Mean"], s["Recall"], s["Decay"]) == pytest.approx(OFFICIAL_SERIES[name], abs=1e-12)


def _score_fixture_sequences():
    rows = []
    for name, (gts, preds) in fx.sequences().items():
        ids = [int(i) for i in np.unique(gts[0]) if i != 0]  # 255 is in there: the scorer must drop it
        scorer = M.SequenceScorer(ids, len(gts))
        for t, (gt, pred) in enumerate(zip(gts, preds)):
            scorer.add(t, gt.astype(np.int64), pred.astype(np.int64))
        rows += [{"sequence": name, **r} for r in scorer.summary()]
    return rows


def test_sequences_with_void_agree_with_official_evaluation():
    rows = _score_fixture_sequences()
    assert [(r["sequence"], r["object"]) for r in rows] == list(OFFICIAL_OBJECTS)  # 255 is no object
    for r in rows:
        j, f = OFFICIAL_OBJECTS[(r["sequence"], r["object"])]
        assert r["J-Mean"] == pytest.approx(j, abs=1e-12) and r["F-Mean"] == pytest.approx(f, abs=1e-12)
    summary = M.dataset_summary(rows)
    for key, value in OFFICIAL_SEQUENCES.items():
        assert summary[key] == pytest.approx(value, abs=1e-12), key


def test_void_is_background_in_the_ground_truth():
    # As the official semi-supervised evaluation: GT 255 -> background, no pixel excluded. A prediction
    # that also covers the void band is penalised in J by exactly those pixels.
    gt = np.zeros((40, 40), np.int64)
    gt[10:20, 10:20] = 1
    gt[8:10, 8:22] = M.VOID  # 28 void pixels above the object
    pred = np.where(gt > 0, 1, 0)  # object + void band: 100 + 28 pixels
    j, f = M.frame_scores(gt, pred, [1])
    assert j[0] == pytest.approx(100 / 128)
    assert f[0] == pytest.approx(M.f_measure(gt == 1, pred == 1)[0]) and f[0] < 1
    assert M.SequenceScorer([1, 255], 3).object_ids == [1]


def test_boundary_map_is_seg2bmap():
    # a pixel is a boundary pixel when it differs from its E, S or SE neighbour inside the image; the
    # expected maps are the official davis2017/metrics.py _seg2bmap of these masks (same commit as above)
    m = np.zeros((4, 5), bool)
    m[1:3, 1:3] = True
    expected = np.array(
        [[1, 1, 1, 0, 0], [1, 0, 1, 0, 0], [1, 1, 1, 0, 0], [0, 0, 0, 0, 0]], bool
    )  # the last row compares with its E neighbour only
    assert (M.boundary_map(m) == expected).all()
    full = np.ones((3, 3), bool)  # the image border is no boundary
    assert not M.boundary_map(full).any()
    edge = np.zeros((3, 3), bool)
    edge[:, 2] = True  # touching the right border: only the column left of it
    assert (M.boundary_map(edge) == np.array([[0, 1, 0], [0, 1, 0], [0, 1, 0]], bool)).all()


def test_frame_size_mismatch_is_an_error():
    with pytest.raises(ValueError, match="prediction is 4x3"):
        M.frame_scores(np.zeros((4, 4), int), np.zeros((3, 4), int), [1])


def test_pck_thresholds_and_conventions():
    mask = np.zeros((100, 100), np.int64)
    mask[0:20, 0:20] = 1  # area 400: BADJA reference sqrt(400) = 20 px
    mask[50, 50] = M.VOID  # not part of the object
    assert M.badja_threshold(mask) == 20.0
    # JHMDB: visible joints at (0, 0), (30, 40) -> bbox diagonal 50 -> 0.6 * 50 = 30; the invisible one ignored
    assert M.jhmdb_threshold(np.array([[0, 0], [30, 40], [500, 500]]), np.array([1, 1, 0], bool)) == 30.0
    assert np.isnan(M.jhmdb_threshold(np.zeros((2, 2)), np.zeros(2, bool)))
    gt = np.zeros((1, 3, 2))
    pred = np.array([[[2.0, 0.0], [3.0, 4.0], [0.0, 1.0]]])  # errors 2, 5, 1
    ref = np.array([20.0])
    # alpha 0.1 -> 2 px: BADJA is strict (2 < 2 false), JHMDB is not (2 <= 2 true)
    assert M.joint_hits(pred, gt, ref, 0.1, "badja").tolist() == [[False, False, True]]
    assert M.joint_hits(pred, gt, ref, 0.1, "jhmdb").tolist() == [[True, False, True]]
    with pytest.raises(ValueError, match="unknown PCK convention"):
        M.joint_hits(pred, gt, ref, 0.1, "coco")


def test_pck_averaging_badja_per_frame_jhmdb_per_joint():
    # frame 0: joint 0 hit, joint 1 missed; frame 1: joint 0 hit, joint 1 invisible; frame 2: nothing visible
    hits = np.array([[1, 0], [1, 1], [0, 0]], bool)
    vis = np.array([[1, 1], [1, 0], [0, 0]], bool)
    assert M.pck_badja(hits, vis) == pytest.approx((0.5 + 1.0) / 2)  # mean over frames
    assert M.pck_jhmdb(hits, vis) == pytest.approx((2 / 2 + 0 / 1) / 2)  # per joint, then over joints
    assert M.pck(hits, vis, "badja") != M.pck(hits, vis, "jhmdb")
    assert np.isnan(M.pck_badja(hits, np.zeros_like(vis))) and np.isnan(M.pck_jhmdb(hits, np.zeros_like(vis)))
