"""ever.explore: the functions behind the exploration notebook, without a display; the notebook headless."""
from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ever.explore import (Explorer, palindrome_walk, propagate_labels, topk_matches, transition_probs)
from ever.walk import transition_matrices

ROOT = Path(__file__).resolve().parents[1]
DAVIS_DEV = ROOT.parent / "shared" / "data" / "davis2016-dev"
SHIFT = (8, 16)  # (dy, dx) of the square per frame, px


def square_video(T: int = 4, H: int = 48, W: int = 80, y0: int = 8, x0: int = 8) -> np.ndarray:
    """A red 8x8 square (one feature cell) moving by SHIFT per frame on a blue-grey background."""
    v = np.zeros((T, H, W, 3), np.uint8)
    v[..., :] = (60, 80, 120)
    for t in range(T):
        y, x = y0 + t * SHIFT[0], x0 + t * SHIFT[1]
        v[t, y:y + 8, x:x + 8] = (230, 20, 20)
    return v


def colour_features(x: torch.Tensor) -> torch.Tensor:
    """(t, 3, H, W) -> (t, 3, H/8, W/8): centred mean colour of each 8x8 cell."""
    return F.avg_pool2d(x - 0.5, 8)


def rand_emb(T: int, N: int, D: int = 8, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(T, N, D, generator=g), dim=-1)


# ----------------------------------------------------------------------------- transition heat map, top-k

def test_transition_probs_is_the_walk_row_and_sums_to_one():
    emb = rand_emb(2, 7)
    fwd, _ = transition_matrices(emb[None], temperature=0.1)
    for node in range(7):
        p = transition_probs(emb[0], emb[1], node, 0.1)
        assert p.shape == (7,)
        assert torch.allclose(p.sum(), torch.tensor(1.0), atol=1e-5)
        assert torch.allclose(p, fwd[0][0, node], atol=1e-6)


def test_transition_probs_respects_invalid_targets():
    emb = rand_emb(2, 6)
    valid = torch.tensor([True, False, True, True, False, True])
    p = transition_probs(emb[0], emb[1], 2, 0.07, valid)
    assert float(p[~valid].sum()) < 1e-12 and abs(float(p.sum()) - 1) < 1e-5


def test_topk_sorted_k_entries_valid_indices():
    p = torch.softmax(torch.randn(20, generator=torch.Generator().manual_seed(1)), 0)
    idx, val = topk_matches(p, 5)
    assert len(idx) == 5 and len(val) == 5
    assert np.all(np.diff(val) <= 0) and np.all((idx >= 0) & (idx < 20))
    assert idx[0] == int(p.argmax()) and np.allclose(val, p[idx].numpy())
    valid = torch.zeros(20, dtype=torch.bool)
    valid[[3, 7]] = True
    idx, val = topk_matches(p, 5, valid)
    assert sorted(idx.tolist()) == [3, 7]


# ----------------------------------------------------------------------------- the walk

def _product(fwd, bwd):
    m = fwd[0][0]
    for a in fwd[1:]:
        m = m @ a[0]
    for b in reversed(bwd):
        m = m @ b[0]
    return m


@pytest.mark.parametrize("T", [2, 3, 4])
def test_return_probability_is_the_diagonal_of_the_product(T):
    emb = rand_emb(T, 9, seed=T)
    fwd, bwd = transition_matrices(emb[None], temperature=0.2)
    prod = _product(fwd, bwd)
    for node in (0, 4, 8):
        w = palindrome_walk(list(emb), node, 0.2)
        assert 0.0 <= w.return_prob <= 1.0
        assert w.return_prob == pytest.approx(float(prod[node, node]), abs=1e-5)
        assert len(w.path) == len(w.frames) == 2 * T - 1 and w.frames == list(range(T)) + list(range(T - 2, -1, -1))
        assert w.path[0] == node and w.home_path[0] == node and w.home_path[-1] == node
        assert w.lost_mass == 0.0


def test_most_likely_walk_is_the_best_path_brute_force():
    T, N = 3, 5
    emb = rand_emb(T, N, seed=3)
    fwd, bwd = transition_matrices(emb[None], temperature=0.3)
    mats = [a[0] for a in fwd] + [b[0] for b in reversed(bwd)]  # A_0, A_1, B_1, B_0
    node = 2
    best, best_home = (-1.0, None), (-1.0, None)
    for mid in itertools.product(range(N), repeat=len(mats)):
        path = (node,) + mid
        p = float(np.prod([float(m[path[i], path[i + 1]]) for i, m in enumerate(mats)]))
        if p > best[0]:
            best = (p, list(path))
        if path[-1] == node and p > best_home[0]:
            best_home = (p, list(path))
    w = palindrome_walk(list(emb), node, 0.3)
    assert w.path == best[1] and w.path_prob == pytest.approx(best[0], rel=1e-4)
    assert w.home_path == best_home[1] and w.home_path_prob == pytest.approx(best_home[0], rel=1e-4)
    assert np.prod(w.step_probs) == pytest.approx(w.path_prob, rel=1e-4)


def test_walk_with_invalid_nodes_and_beam():
    T, N = 3, 12
    emb = rand_emb(T, N, seed=5)
    valid = torch.ones(T, N, dtype=torch.bool)
    valid[1, [0, 5]] = False
    fwd, bwd = transition_matrices(emb[None], valid[None], temperature=0.1)
    prod = _product(fwd, bwd)
    w = palindrome_walk(list(emb), 3, 0.1, list(valid))
    assert w.return_prob == pytest.approx(float(prod[3, 3]), abs=1e-5)
    assert all(v not in (0, 5) for v in w.path[1:2])
    wb = palindrome_walk(list(emb), 3, 0.1, list(valid), beam=4)
    assert 0 <= wb.return_prob <= w.return_prob + 1e-6 and wb.lost_mass >= 0
    assert wb.return_prob + wb.lost_mass >= w.return_prob - 1e-5


# ----------------------------------------------------------------------------- on a synthetic video

@pytest.mark.parametrize("mode", ["cells", "patches"])
def test_moving_square_top_match_is_the_moved_cell(mode):
    v = square_video()
    ex = Explorer(v, feature_fn=colour_features, temperature=0.05, mode=mode, patch_size=8, patch_stride=8,
                  device="cpu")
    node = ex.node_at(0, 12, 12)  # centre of the square in frame 0
    moved = ex.node_at(1, 12 + SHIFT[1], 12 + SHIFT[0])
    assert moved != node
    idx, p, xy = ex.topk(0, node, k=3)
    assert idx[0] == moved and len(idx) == 3 and np.all(np.diff(p) <= 0)
    heat = ex.heatmap(0, node)
    assert heat.shape == v.shape[1:3]
    probs = ex.transition(0, node)
    assert probs.shape == (len(ex.nodes(1)),) and abs(float(probs.sum()) - 1) < 1e-5
    w = ex.walk(0, node, length=4)
    expect = [ex.node_at(t, 12 + t * SHIFT[1], 12 + t * SHIFT[0]) for t in range(4)]
    assert w.path == expect + expect[-2::-1] and w.returns_home and w.return_prob > 0.9
    prop = ex.propagate(0, node, steps=3, k=2)
    assert [s.frame for s in prop] == [1, 2, 3]
    for t, s in enumerate(prop, 1):
        assert s.track_node == expect[t]
        assert s.point == pytest.approx((12 + t * SHIFT[1], 12 + t * SHIFT[0]), abs=4)
        assert s.heat.shape == v.shape[1:3]


def test_explorer_random_model_and_cache_bound():
    v = square_video(T=6)
    ex = Explorer(v, mode="cells", device="cpu", max_cache_mb=0.001)  # random tiny model, cache of ~1 frame
    w = ex.walk(0, 5, length=3)
    assert 0 <= w.return_prob <= 1 and len(w.path) == 5
    assert ex.cache_info()["frames_encoded"] <= 2
    m = np.zeros(v.shape[1:3], np.int64)
    m[8:16, 8:16] = 1
    prop = ex.propagate(0, 0, steps=2, mask=m)
    assert prop[0].soft.shape[1] == 2 and prop[0].labels.shape == m.shape


def test_object_mode_segments_are_nodes():
    pytest.importorskip("skimage")
    objects = pytest.importorskip("ever.objects")
    if not hasattr(objects, "segment_frames"):
        pytest.skip("ever.objects.segment_frames missing")
    v = square_video(T=3, H=64, W=96)
    ex = Explorer(v, feature_fn=colour_features, temperature=0.05, mode="objects", objects_k=4, device="cpu")
    ns = ex.nodes(0)
    assert ns.labels.shape == v.shape[1:3] and len(ns) == 4
    node = ex.node_at(0, 12, 12)
    assert ns.labels[12, 12] == node
    p = ex.transition(0, node)
    assert abs(float(p.sum()) - 1) < 1e-5
    nxt = ex.nodes(1)
    assert nxt.labels[12 + SHIFT[0], 12 + SHIFT[1]] == int(p.argmax())
    w = ex.walk(0, node, length=3)
    assert 0 <= w.return_prob <= 1


@pytest.mark.skipif(not DAVIS_DEV.is_dir(), reason="development DAVIS sequences absent")
def test_davis_dev_sequence_with_masks():
    seq = DAVIS_DEV / "JPEGImages" / "480p" / "bear"
    ex = Explorer(str(seq), long_side=240, device="cpu")
    m = ex.mask(0)
    assert m is not None and m.shape == ex.size and m.max() >= 1
    prop = ex.propagate(0, 0, steps=1, mask=m)
    assert prop[0].labels.shape == ex.size


# ----------------------------------------------------------------------------- the notebook, headless

def test_notebook_runs_headless(tmp_path):
    pm = pytest.importorskip("papermill")
    from PIL import Image

    vid = tmp_path / "JPEGImages" / "480p" / "square"
    vid.mkdir(parents=True)
    for t, f in enumerate(square_video(T=5, H=64, W=96)):
        Image.fromarray(f).save(vid / f"{t:05d}.jpg")
    out = tmp_path / "explore.ipynb"
    pm.execute_notebook(str(ROOT / "book" / "08_explore.ipynb"), str(out), cwd=str(ROOT), kernel_name="python3",
                        parameters={"video": str(vid), "checkpoint": "", "frame": 0, "point": [12, 12],
                                    "mode": "patches", "interactive": False, "length": 3, "steps": 2},
                        progress_bar=False)
    import json

    nb = json.loads(out.read_text())
    images = sum("image/png" in o.get("data", {}) for c in nb["cells"] for o in c.get("outputs", []))
    assert images >= 3
