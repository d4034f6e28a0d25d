"""How the notebooks show things: the book's style, a table with formatted cells, a visible note, and the
number formats every table and sentence shares."""

from __future__ import annotations

import json
from typing import Any

RANDOM_BASELINE = "baseline: random"  # a grid's untrained encoder: one initialisation, not the distribution
RANDOM_SHOWN = "baseline: random (1 init)"  # how a table names it


def book_style() -> None:
    """The notebooks' common display settings (one call at the top of each chapter)."""
    import warnings

    import pandas as pd
    import seaborn as sns

    warnings.filterwarnings("ignore", category=FutureWarning)
    sns.set_theme(context="notebook", style="whitegrid")
    pd.set_option("display.precision", 4)


def format_value(v: Any) -> str:
    """One table cell as the book prints it: integers without a decimal point (also when pandas made them
    floats), thousands separated, 3 decimals for scores, scientific only below 0.001, "–" for missing."""
    import math
    import numbers

    import numpy as np

    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, numbers.Integral):
        return f"{int(v):,}"
    if isinstance(v, numbers.Real):
        v = float(v)
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        a = abs(v)
        return f"{v:,.0f}" if a >= 100 else f"{v:.2f}" if a >= 10 else f"{v:.3f}" if a >= 1e-3 else f"{v:.1e}"
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, default=str)[:80]
    return str(v)


def code_spans(text: str) -> str:
    """Plain text with Markdown code spans as HTML: escaped, each `` `x` `` as ``<code>x</code>`` (an HTML table's
    cells and caption are not parsed as Markdown, so backticks would show as typed)."""
    import html
    import re

    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text, quote=False))


def table(df, caption: str | None = None, gradient: bool = False) -> None:
    """Show a DataFrame in a notebook: cells by :func:`format_value`, a horizontal scroll bar when wider
    than the page (nothing cut off at the right edge; the caption no wider than that box, book/_static/ever.css),
    the index as the first column, its name in the header row (``baseline: random`` named as the one
    initialisation it is), code spans in
    cells, index and caption shown as code (:func:`code_spans`); ``gradient`` colours numeric cells by value
    (one scale for the whole table)."""
    from IPython.display import HTML, display

    if df.index.nlevels == df.columns.nlevels == 1 and df.index.name is not None and df.columns.name is None:
        df = df.copy()  # the index's name heads its column in the header row, not a row of its own
        df.columns.name, df.index.name = df.index.name, None
    styler = (
        df.style.format(lambda v: code_spans(format_value(v).replace(" ± ", "\u00a0±\u00a0")), na_rep="–")
        .format_index(lambda v: code_spans(RANDOM_SHOWN if v == RANDOM_BASELINE else format_value(v)))
        .set_table_styles([{"selector": "th, td", "props": [("padding", "0.2em 0.8em")]}], overwrite=False)
    )
    if gradient:
        styler = styler.background_gradient(cmap="viridis", axis=None)
    if caption:
        styler = styler.set_caption(code_spans(caption))
    display(HTML(f'<div class="ever-table" style="overflow-x:auto; max-width:100%">{styler.to_html()}</div>'))


def note(text: str) -> None:
    """Show a visible sentence in a notebook (used where a result file is absent)."""
    from IPython.display import Markdown, display

    display(Markdown(f"> **Note.** {text}"))


def mean_sd(mean: float, sd: float, fmt: str = "{:.3f}") -> str:
    """``mean ± sd`` as text: the mean alone when the sd is NaN (one seed), "–" when the mean is."""
    return "–" if mean != mean else fmt.format(mean) + ("" if sd != sd else " ± " + fmt.format(sd))


def unbroken(df):
    """``df`` as text with every " ± " joined by non-breaking spaces, so a page never wraps a "mean ± sd" cell."""
    return df.apply(lambda col: col.astype(str).str.replace(" ± ", "\u00a0±\u00a0", regex=False))


def fixed(v: Any, decimals: int = 3) -> str:
    """A small quantity (Wh, g CO2eq) as the book prints it: fixed decimals, never e-notation; below the
    last decimal ``< 0.001``; "–" when missing."""
    if v is None or v != v:
        return "–"
    step = 10.0**-decimals
    return f"< {step:.{decimals}f}" if 0 < abs(float(v)) < step else f"{float(v):,.{decimals}f}"


def percent(v: Any) -> str:
    """A share already in percent as "0.18 %" (two significant digits, so 0.18 % never reads as 18 %)."""
    if v is None or v != v:
        return "–"
    return f"{float(v):.2g} %" if abs(float(v)) < 100 else f"{float(v):.0f} %"
