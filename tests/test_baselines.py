"""The baselines a trained model must beat: distance-preserving Lab colour, random-init encoders by seed."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_davis import make_davis
from test_propagation import ArraySequence, moving_squares

from ever.cli import main
from ever.config import ModelConfig
from ever.evaluate import BASELINES
from ever.evaluate import propagation as P
from ever.evaluate.baselines import LAB_SPHERE_RADIUS, lab_dist_features, random_encoder
from ever.evaluate.metrics import j_measure

SMALL = ModelConfig(width=4, blocks=[1, 1, 1, 1], proj_dim=8)


def _cells(f: torch.Tensor) -> torch.Tensor:
    """(t, C, h, w) -> (t * h * w, C)."""
    return f.permute(0, 2, 3, 1).reshape(-1, f.shape[1])


def test_lab_dist_features_are_unit_vectors_whose_dots_keep_lab_distances():
    frames = torch.rand(2, 3, 37, 50, generator=torch.Generator().manual_seed(0))
    frames[0, :, :16, :16] = 0.0  # black and white cells: the extremes of L
    frames[0, :, :16, 16:32] = 1.0
    f = lab_dist_features(frames)
    assert f.shape == (2, 4, 5, 7)
    feats = _cells(f).double()
    assert torch.allclose(feats.norm(dim=1), torch.ones(len(feats), dtype=torch.float64), atol=1e-6)
    R = LAB_SPHERE_RADIUS
    x = _cells(F.avg_pool2d(P.rgb_to_lab(frames.double()), 8, ceil_mode=True)) - torch.tensor([50.0, 0, 0]).double()
    h = (R**2 - x.square().sum(1)).sqrt()
    d2 = (x[:, None] - x[None]).square().sum(-1)  # squared Lab distances, (n, n)
    dot = feats @ feats.T
    # exactly 1 - (|x1 - x2|^2 + (h1 - h2)^2) / (2 R^2): the chord of the sphere ...
    assert torch.allclose(dot, 1 - (d2 + (h[:, None] - h[None]).square()) / (2 * R**2), atol=1e-6)
    # ... so 1 - |lab1 - lab2|^2 / (2 R^2) where the cells are as far from mid-grey, and within the bound elsewhere
    same = (x.norm(dim=1)[:, None] - x.norm(dim=1)[None]).abs() < 1e-9
    assert same.sum() > len(x) and torch.allclose(dot[same], (1 - d2 / (2 * R**2))[same], atol=1e-6)
    n = x.norm(dim=1)
    bound = ((n[:, None] + n[None]) / (h[:, None] + h[None])).square() * d2 / (2 * R**2)
    gap = (1 - d2 / (2 * R**2)) - dot
    assert (gap >= -1e-6).all() and (gap <= bound + 1e-6).all() and gap.max() > 0
    assert dot.min() < 0.9  # black against white: far apart, not nearly parallel


def test_lab_dist_keeps_brightness_that_lab_throws_away():
    greys = torch.tensor([0.2, 0.5, 0.8]).view(3, 1, 1, 1).expand(3, 3, 8, 8)  # three grey cells
    lab = F.normalize(_cells(P.lab_features(greys)), dim=1)
    dist = _cells(lab_dist_features(greys))
    assert torch.allclose(lab @ lab.T, torch.ones(3, 3), atol=1e-4)  # lab: the same direction, all alike
    sim = dist @ dist.T
    assert sim[0, 1] > sim[0, 2] and sim[2, 1] > sim[2, 0]  # lab-dist: the middle grey is nearest to both


def test_lab_dist_tracks_a_moving_square():
    frames, labels = moving_squares(12, 69, 99, n_objects=1, step=3, size=32)
    seq = ArraySequence(frames, labels[0])
    for t, pred in enumerate(P.propagate_masks(seq, lab_dist_features, n_context=4, topk=5, radius=4)):
        assert j_measure(pred == 1, labels[t] == 1) > 0.7, t


@pytest.mark.parametrize("stage", ["layer3", "layer4"])
def test_random_encoder_same_seed_same_features_other_seed_other_features(stage):
    x = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(1))
    state = torch.get_rng_state()
    with torch.inference_mode():
        a = random_encoder(SMALL, 3).features(x, stage)
        b = random_encoder(SMALL, 3).features(x, stage)
        c = random_encoder(SMALL, 4).features(x, stage)
    assert torch.equal(torch.get_rng_state(), state)  # the global random state is left alone
    assert a.shape == (2, SMALL.width * (4 if stage == "layer3" else 8), 4, 6)
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-3 * a.abs().max()


def test_ever_eval_lab_dist_and_random_seeds(tmp_path, monkeypatch, capsys):
    assert "lab-dist" in BASELINES and "lab" in BASELINES
    davis = make_davis(tmp_path / "davis", {"one": (5, 40, 56, 1), "two": (4, 48, 40, 2)})
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "lab-dist", "--data", str(davis), "--split", "val"]) == 0
    s = json.loads((tmp_path / "runs/baselines/lab-dist/eval/val/summary.json").read_text())
    assert s["method"] == "lab-dist" and 0 <= s["J&F-Mean"] <= 1 and s["eval_stage"] is None
    small = [x for kv in ("model.width=4", "model.blocks=[1,1,1,1]", "model.proj_dim=8") for x in ("--set", kv)]
    for seed in (0, 1, 2):  # seed 0 keeps the folder every grid reads; the others get their own
        assert (
            main(
                [
                    "eval",
                    "random",
                    "--data",
                    str(davis),
                    "--split",
                    "val",
                    "--set",
                    f"seed={seed}",
                    *small,
                    "--set",
                    "model.eval_stage=layer3",
                ]
            )
            == 0
        )
    out = {
        seed: tmp_path / "runs/baselines" / name / "eval/val"
        for seed, name in ((0, "random"), (1, "random-seed1"), (2, "random-seed2"))
    }
    summaries = {seed: json.loads((d / "summary.json").read_text()) for seed, d in out.items()}
    assert all(s["method"] == "random" and s["eval_stage"] == "layer3" for s in summaries.values())
    records = {seed: json.loads((d / "sequences/one.json").read_text()) for seed, d in out.items()}
    assert len({r["fingerprint"] for r in records.values()}) == 3  # each initialisation is its own result
    rows = {seed: np.array([r["J-Mean"] for r in rec["rows"]]) for seed, rec in records.items()}
    assert "J&F" in capsys.readouterr().out and all(np.isfinite(v).all() for v in rows.values())
