"""PCK conventions of keypoint files and their pooling over sequences, on hand-computed cases."""

from __future__ import annotations

import json

import pytest
from test_davis import make_davis

from ever.data.davis import DavisDataset
from ever.errors import DataError
from ever.evaluate import keypoints as KP


def _result(convention, hits, visible):
    return {"pck_convention": convention, "frames": len(visible), "hits": {"PCK@0.1": hits}, "visible": visible}


def test_pool_badja_counts_every_frame_once():
    # sequence a: frames with 1/2 and 2/2 joints hit; sequence b (other joint list): 0/1 -> (0.5 + 1 + 0) / 3
    a = _result("badja", [[1, 0], [1, 1]], [[1, 1], [1, 1]])
    b = _result("badja", [[0, 0, 0]], [[1, 0, 0]])
    assert KP.pool_pck([a, b]) == {"pck_convention": "badja", "PCK@0.1": pytest.approx(0.5)}


def test_pool_jhmdb_per_joint_over_all_videos():
    # joint 0: hit 1 of 3 instances (2 in a, 1 in b); joint 1: 2 of 2 -> (1/3 + 1) / 2
    a = _result("jhmdb", [[1, 1], [0, 0]], [[1, 1], [1, 0]])
    b = _result("jhmdb", [[0, 1]], [[1, 1]])
    assert KP.pool_pck([a, b])["PCK@0.1"] == pytest.approx((1 / 3 + 1) / 2)
    with pytest.raises(DataError, match="mix PCK conventions"):
        KP.pool_pck([a, _result("badja", [[1]], [[1]])])


def test_convention_field_and_thresholds_in_score_keypoints(tmp_path):
    # one object, the 16x16 square of make_davis: BADJA reference sqrt(256) = 16 px, strict <. The copy
    # baseline keeps frame 0's joints (10, 10), (30, 10); at frame 2 the truth is (12, 10), (30, 13): errors
    # 2 and 3 px. JHMDB reference: 0.6 x diagonal of the box of (12, 10), (30, 13) = 0.6 x sqrt(333) = 10.95.
    # alpha 0.15: BADJA 2.4 px -> 1 of 2; JHMDB 1.64 px -> 0 of 2.
    # alpha 0.2:  BADJA 3.2 px -> 2 of 2; JHMDB 2.19 px -> 1 of 2.
    make_davis(tmp_path, {"a": (3, 48, 64, 1)})
    seq = DavisDataset(tmp_path, "val").sequence("a")
    ann = {
        "annotated_frames": [
            {"frame": "00000", "joints_xy_480p": [[10, 10], [30, 10]], "visible": [True, True]},
            {"frame": "00002", "joints_xy_480p": [[12, 10], [30, 13]], "visible": [True, True]},
        ]
    }
    path = tmp_path / "kp.json"
    stems = [seq.frame_stem(i) for i in range(len(seq))]
    for convention, expected in (("badja", (0.5, 1.0)), ("jhmdb", (0.0, 0.5))):
        ann["pck_convention"] = convention
        path.write_text(json.dumps(ann))
        kp = KP.read_keypoints(path, stems)
        res = KP.score_keypoints(seq, kp, "copy", alphas=(0.15, 0.2))
        assert res["pck_convention"] == convention and res["frames"] == 1 and res["joints"] == 2
        assert (res["PCK@0.15"], res["PCK@0.2"]) == pytest.approx(expected), convention
    del ann["pck_convention"]  # absent -> badja
    path.write_text(json.dumps(ann))
    assert KP.read_keypoints(path, stems).convention == "badja"
