"""Small hand-made masks whose DAVIS scores were computed once with the official evaluation code.

Pure numpy on purpose (no ``ever`` import): the same functions fed the official code, run outside the
repository, to obtain the expected values pinned in ``tests/test_metrics.py`` (how: see there).
"""

from __future__ import annotations

import numpy as np

VOID = 255


def rect(shape, y0, x0, y1, x1):
    """(H, W) bool, True on rows y0..y1-1 and columns x0..x1-1."""
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def disk(shape, cy, cx, r):
    """(H, W) bool, True where (y - cy)^2 + (x - cx)^2 <= r^2."""
    y, x = np.mgrid[: shape[0], : shape[1]]
    return (y - cy) ** 2 + (x - cx) ** 2 <= r**2


def blob(shape, seed):
    """(H, W) bool irregular blob: a sum of a few seeded sinusoids, thresholded, inside an ellipse."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[0], : shape[1]] / np.array(shape, float)[:, None, None]
    field = sum(
        np.sin(2 * np.pi * (rng.uniform(0.5, 3) * x + rng.uniform(0.5, 3) * y + rng.uniform())) for _ in range(4)
    )
    inside = ((y - 0.5) / 0.4) ** 2 + ((x - 0.5) / 0.45) ** 2 <= 1
    return (field > -0.3) & inside


def mask_pairs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Named (gt, pred) pairs of (H, W) bool masks."""
    ring = rect((60, 80), 10, 10, 50, 70) & ~rect((60, 80), 20, 25, 40, 55)
    return {
        "shifted_square": (rect((100, 100), 10, 10, 30, 30), rect((100, 100), 10, 13, 30, 33)),
        "bottom_right_border": (rect((40, 60), 25, 40, 40, 60), rect((40, 60), 22, 37, 40, 60)),
        "top_left_border": (rect((40, 60), 0, 0, 12, 20), rect((40, 60), 0, 2, 14, 20)),
        "disk_vs_square": (disk((60, 80), 30, 40, 15), rect((60, 80), 16, 26, 44, 54)),
        "ring_vs_filled": (ring, rect((60, 80), 12, 8, 50, 68)),
        "one_pixel": (rect((30, 30), 10, 10, 11, 11), rect((30, 30), 10, 11, 11, 13)),
        "blobs": (blob((120, 160), 1), blob((120, 160), 2)),
        "blob_480p": (blob((480, 854), 3), np.roll(blob((480, 854), 3), (6, -9), (0, 1))),
        "empty_pred": (rect((50, 50), 5, 5, 25, 25), np.zeros((50, 50), bool)),
        "empty_gt": (np.zeros((50, 50), bool), rect((50, 50), 5, 5, 25, 25)),
        "both_empty": (np.zeros((50, 50), bool), np.zeros((50, 50), bool)),
    }


def per_frame_series() -> dict[str, np.ndarray]:
    """Named (N,) per-frame score series for Mean / Recall / Decay."""
    return {
        "n8": np.array([1, 1, 1, 1, 0, 0, 0, 0.6]),
        "n5": np.array([0.9, 0.2, 0.5, 0.7, 0.1]),
        "n1": np.array([0.3]),
        "n13": np.linspace(0.95, 0.2, 13),
    }


def sequences() -> dict[str, tuple[list[np.ndarray], list[np.ndarray]]]:
    """Two tiny DAVIS-2017-style sequences: name -> (ground truths, predictions), lists of (H, W) uint8 id
    maps, one per frame. 'two' has void (255) bands around its objects, and predictions that spill on them."""
    out = {}
    gts, preds = [], []
    for t in range(8):
        shape = (48, 64)
        gt = np.zeros(shape, np.uint8)
        a, b = rect(shape, 8, 4 + 3 * t, 24, 20 + 3 * t), disk(shape, 32, 44 - 2 * t, 8)
        gt[disk(shape, 32, 44 - 2 * t, 10) & ~b] = VOID  # void ring around object 2
        gt[a] = 1
        gt[b] = 2
        pred = np.zeros(shape, np.uint8)
        pred[rect(shape, 8, 4 + 2 * t, 25, 20 + 2 * t)] = 1  # lags behind object 1
        pred[disk(shape, 32, 44 - 2 * t, 10 if t % 2 else 7)] = 2  # covers the void ring on odd frames
        gts.append(gt)
        preds.append(pred)
    out["two"] = (gts, preds)
    gts, preds = [], []
    for t in range(6):
        shape = (40, 56)
        gt = blob(shape, 10 + t).astype(np.uint8)
        pred = (np.roll(blob(shape, 10 + t), t, 1) if t < 4 else np.zeros(shape, bool)).astype(np.uint8)
        gts.append(gt)
        preds.append(pred)
    out["one"] = (gts, preds)
    return out
