"""The interactive explorer of ``book/08_explore.ipynb``: ipywidgets controls around the three views.

    app = interactive(ex, frame=0, point=(200, 120))      # one call in a notebook cell (JupyterLab)

Picking the point: with ipympl installed (``pip install ipympl``, matplotlib's ``widget`` backend) the
views are live figures and a **click on the source frame** (left panel of the transition view) picks
the point; without it the views are redrawn as images and x / y sliders pick the point. The other
controls: the video (a sequence found by :func:`ever.explore_io.list_videos` or any path) and the model
(the shipped models, the default first; auto; the checkpoints found; random-init) with a load button; the node mode, the
frame, the clip length, the propagation steps, and propagating the frame's DAVIS mask instead of the point.
Every redraw reports its time per view and the explorer's cache; an untrained model is shown in red.
"""

from __future__ import annotations

import html
import time

from ever.explore import MODES, Explorer
from ever.explore_io import ModelChoice, choose_model, find_checkpoints, list_videos
from ever.explore_plots import plot_propagation, plot_transition, plot_walk

NO_IPYMPL = (
    "ipympl is not installed: pick the point with the x / y sliders "
    "(<code>pip install ipympl</code> and restart the kernel to pick it with a click on the frame)"
)


def use_widget_backend() -> bool:
    """Switch the running IPython kernel to ipympl's ``widget`` backend; False when ipympl or IPython is missing."""
    import importlib.util

    if importlib.util.find_spec("ipympl") is None:
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    if ip is None:
        return False
    ip.run_line_magic("matplotlib", "widget")
    return True


def _live_backend() -> bool:
    """True when pyplot figures are ipympl canvases (widgets that receive mouse events)."""
    import matplotlib

    b = matplotlib.get_backend().lower()
    return "ipympl" in b or b in ("widget", "ipympl")


def model_options(runs_dir: str = "runs") -> list[tuple[str, str]]:
    """(label, value) of the models to choose from, values as :func:`ever.explore_io.choose_model` takes them."""
    from ever.models import pretrained

    shipped = sorted(pretrained.names(), key=lambda n: n != pretrained.DEFAULT)  # the default first
    return (
        [(f"shipped: {n}" + (" (default)" if n == pretrained.DEFAULT else ""), n) for n in shipped]
        + [("auto: this build's trained run, else the shipped model", "auto")]
        + [(c, c) for c in find_checkpoints([runs_dir])]
        + [("random-init tiny model (UNTRAINED)", "random")]
    )


class ExploreApp:
    """The widgets (``.widget``, an ipywidgets VBox) and three figures (``.figs``) of one explorer ``.ex``.

    ``point`` (x, y) px is picked by a click on the transition view's source frame when ``click``
    (default: when the figures are live ipympl canvases), else by x / y sliders. ``update()`` redraws
    the views; ``.walk`` is the last walk drawn.
    """

    def __init__(
        self,
        ex: Explorer,
        frame: int = 0,
        point: tuple[float, float] = (0, 0),
        length: int = 4,
        steps: int = 3,
        k: int = 5,
        *,
        click: bool | None = None,
        videos: dict[str, str] | None = None,
        runs_dir: str = "runs",
        long_side: int = 0,
    ):
        import ipywidgets as W

        self.ex, self.point, self.k, self.runs_dir, self.long_side = ex, tuple(point), k, runs_dir, long_side
        self.live = _live_backend()
        self.click = self.live if click is None else click
        self.figs = [self._figure() for _ in range(3)]
        self.views = [f.canvas if self.live else W.Output() for f in self.figs]
        self.walk = None
        videos = list_videos() if videos is None else videos
        path = str(ex.source.path or "")
        self.w_video = W.Dropdown(
            options=list(videos.items()) + [("custom path", "")],
            description="video",
            value=path if path in videos.values() else "",
            layout=W.Layout(width="420px"),
        )
        self.w_path = W.Text(
            value=path, placeholder="any video file or frame folder", description="path", layout=W.Layout(width="420px")
        )
        self.w_model = W.Dropdown(options=model_options(runs_dir), description="model", layout=W.Layout(width="420px"))
        self.w_load = W.Button(description="load", button_style="primary")
        self.w_note = W.HTML(self._note(ex.model_choice))
        self.w_mode = W.ToggleButtons(options=list(MODES), value=ex.mode, description="nodes")
        self.w_frame = W.IntSlider(value=frame, min=0, max=len(ex) - 2, description="frame", continuous_update=False)
        self.w_x = W.IntSlider(value=int(point[0]), min=0, max=ex.size[1] - 1, description="x", continuous_update=False)
        self.w_y = W.IntSlider(value=int(point[1]), min=0, max=ex.size[0] - 1, description="y", continuous_update=False)
        self.w_len = W.IntSlider(value=length, min=2, max=8, description="clip", continuous_update=False)
        self.w_steps = W.IntSlider(value=steps, min=1, max=6, description="propagate", continuous_update=False)
        self.w_mask = W.Checkbox(value=False, description="propagate the frame's mask (DAVIS)")
        self.w_info = W.HTML()
        hint = W.HTML("click the left frame of the first view to pick the point")
        pick = [hint] if self.click else [self.w_x, self.w_y]
        self.w_load.on_click(self.load)
        for wd in (self.w_mode, self.w_frame, self.w_len, self.w_steps, self.w_mask):
            wd.observe(self.update, names="value")
        for wd in (self.w_x, self.w_y):
            wd.observe(self._slid, names="value")
        if self.click:
            self.figs[0].canvas.mpl_connect("button_press_event", self.on_click)
        self.widget = W.VBox(
            [
                W.HBox([self.w_video, self.w_path]),
                W.HBox([self.w_model, self.w_load]),
                self.w_note,
                self.w_mode,
                W.HBox([self.w_frame, *pick]),
                W.HBox([self.w_len, self.w_steps, self.w_mask]),
                self.w_info,
                *self.views,
            ]
        )

    def _figure(self):
        """A live pyplot figure under ipympl (its canvas is the widget), else a plain Figure drawn as an image."""
        if not self.live:
            from matplotlib.figure import Figure

            return Figure()
        import matplotlib.pyplot as plt

        with plt.ioff():
            fig = plt.figure()
        fig.canvas.header_visible = False
        return fig

    @staticmethod
    def _note(choice: ModelChoice | None) -> str:
        """Which model is shown, as HTML: a red warning when it is untrained."""
        if choice is None:
            return "Model: given by the caller."
        text = html.escape(choice.notice).replace("`", "")
        return f'<b style="color:#c00">⚠ {text}</b>' if choice.untrained else text

    # --- events
    def on_click(self, event) -> None:
        """A left click on the source frame of the transition view picks the point (not while zooming/panning)."""
        axes = self.figs[0].axes
        mode = getattr(getattr(event.canvas, "toolbar", None), "mode", "")
        if not axes or event.inaxes is not axes[0] or event.xdata is None or event.button != 1 or mode:
            return
        self.point = (float(event.xdata), float(event.ydata))
        self.update()

    def _slid(self, _=None) -> None:
        self.point = (self.w_x.value, self.w_y.value)
        self.update()

    def load(self, _=None) -> None:
        """Open the chosen video with the chosen model (errors are shown, the app stays alive)."""
        self.w_info.value = "loading..."
        try:
            choice = choose_model(self.w_model.value, self.runs_dir)
            ex = Explorer(
                self.w_video.value or self.w_path.value, choice, mode=self.w_mode.value, long_side=self.long_side
            )
        except Exception as e:  # noqa: BLE001 - shown to the user
            self.w_info.value = f"<b>cannot load</b>: {html.escape(f'{type(e).__name__}: {e}')}"
            return
        self.ex = ex
        self.w_note.value = self._note(choice)
        H, W = ex.size
        self.point = (min(self.point[0], W - 1), min(self.point[1], H - 1))
        self.w_frame.max, self.w_x.max, self.w_y.max = len(ex) - 2, W - 1, H - 1
        self.update()

    # --- drawing
    def update(self, _=None) -> None:
        """Redraw the three views for the current controls and point; the info line gives the times."""
        ex = self.ex
        try:
            ex.set_mode(self.w_mode.value)
            frame = min(self.w_frame.value, len(ex) - 2)
            t0 = time.perf_counter()
            node = ex.node_at(frame, *self.point)
            plot_transition(ex, frame, node, self.point, fig=self.figs[0])
            t1 = time.perf_counter()
            walk = ex.walk(frame, node, self.w_len.value)
            plot_walk(ex, walk, fig=self.figs[1])
            t2 = time.perf_counter()
            mask = ex.mask(frame) if self.w_mask.value else None
            prop = ex.propagate(frame, node, self.w_steps.value, self.k, mask=mask)
            plot_propagation(ex, frame, prop, self.point, fig=self.figs[2])
            t3 = time.perf_counter()
        except Exception as e:  # noqa: BLE001 - shown to the user
            self.w_info.value = f"<b>error</b>: {html.escape(f'{type(e).__name__}: {e}')}"
            return
        for fig, view in zip(self.figs, self.views):
            self._show(fig, view)
        self.walk = walk
        c = ex.cache_info()
        self.w_info.value = (
            f"({self.point[0]:.0f}, {self.point[1]:.0f}): node {walk.start}, "
            f"P(return) = <b>{walk.return_prob:.3f}</b>; {t3 - t0:.2f} s (transition {t1 - t0:.2f}, "
            f"walk {t2 - t1:.2f}, propagation {t3 - t2:.2f}); {c['frames_encoded']} frames cached "
            f"({c['feature_mb']:.0f} MB), {c['device']}"
        )

    def _show(self, fig, view) -> None:
        if self.live:
            fig.canvas.draw_idle()
            return
        from IPython.display import display

        with view:
            view.clear_output(wait=True)
            display(fig)


def interactive(
    ex: Explorer, frame: int = 0, point: tuple[float, float] = (0, 0), length: int = 4, steps: int = 3, k: int = 5, **kw
) -> ExploreApp:
    """Show the interactive explorer under the current notebook cell and return it (``kw``: see
    :class:`ExploreApp`). Uses ipympl's live figures, and so a click to pick the point, when installed."""
    from IPython.display import HTML, display

    live = use_widget_backend()
    app = ExploreApp(ex, frame, point, length, steps, k, **kw)
    if not live:
        display(HTML(NO_IPYMPL))
    display(app.widget)
    app.update()
    return app
