"""The figures of the walk explorer (matplotlib): one function per view of ``book/08_explore.ipynb``.

- :func:`plot_transition`: a node on its frame and its transition probabilities to the next frame;
- :func:`plot_walk`: the most likely palindrome walk, one panel per position, and the return probability;
- :func:`plot_propagation`: the propagated point / mask over the next frames, with the top-k matches.

Each takes an :class:`ever.explore.Explorer` and returns its figure. ``fig=None`` makes a new pyplot
figure (shown by the notebook's inline backend); a given figure is cleared and drawn again, which is how
the interactive app (:mod:`ever.explore_widgets`) keeps one live figure per view. Images are drawn
subsampled to a few hundred pixels (fast to redraw) in the frame's pixel coordinates, so a click's
(xdata, ydata) is a pixel of the working-resolution frame.
"""

from __future__ import annotations

import math

import numpy as np

from ever.explore import Explorer, NodeSet, PropStep, WalkResult


def _axes(fig, n: int, size: tuple[float, float]):
    """``n`` side-by-side axes: on a new pyplot figure, or on ``fig`` cleared and resized."""
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=size)
    else:
        fig.clf()
        fig.set_size_inches(*size)
    return list(fig.subplots(1, n, squeeze=False)[0])


def _grid(fig, n: int, cols: int, aspect: float, width: float = 11.0, extra: float = 0.5):
    """``n`` axes in rows of ``cols``, the figure ``width`` inches wide (the page's width: panels of frames
    ``aspect`` = H / W high, ``extra`` inches of title above each row); unused axes of the last row are
    removed. Returns the full (rows, cols) array (None where removed)."""
    rows = math.ceil(n / cols)
    size = (width, rows * (width / cols * aspect + extra))
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=size, layout="constrained")
    else:
        fig.clf()
        fig.set_size_inches(*size)
        fig.set_layout_engine("constrained")
    return fig.subplots(rows, cols, squeeze=False)


def _show(ax, img: np.ndarray, max_side: int = 320, **kw):
    """imshow of (H, W[, 3]) subsampled to at most ``max_side`` px, in the frame's pixel coordinates."""
    H, W = img.shape[:2]
    f = max(1, math.ceil(max(H, W) / max_side))
    return ax.imshow(img[::f, ::f], extent=(-0.5, W - 0.5, H - 0.5, -0.5), interpolation="nearest", **kw)


def _sub(a: np.ndarray, max_side: int = 320):
    """(x (w,), y (h,), a (h, w)) of an (H, W) map subsampled for contour plots, in pixel coordinates."""
    f = max(1, math.ceil(max(a.shape) / max_side))
    return np.arange(0, a.shape[1], f), np.arange(0, a.shape[0], f), a[::f, ::f].astype(np.float32)


def _outline(ax, ns: NodeSet, node: int, color: str = "cyan") -> None:
    """Draw the outline of a node (cell/patch square, or the segment's contour)."""
    import matplotlib.patches as mp

    if ns.labels is not None:
        ax.contour(*_sub(ns.labels == node), levels=[0.5], colors=[color], linewidths=1.5)
    else:
        x, y = ns.centers[node]
        half = ns.patch / 2
        ax.add_patch(mp.Rectangle((x - half, y - half), ns.patch, ns.patch, fill=False, ec=color, lw=1.5))


def _segments(ax, ns: NodeSet) -> None:
    """Thin white boundaries between the segments of object nodes (nothing for grids)."""
    if ns.labels is not None:
        ax.contour(
            *_sub(ns.labels), levels=np.arange(ns.labels.max()) + 0.5, colors=["white"], linewidths=0.5, alpha=0.7
        )


def _point(ax, point) -> None:
    if point is not None:
        ax.scatter([point[0]], [point[1]], marker="+", s=80, c="cyan")


def plot_transition(ex: Explorer, frame: int, node: int, point: tuple[float, float] | None = None, fig=None):
    """(1) The node (and the picked ``point`` (x, y)) on its frame; its transition probabilities to the
    next frame as a heat map, with the 5 most likely targets circled. The source frame is the first axes."""
    axes = _axes(fig, 2, (10, 3.2))
    a, b = ex.nodes(frame), ex.nodes(frame + 1)
    _show(axes[0], ex.frame(frame), 480)
    _segments(axes[0], a)
    _outline(axes[0], a, node)
    _point(axes[0], point)
    axes[0].set_title(f"frame {frame}, node {node} ({a.kind}, {len(a)} nodes)", fontsize=9)
    probs = ex.transition(frame, node)
    _show(axes[1], ex.frame(frame + 1), 480)
    im = _show(axes[1], b.paint(probs), 480, cmap="magma", alpha=0.65, vmin=0)
    _segments(axes[1], b)
    _, _, xy = ex.topk(frame, node, 5)
    axes[1].scatter(xy[:, 0], xy[:, 1], s=30, facecolors="none", edgecolors="cyan")
    axes[1].set_title(f"P(node → frame {frame + 1}); max {float(probs.max()):.2f}", fontsize=9)
    axes[1].figure.colorbar(im, ax=axes[1], fraction=0.03)
    for ax in axes:
        ax.axis("off")
    return axes[0].figure


def plot_walk(ex: Explorer, w: WalkResult, fig=None):
    """(2) The most likely palindrome walk, the page's width: the way out in the top row, one panel per frame
    of the clip, the way back in the bottom row under the same frames (start node cyan, the walk's node lime
    when it is the start, orange otherwise), with the return probability in the title."""
    n = len(w.frames)
    T = (n + 1) // 2  # frames of the clip: positions 0 .. T-1 out, T .. 2T-2 back
    H, W = ex.frame(w.frames[0]).shape[:2]
    grid = _grid(fig, 2 * T, T, H / W, extra=0.7)
    grid[1, T - 1].remove()  # the walk turns at the last frame
    for j, (f, v) in enumerate(zip(w.frames, w.path)):
        ax = grid[0, j] if j < T else grid[1, 2 * T - 2 - j]
        ns = ex.nodes(f)
        _show(ax, ex.frame(f), 640)
        _outline(ax, ns, v, "lime" if v == w.start else "orange")
        if j == 0 or j == n - 1:
            _outline(ax, ns, w.start, "cyan")
        step = "" if j == 0 else f", p = {w.step_probs[j - 1]:.2f}"
        ax.set_title(f"{'out' if j < T else 'back'}: frame {f}\nnode {v}{step}", fontsize=12)
        ax.axis("off")
    home = "returns home" if w.returns_home else f"ends at node {w.path[-1]}"
    grid[0, 0].figure.suptitle(
        f"most likely walk (p = {w.path_prob:.3g}, {home}); P(return to node {w.start}) = {w.return_prob:.3f}",
        fontsize=14,
    )
    return grid[0, 0].figure


def plot_propagation(
    ex: Explorer, frame: int, steps: list[PropStep], point: tuple[float, float] | None = None, fig=None
):
    """(3) The source frame (and ``point``), then each propagated frame, two per row across the page: the
    propagated label as a heat map (one colour scale for all frames, with a colour bar; below 2 % of its top
    the frame shows through), the top-k matches of the tracked node (circles, larger = likelier) and the
    propagated point."""
    from matplotlib.colors import Normalize

    n = len(steps) + 1
    H, W = ex.frame(frame).shape[:2]
    grid = _grid(fig, n, min(n, 2), H / W, width=11.0, extra=0.4)
    axes = list(grid.flat)
    for ax in axes[n:]:
        ax.remove()
    axes = axes[:n]
    _show(axes[0], ex.frame(frame), 640)
    _point(axes[0], point)
    axes[0].set_title(f"source frame {frame}", fontsize=13)
    top = max([float(np.max(s.heat)) for s in steps] + [1e-6])
    norm = Normalize(0, top)
    im = None
    for ax, s in zip(axes[1:], steps):
        _show(ax, ex.frame(s.frame), 640)
        im = _show(ax, np.ma.masked_less(s.heat, 0.02 * top), 640, cmap="plasma", norm=norm, alpha=0.75)
        ax.scatter(
            s.topk_xy[:, 0],
            s.topk_xy[:, 1],
            s=60 * (1 + 4 * s.topk_probs),
            facecolors="none",
            edgecolors="white",
            linewidths=1.2,
        )
        _point(ax, s.point)
        best = f": top-{len(s.topk)} p = {s.topk_probs[0]:.2f}" if len(s.topk) else ""
        ax.set_title(f"frame {s.frame}{best}", fontsize=13)
    for ax in axes:
        ax.axis("off")
    if im is not None:
        cb = axes[0].figure.colorbar(im, ax=axes, fraction=0.03, pad=0.01, shrink=0.8)
        cb.set_label("propagated probability", fontsize=12)
        cb.ax.tick_params(labelsize=11)
    return axes[0].figure
