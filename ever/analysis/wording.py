"""Verdicts and numbers as sentences: every sentence the README and the book print about results is made
here, from the data of :mod:`ever.analysis.claims` and :mod:`ever.analysis.stats`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ever.analysis.claims import (
    LOWERS,
    NO_EFFECT,
    RAISES,
    CropClaim,
    GcnClaim,
    ObjectCells,
    PooledClaim,
    PooledWalk,
    StuckRun,
    Study,
    VersusBaseline,
    study,
    verdict,
)
from ever.analysis.display import RANDOM_BASELINE
from ever.analysis.sources import evaluation_sequences, snapshot_info, summaries
from ever.analysis.stats import Effect, Power, compare, cost_ratios
from ever.runs import RunDir, read_json, result_dirs


def effect_text(e: Effect, min_effect: float | None, p_holm: float | None = None) -> str:
    """:func:`~ever.analysis.claims.verdict` of an :class:`~ever.analysis.stats.Effect` in words, its interval
    given: "raises J&F by x [a, b]", "lowers J&F by x [a, b]" (x, a, b as amounts lost), "no effect larger than
    m (x [a, b])" or "undecided (x [a, b]; m = ...)", then the paired p over the sequences and its Holm
    correction in the grid's family (``p_holm``) when known."""
    v, iv = verdict(e, min_effect), f"{e.effect:+.3f} [{e.low:+.3f}, {e.high:+.3f}]"
    text = (
        f"raises J&F by {e.effect:.3f} [{e.low:.3f}, {e.high:.3f}]"
        if v == RAISES
        else f"lowers J&F by {-e.effect:.3f} [{-e.high:.3f}, {-e.low:.3f}]"
        if v == LOWERS
        else f"no effect larger than {min_effect:g} ({iv})"
        if v == NO_EFFECT
        else f"undecided ({iv}; "
        + (f"m = {min_effect:g})" if min_effect is not None else "no minimal effect declared)")
    )
    if e.p is not None:
        text += f" (p = {e.p:.2g}" + (f", Holm {p_holm:.2g})" if p_holm is not None else ")")
    return text


def results_text(runs_dir: str | Path, split: str, names: list[str] | None = None) -> str:
    """The scores of the evaluated runs (``names``, default all) and baselines of ``runs_dir``, as Markdown."""
    df = summaries(runs_dir, split, names)
    if df.empty:
        return f"(no evaluation under {runs_dir} for split {split!r})"
    cols = [c for c in ("run", "J&F-Mean", "J-Mean", "F-Mean", "PCK@0.1", "PCK@0.2", "frames_per_s") if c in df]
    return df[cols].to_markdown(index=False, floatfmt=".3f")


def provenance(path: str | Path, shown: str | None = None) -> str:
    """One sentence saying where a snapshot's numbers come from: its command, commit, date and machine
    (``shown``: the path as the reader should see it, default ``path``)."""
    info = snapshot_info(path)
    shown = shown or str(path)
    if info is None:
        raise FileNotFoundError(f"{path}: not a results snapshot (no SNAPSHOT.json)")
    m = info.get("machine") or {}
    hw = f"{m.get('cpu')}, {m.get('cpu_count')} cores, " + (", ".join(m["gpus"]) if m.get("gpus") else "no GPU")
    cmd = info["command"]
    how = f"made by `{cmd}`" if "\n" not in cmd else f"made by the commands in `{shown}/SNAPSHOT.json`"
    runs_at = info.get("trained_at") or []
    taken = f"snapshot taken at commit `{(info.get('commit') or '?')[:7]}`"
    if runs_at == [info.get("commit")]:
        at = f"at commit `{runs_at[0][:7]}`"
    elif runs_at:
        at = (
            f"runs trained at commit{'s' if len(runs_at) > 1 else ''} "
            + ", ".join(f"`{c[:7]}`" for c in runs_at)
            + f", {taken}"
        )
    else:
        at = taken
    by_files: dict[tuple[str, ...], list[str]] = {}
    for run, files in (info.get("trained_changes") or {}).items():
        by_files.setdefault(tuple(files), []).append(f"`{run}`")
    changed = "".join(
        f"; {', '.join(runs)} {'were' if len(runs) > 1 else 'was'} trained with uncommitted changes to "
        + ", ".join(f"`{f}`" for f in files)
        for files, runs in by_files.items()
    )
    return f"From the committed results snapshot `{shown}`, {how}, {at}, on {info.get('date')} ({hw}){changed}."


def evaluation_comparisons(path: str | Path) -> list[str]:
    """One sentence per pair ``[a, b]`` of the snapshot's ``compare`` list: a's J&F against b's, sequence by
    sequence (:func:`compare`), with the number of sequences and the paired t-test."""
    info = snapshot_info(path) or {}
    Q = evaluation_sequences(path) if info.get("compare") else None
    return [comparison_line(Q, a, b) for a, b in info.get("compare", [])]


def comparison_line(Q, a: str, b: str) -> str:
    """:func:`compare` of columns ``a`` and ``b`` of a sequences x methods table as one Markdown sentence: both
    means, the lead, on how many sequences a is ahead, its largest lead and the mean lead without it, and the
    paired t-test."""
    c = compare(Q, a, b)
    line = (
        f"**`{a}` against `{b}`**: J&F {Q[a].mean():.3f} against {Q[b].mean():.3f} ({c['lead']:+.3f}) on "
        f"{c['n']} sequences, ahead on {c['ahead']} of {c['n']}; its largest lead is {c['top_lead']:+.3f} on "
        f"`{c['top']}`"
    )
    if c["lead_without_top"] is not None:
        line += f", and without that sequence its mean lead is {c['lead_without_top']:+.3f}"
    return line + (f" (paired t-test over the sequences: p = {c['p']:.2g})." if c["p"] is not None else ".")


PROTOCOL_WORDS = {  # eval.context / eval.label_resize values (ever.evaluate.propagation) as the book names them
    "reference": "frame 0 padded in front (reference)",
    "first_once": "frame 0 once (EVER's earlier)",
    "bilinear": "labels resized bilinearly",
    "area": "labels area-averaged",
}


def evaluation_legend(path: str | Path) -> tuple[dict[str, str], list[str]]:
    """Readable names for :func:`evaluation_table` of a snapshot of bare evaluations, from each evaluation's
    summary.json: ``(columns, lines)``, a readable name per protocol column (:data:`PROTOCOL_WORDS`; a value
    it does not know is shown as recorded) and one Markdown line per row name and per ``compare`` label
    that names a row and a protocol (``method--context-labels``): what was evaluated (raw Lab colour, the
    random-init encoder, a shipped model, a trained checkpoint) and with which feature stage (the summary's
    ``eval_stage``, else a ``-layerN`` ending of the name)."""
    import re

    from ever.models import pretrained

    info = snapshot_info(path) or {}
    shipped = pretrained.names()
    columns, rows, labels = {}, {}, {}
    for label in info.get("evaluations", []):
        s = read_json(Path(path) / label / "summary.json") or {}
        c, m, row = s.get("cfg") or {}, s.get("method"), label.split("--")[0]
        words = [
            PROTOCOL_WORDS.get(c.get(k), f"{k.replace('_', ' ')}: {c.get(k)}") for k in ("context", "label_resize")
        ]
        columns[f"{c.get('context')} context, {c.get('label_resize')} labels"] = "; ".join(words)
        stage = s.get("eval_stage") or next(iter(re.findall(r"-(layer\d)$", row)), None)
        what = (
            []
            if m is None
            else ["raw Lab colour of 8x8 blocks, no learned features"]
            if m == "lab"
            else ["the same encoder with random weights, no training"]
            if m == "random"
            else [f"the shipped model `{m}`"]
            if m in shipped
            else [f"the trained checkpoint `{m}`"]
        ) + ([f"features of {stage}"] if stage else [])
        if what:
            rows.setdefault(row, ", ".join(what))
        if "--" in label:
            labels[label] = f"`{row}` with " + ", ".join(words)
    used = {x for pair in info.get("compare", []) for x in pair}
    return columns, ([f"`{r}`: {w}" for r, w in rows.items()] + [f"`{k}`: {w}" for k, w in labels.items() if k in used])


def _ahead_clause(c: dict[str, Any] | None, p_holm: float | None = None) -> str:
    """A :func:`compare` as " (ahead on k of n sequences, p = ...)" (with ", Holm ..." when ``p_holm``, its
    correction over the grid's comparisons, is given); empty without one or without a p."""
    if c is None or c["p"] is None:
        return ""
    holm = f", Holm {p_holm:.2g}" if p_holm is not None else ""
    return f" (ahead on {c['ahead']} of {c['n']} sequences, p = {c['p']:.2g}{holm})"


def screen_line(jf, main: str, Q, seeds: list[str], rows: list[str]) -> str:
    """A screen of single runs read against its noise, as one sentence: every run's J&F (``jf``: run ->
    score, on the screen's sequences) minus ``main``'s, and which differ by more than twice the spread over
    seeds of one recipe on the same sequences: the sd of the means over ``rows`` of the ``seeds`` columns of
    ``Q`` (a sequences x runs table, :func:`sequence_scores`, e.g. of a three-seed study scored on more)."""
    sd = float(Q.loc[Q.index.isin(list(rows)), list(seeds)].mean().std(ddof=1))
    diffs = {r: float(v - jf[main]) for r, v in jf.items() if r != main}
    beyond = [r for r, d in diffs.items() if abs(d) > 2 * sd]
    return (
        f"Against the kept run `{main}` (J&F {jf[main]:.3f}): "
        + ", ".join(f"`{r}` {d:+.3f}" for r, d in diffs.items())
        + f". The same recipe's {len(seeds)} seeds spread by sd {sd:.3f} on these {len(rows)} sequences: "
        + (
            f"{', '.join(f'`{r}`' for r in beyond)} differ{'s' if len(beyond) == 1 else ''} by more than twice that, "
            "the others by less."
            if beyond
            else "every run is within twice that."
        )
    )


def protocol_text(summary: dict[str, Any]) -> str:
    """One sentence naming the label-propagation protocol an evaluation used (from its summary.json)."""
    c = summary.get("cfg") or {}
    context = {
        "reference": "the reference (CRW) context: frame 0 unrestricted plus the preceding frames, the "
        "video padded in front by copies of frame 0",
        "first_once": "frame 0 once plus the preceding frames (EVER's earlier protocol)",
    }.get(c.get("context"), f"context {c.get('context')!r}")
    size = f"frames resized to a long side of {c['long_side']} px" if c.get("long_side") else "native resolution"
    text = (
        f"Protocol: {context}; {c.get('n_context')} preceding frames, top-{c.get('topk')}, radius "
        f"{c.get('radius')} cells, temperature {c.get('temperature')}, first-frame labels resized "
        f"{'bilinearly' if c.get('label_resize') == 'bilinear' else 'by area averaging'}, {size}; J and F "
        "as the official DAVIS evaluation (F on seg2bmap boundaries, void as background)"
    )
    if c.get("sequences"):
        text += f"; only the sequences {', '.join(c['sequences'])} of split {c.get('split')!r} (eval.sequences)"
    if summary.get("pck_convention"):
        text += f"; PCK by the {summary['pck_convention'].upper()} convention"
    return text + "."


def eval_protocol(runs_dir: str | Path, split: str, names: list[str] | None = None) -> str | None:
    """:func:`protocol_text` of the first evaluated run (or baseline) of ``runs_dir``; None when none is."""
    found = (RunDir(d).summary(split) for _, d in result_dirs(runs_dir, names))
    first = next((s for s in found if s is not None), None)
    return protocol_text(first) if first is not None else None


OUTCOME_WORDS = {  # claims.VersusBaseline.outcome as the verdict of a sentence
    "clearly below": "scores clearly below the best baseline",
    "not above": "does not beat the best baseline",
    "beats": "beats the best baseline",
    "above, not clearly": "scores above the best baseline, but not clearly",
}
CLAIM_1 = "Claim 1 (object nodes at patch accuracy for ≥{factor:g}x less compute)"


def findings(
    runs_dir: str | Path, split: str, names: list[str] | None = None, crop: CropClaim | None = None
) -> list[str]:
    """What the evaluated runs of ``runs_dir`` show, as Markdown sentences (the book opens with them, the README
    carries them for the committed snapshots): :func:`sentences` of :func:`ever.analysis.claims.study` (``crop``:
    its :func:`~ever.analysis.claims.crop_claim`, when the caller already has it). Each says on how many
    sequences and seeds it rests."""
    return sentences(study(runs_dir, split, names, crop))


def sentences(s: Study | None) -> list[str]:
    """A :class:`~ever.analysis.claims.Study` as Markdown sentences, each opening with its bold verdict (the
    heads :func:`in_short` lists): the first cell and the others against the best baseline, claim 2 (the GCN),
    the object-node cells, the runs that never left chance, claim 1 and the pooled walk against claim 1's
    target. Claims 1 and 2 and the pooled walk open with their effects and 95 % intervals judged by
    :func:`~ever.analysis.claims.verdict` (:func:`effect_text`), each in one sentence and its qualifiers in a
    second; every p is shown beside its Holm correction over the grid's comparisons."""
    if s is None:
        return []
    on = f"on {s.n_sequences} sequences" if s.n_sequences else "on the evaluation split"
    out = []
    if s.main is not None:
        out.append(_main_line(s.main, on))
        others = [_other_clause(o) for o in s.others]
        if others:
            out.append(
                f"**The other cells against the same baseline** ({s.main.baseline_jf:.3f}): " + "; ".join(others) + "."
            )
    if s.gcn is not None:
        out.append(_gcn_line(s.gcn, s.min_effect, s.holm))
    if s.objects is not None:
        out.append(_objects_line(s.objects))
    if s.stuck:
        out.append(_stuck_line(s.stuck, s.runs))
    if s.crop is not None:  # nodes encoded on their own, with curves over seeds: the test the claim is about
        out.append(crop_claim_line(s.crop, s.holm))
        out += [_walk_line(w, s.crop, s.holm) for w in s.crop.pooled]
    elif s.pooled is not None:
        out.append(_pooled_line(s.pooled))
    return out


SEEDS_WANTED = 6  # seeds a cell issue 34 asks of claim 2


def answers(s: Study | None) -> list[str]:
    """The three answers of a green study (the README's Results summary), one Markdown line each with its
    effects and 95 % intervals: object nodes (claim 1), the GCN (claim 2) and the pooled patch walk against the
    patch-crop walk's accuracy; each is the bold opening of its line in :func:`sentences`. Empty when the study
    has none of them."""
    if s is None:
        return []
    out = []
    if s.crop is not None:
        rest = _crop_head(s.crop, s.holm).removeprefix(CLAIM_1.format(factor=s.crop.factor))
        out.append(f"**Objects at patch accuracy for ≥{s.crop.factor:g}x less compute (claim 1)**{rest}.")
    if s.gcn is not None:
        p = s.gcn.pairs[0] if s.gcn.pairs else None
        short = ""
        if p is not None and p.power is not None and s.min_effect is not None:
            w, m = p.power, s.min_effect
            if w.floor > m:
                short = (
                    f"; {w.sequences} sequences cannot resolve {m:g}: no number of seeds narrows the "
                    f"interval below ±{w.floor:.3f} (`stats.power`)"
                )
            elif max(w.seeds_a, w.seeds_b) < SEEDS_WANTED or w.half_width(max(w.seeds_a, w.seeds_b)) > m:
                k = w.seeds_needed(m, max_seeds=1000)
                short = (
                    f"; predicted interval at {SEEDS_WANTED} seeds a cell ±{w.half_width(SEEDS_WANTED):.3f}; resolving "
                    f"{m:g} on these {w.sequences} sequences would take {k if k else 'over 1000'} seeds a cell "
                    "(`stats.power`)"
                )
        out.append(f"**The GCN (claim 2)**: {_gcn_head(s.gcn, s.min_effect, s.holm).removeprefix(GCN_HEAD)}{short}.")
    for w in s.crop.pooled if s.crop is not None else ():
        out.append(f"**Pooled patches**: {_walk_head(w, s.crop, s.holm).removeprefix('The pooled walk ')}.")
    return out


def in_short(real: Study | None, studies: dict[str, Study | None]) -> list[str]:
    """The book's first lines: the verdicts that open :func:`sentences`, for the shipped recipe's study (its
    main cell) and, per study of the green claims (``studies``: label -> its study, in the order given), its
    verdicts on claim 2 and claim 1, labelled."""
    first = [f"Shipped recipe: {h[0].lower()}{h[1:]}" for h in ([_main_head(real.main)] if real and real.main else [])]
    rest = []
    for label, s in studies.items():
        if s is None:
            continue
        heads = ([_gcn_head(s.gcn, s.min_effect, s.holm)] if s.gcn is not None else []) + (
            [_crop_head(s.crop, s.holm)] + [_walk_head(w, s.crop, s.holm) for w in s.crop.pooled]
            if s.crop is not None
            else [_pooled_head(s.pooled)]
            if s.pooled is not None
            else []
        )
        rest += [f"{label}: {h}" for h in heads]
    return first + rest


def _main_head(v: VersusBaseline) -> str:
    who = f"The main run `{v.cell}`" if len(v.seeds) == 1 else f"The main cell `{v.cell}`"
    return f"{who} {_outcome(v)}"


def _outcome(v: VersusBaseline) -> str:
    return OUTCOME_WORDS[v.outcome] + (" on this seed" if v.outcome == "beats" and len(v.seeds) == 1 else "")


def _main_line(v: VersusBaseline, on: str) -> str:
    n, c = len(v.seeds), v.compare
    if n == 1:
        score, spread = f"J&F {v.mean:.3f}", f", seed {v.seed}."
    else:
        score = f"J&F {v.mean:.3f} (mean of {n} seeds)"
        spread = (
            f"; seeds {', '.join(f'{x:.3f}' for x in v.seed_jf)} (sd {v.sd:.3f}), {v.above} of {n} above that baseline."
        )
    line = (
        f"**{_main_head(v)}** (`{v.baseline}`{_one_init(v.baseline)}): {score} against {v.baseline_jf:.3f} "
        f"({v.lead:+.3f}) {on}{spread}"
    )
    if c is not None:
        line += (
            f" Sequence by sequence {'the seed mean' if n > 1 else 'it'} is ahead on {c['ahead']} "
            f"of {c['n']}; its largest lead is {c['top_lead']:+.3f} on `{c['top']}`"
        )
        if c["lead_without_top"] is not None:
            line += f", and without that sequence its mean lead is {c['lead_without_top']:+.3f}"
        if c["p"] is not None:
            holm = f", Holm {v.p_holm:.2g}" if v.p_holm is not None else ""
            line += f" (paired t-test over the sequences: p = {c['p']:.2g}{holm})"
        line += "."
    return line


def _other_clause(o: VersusBaseline) -> str:
    n = len(o.seeds)
    txt = f"`{o.cell}` {o.mean:.3f}" + (f" ± {o.sd:.3f} ({n} seeds)" if n > 1 else " (1 seed)")
    return txt + f" {_outcome(o).replace('the best baseline', 'it')}" + _ahead_clause(o.compare, o.p_holm)


def _pair_text(e: Effect | None, diff: float, m: float | None, holm: dict[str, Any] | None) -> str:
    """One comparison of two cells: its :func:`effect_text`, or the difference of seed means alone when the
    cells have no per-sequence scores (no interval)."""
    if e is None:
        return f"{diff:+.3f} (no per-sequence scores, so no interval)"
    one = " (one seed each: the interval holds the spread over sequences only)" if e.seeds_a == e.seeds_b == 1 else ""
    per = f"mean of {e.n_sequences} per-sequence differences"  # the unit: a sequence counts once, whatever its objects
    return effect_text(e, m, (holm or {}).get(e.key)) + f", {per}, {_seeds(e)}{one}"


def _seeds(e: Effect) -> str:
    return f"{e.seeds_a} seed{'s' if e.seeds_a > 1 else ''} against {e.seeds_b}"


GCN_HEAD = "The GCN (claim 2): "


def _gcn_head(g: GcnClaim, m: float | None = None, holm: dict[str, Any] | None = None) -> str:
    return GCN_HEAD + "; ".join(
        f"`{p.gcn}` against `{p.bare}` {_pair_text(p.effect, p.diff, m, holm)}" for p in g.pairs
    )


def _gcn_line(g: GcnClaim, m: float | None = None, holm: dict[str, Any] | None = None) -> str:
    ends = ", ".join(f"`{r}` ends at {jf:.3f}" for r, jf in g.bare_ends) + (
        f" (best baseline {g.baseline_jf:.3f})" if g.baseline_jf is not None else ""
    )
    cost = (
        f"; it costs {g.flop_share:.2g} % of the training FLOPs, so it could lower the footprint only by letting a "
        "smaller encoder reach the same accuracy"
        if g.flop_share is not None
        else ""
    )
    resolve = "".join(" " + power_text(p.power, m) for p in g.pairs[:1] if p.power is not None and m is not None)
    return f"**{_gcn_head(g, m, holm)}**. Without it {ends}{cost}.{resolve}"


SEEDS_PLANNED = 6  # the seeds per cell issue 34 asks of claim 2


def power_text(pw: Power, m: float, seeds: int = SEEDS_PLANNED) -> str:
    """What more seeds or sequences would do for a comparison (:class:`ever.analysis.stats.Power`): the predicted
    half-width of its 95 % interval with ``seeds`` a cell, its floor with unlimited seeds on the same sequences,
    and, when that floor is above the minimal effect ``m``, how many sequences ``seeds`` would need."""
    hw, floor = pw.half_width(seeds), pw.floor
    head = (
        f"With {seeds} seeds a cell its 95 % interval would be about ±{hw:.3f} wide (±{pw.half_width(pw.seeds_a):.3f} "
        f"with {pw.seeds_a}, from the spread over sequences and seeds, `stats.power`)"
    )
    if floor <= m:
        k = pw.seeds_needed(m)
        return head + f"; ±{m:g} needs about {k} seeds a cell." if k else head + "."
    s = pw.sequences_needed(m, seeds)
    more = f"about {s} sequences at {seeds} seeds would" if s else f"no number of sequences at {seeds} seeds would"
    return (
        head + f"; on these {pw.sequences} sequences no number of seeds narrows it below ±{floor:.3f}, so an effect "
        f"of {m:g} cannot be resolved here: {more}."
    )


def _objects_line(o: ObjectCells) -> str:
    against = "this grid's untrained encoder" if o.reference == RANDOM_BASELINE else "copying the first mask"
    head = f"**{len(o.learned)} of {len(o.cells)} object-node cells score more than {o.margin:g} above {against}**"
    tail = (
        "."
        if o.learned
        else f": every one scores below {'that initialisation' if o.reference == RANDOM_BASELINE else 'it'}."
        if all(jf < o.reference_jf for _, jf in o.cells)
        else ": they learned little beyond what the architecture gives."
    )
    return (
        head
        + f" (`{o.reference}`{_one_init(o.reference)}, {o.reference_jf:.3f}): "
        + ", ".join(f"`{c}` {jf:.3f}" for c, jf in o.cells)
        + tail
    )


def _stuck_line(stuck: tuple[StuckRun, ...], runs: int) -> str:
    return (
        f"**{len(stuck)} of {runs} runs never left chance in training** (loss over the second half "
        "of training relative to a uniform walk's; their scores stay in their cells' means and spreads): "
        + "; ".join(
            f"`{r.run}` loss {r.loss:.2f}x a uniform walk's"
            + (f", accuracy {r.acc:.2f}x chance" if r.acc is not None else "")
            + (f", median gradient norm {r.grad_norm:.2g}" if r.grad_norm is not None else "")
            + f", J&F {r.jf:.3f}"
            for r in stuck
        )
        + "."
    )


def _pooled_head(p: PooledClaim) -> str:
    claim = CLAIM_1.format(factor=p.factor)
    return (
        f"{claim} is not tested by this grid"
        if not p.testable
        else f"{claim} {'holds' if p.holds else 'does not hold'} on this grid"
    )


def _pooled_line(p: PooledClaim) -> str:
    if p.testable:
        return f"**{_pooled_head(p)}** (chapter 5)."
    return (
        f"**{_pooled_head(p)}**: its object and patch cells pool their nodes from one dense encoding "
        f"of each frame, so their training FLOPs per clip differ by at most {p.spread:.1f} % (chapter 5). It can "
        "show only where each node is encoded on its own, as in the original walk (`configs/report-green.yaml`)."
    )


def _one_init(baseline: str) -> str:
    """ ", one initialisation" when ``baseline`` is the random encoder (a single seed of it was scored)."""
    return ", one initialisation" if baseline == RANDOM_BASELINE else ""


def cost_findings(T, claim: CropClaim | None) -> list[str]:
    """What :func:`training_cost` ``T`` says, as sentences: how far the seeds of one cell spread in wall
    seconds (the timing's noise on this machine), and, for claim 1 (``claim``: :func:`crop_claim`), each
    object-crop cell's saving against the patch-crop walk in counted FLOPs per clip beside its saving in
    timed wall and CPU seconds and estimated energy, means over seeds for the same number of steps."""
    out, any_smaller = [], False
    multi = T[T["seeds"] > 1].dropna(subset=["wall s sd"])
    if len(multi):
        rel = (multi["wall s sd"] / multi["wall s"]).sort_values()
        out.append(
            f"Over the seeds of one cell the wall seconds spread by {100 * rel.iloc[0]:.0f} % (`{rel.index[0]}`) "
            f"to {100 * rel.iloc[-1]:.0f} % (`{rel.index[-1]}`) of their mean (sd / mean)."
        )
    for row in claim.rows if claim is not None else ():
        ref, obj = claim.reference, row.cell
        if ref not in T.index or obj not in T.index:
            continue
        r = cost_ratios(T, ref, obj)
        timed = [
            f"{r[k]:.1f}x less {what}"
            for k, what in (("wall", "wall time"), ("cpu", "CPU time"), ("energy", "estimated energy"))
            if r[k] == r[k]
        ]
        if not timed:
            continue
        smaller = all(r[k] < r["flops"] for k in ("wall", "cpu", "energy") if r[k] == r[k])
        any_smaller = any_smaller or smaller
        out.append(
            f"`{obj}` needs {r['flops']:.1f}x fewer FLOPs per clip than `{ref}`"
            + (", but only " if smaller else ", and ")
            + ", ".join(timed[:-1])
            + (" and " if len(timed) > 1 else "")
            + timed[-1]
            + "."
        )
    if any_smaller:
        out.append(
            "Where the saving in time and energy is smaller than the saving in FLOPs, the FLOP counter does not "
            "see all the work (an object walk also segments every frame, in the data workers, whose CPU time the "
            "ledger includes) or this machine runs the two cells' FLOPs at different rates."
        )
    return out


def core_range(span: tuple[float, float]) -> str:
    """(min, max) cores busy as words: "2.0" when they round alike, else "1.0 to 2.0"."""
    lo, hi = (f"{v:.1f}" for v in span)
    return lo if lo == hi else f"{lo} to {hi}"


def _crop_head(claim: CropClaim, holm: dict[str, Any] | None = None) -> str:
    verdict_words = (
        "is not decided by this grid"
        if claim.holds is None
        else "holds beyond the spread over seeds"
        if claim.clear
        else "holds on the mean, not beyond the spread over seeds"
        if claim.holds
        else "does not hold in this grid"
    )
    cells = "; ".join(
        f"`{r.cell}` against `{claim.reference}` {_pair_text(r.effect, r.gap, claim.min_effect, holm)}"
        + (f", at {r.clip_ratio:.1f}x fewer training FLOPs per clip" if r.clip_ratio else "")
        + (" (one seed: not judged)" if r.seeds == 1 else "")
        for r in claim.rows
    )
    return f"{CLAIM_1.format(factor=claim.factor)} {verdict_words}: {cells}"


def crop_claim_line(claim: CropClaim, holm: dict[str, Any] | None = None) -> str:
    """:func:`~ever.analysis.claims.crop_claim` as Markdown: one sentence with the verdict and every object-crop
    cell's effect against the patch-crop walk (``holm``: the grid's Holm-corrected p by ``Effect.key``), and one
    of qualifiers (patch-level accuracy, compute to reach it, why the grid does not decide)."""
    n = claim.reference_seeds
    at_first = claim.reference_reached > 0 and claim.reference_at_first == claim.reference_reached
    reach = (
        f", reached by {claim.reference_reached} of its {n} seeds after {claim.reference_reach:,.0f} training GFLOPs"
        + (" (at their first evaluation: an upper bound)" if at_first else "")
        if claim.reference_reach is not None
        else f", reached by none of its {n} seeds"
    )
    cells = "".join(
        f"; `{r.cell}`: {r.reached} of {r.seeds} seeds"
        + (
            f", {r.ratio:.1f}x less compute (slowest of its seeds against the fastest patch seed {r.ratio_low:.1f}x)"
            if r.ratio is not None
            else f", {r.ratio_reached:.1f}x less counting those"
            if r.ratio_reached is not None
            else ""
        )
        for r in claim.rows
    )
    why = ""
    if claim.holds is None and claim.undecided == "baseline":
        why = (
            f"; the patch walk is not shown to end above the best baseline (`{claim.baseline}`, "
            f"{claim.baseline_jf:.3f}), so reaching its accuracy says nothing about the claim"
        )
    elif claim.holds is False and not claim.learned:
        why = (
            f"; the patch walk itself is not shown to end above the best baseline (`{claim.baseline}`, "
            f"{claim.baseline_jf:.3f}), so the object walk falls short of a design that does not beat it either"
        )
    elif claim.holds is None and not any(r.seeds > 1 for r in claim.rows):
        why = "; no object cell has two seeds, so none enters the verdict"
    return (
        f"**{_crop_head(claim, holm)}**. Patch-level accuracy is J&F ≥ {claim.target:.3f} (`{claim.reference}` ends "
        f"at {claim.reference_final:.3f}"
        + (f" ± {claim.reference_sd:.3f} over {n} seeds" if n > 1 else ", 1 seed")
        + f", less {claim.tolerance:g}){reach}{cells}{why}."
    )


def _walk_head(w: PooledWalk, claim: CropClaim, holm: dict[str, Any] | None = None) -> str:
    every = w.reached == w.seeds
    reach = (
        ("reaches" if every else f"reaches, in {w.reached} of its {w.seeds} seeds,")
        + " the patch-crop walk's accuracy"
        + (f" by {'its' if every else 'their'} first evaluation (step {w.first_step})" if w.at_first else "")
        + f" with {w.flops_ratio:.1f}x fewer training FLOPs"
        + (f" and {w.cpu_ratio:.1f}x less CPU time" if w.cpu_ratio is not None else "")
        if w.reached and w.flops_ratio is not None
        else "does not reach the patch-crop walk's accuracy"
    )
    last_step, last = w.steps[-1] if w.steps else (None, float("nan"))
    at = f" (step {last_step})" if last_step is not None else ""
    end = _pair_text(w.effect, last, claim.min_effect, holm)
    return f"The pooled walk `{w.cell}` {reach}; against `{claim.reference}` at the end of training{at} {end}"


def _walk_line(w: PooledWalk, claim: CropClaim, holm: dict[str, Any] | None = None) -> str:
    """A :class:`~ever.analysis.claims.PooledWalk` as Markdown: its verdict sentence and one of qualifiers."""
    first = f", each at its first evaluation (step {w.first_step}: an upper bound of the cost)" if w.at_first else ""
    steps = ", ".join(f"{d:+.3f} at step {k}" for k, d in w.steps)
    return (
        f"**{_walk_head(w, claim, holm)}**. {w.reached} of its {w.seeds} seeds reach J&F ≥ {claim.target:.3f}{first}"
        f"; against the patch-crop walk, seed means, step by step: {steps} (an interval only at the end, "
        "where the per-sequence scores are kept)."
    )


def bullets(lines: list[str]) -> str:
    """Markdown bullets, one per line."""
    return "\n".join(f"- {line}" for line in lines)


# ---------------------------------------------------------------- chapter 5 and 6: verdicts beside tables and figures


def pooled_verdict(claim: dict[str, Any], share) -> str:
    """Chapter 5: :func:`ever.analysis.claims.green_claim` on this build's grid (``share``: the runs' walk % of
    FLOPs), with the best object run's gap and compute ratio."""
    from ever.analysis.display import percent

    best = max(claim["rows"], key=lambda r: r["J&F gap"])
    return (
        (
            "**Verdict on this grid: not tested** (its object and patch runs cost the same FLOPs, so fewer nodes "
            "cannot show as less compute). "
            if not claim["testable"]
            else f"**Verdict on this grid: the claim {'holds' if claim['holds'] else 'does not hold'}.** "
        )
        + f"Reference `{claim['reference']}` scores J&F {claim['reference_jf']:.3f}; the best object run, "
        f"`{best['run']}`, is {best['J&F gap']:+.3f} J&F from it at a compute ratio of "
        + (f"{best['compute ratio']:.2f}" if best["compute ratio"] else "unknown")
        + "."
        + (
            f" The walk is {percent(share.min())} to {percent(share.max())} of a training step's FLOPs "
            "(column *walk share*): fewer nodes cannot save much when the encoder, which every variant runs once "
            "per frame, is nearly all of the cost."
            if len(share) and share.max() < 10
            else ""
        )
    )


def _interval(e: Effect) -> str:
    return f"{e.effect:+.3f} [{e.low:+.3f}, {e.high:+.3f}]"


def front(root: str | Path = "results") -> dict[str, Any] | None:
    """What the first page and the README open with, from the committed snapshots under ``root``: ``table``
    (:func:`ever.analysis.tables.table1_data`), ``bar`` (the shipped recipe against issue 33's bar,
    :func:`ever.analysis.tables.ship_bar`), ``study`` (the claims' study of ``green-long``); None without them."""
    from ever.analysis.readme import SUMMARY
    from ever.analysis.sources import snapshot_runs
    from ever.analysis.tables import ship_bar, table1_data

    info = snapshot_info(Path(root) / SUMMARY)
    T, bar = table1_data(root), ship_bar(root)
    if info is None or T.empty or bar is None:
        return None
    s = study(Path(root) / SUMMARY, info["split"], snapshot_runs(info))
    if s.crop is None or s.gcn is None or not s.crop.pooled or s.crop.rows[0].effect is None:
        return None
    return {"table": T, "bar": bar, "study": s}


def abstract(root: str | Path = "results") -> str:
    """The first page's abstract: four sentences with the numbers of :func:`front` (the shipped recipe against
    the baselines and issue 33's bar, claim 1 by the object cell of two or more seeds that ends closest to the
    patch-crop walk, claim 2, the pooled patch walk); empty without the snapshots."""
    f = front(root)
    if f is None:
        return ""
    T, b, s = f["table"], f["bar"], f["study"]
    ship, untrained = T.index[0], T[T["kind"] == "untrained"].iloc[0]
    best = T.loc[T["kind"] == "baseline", "J&F"].idxmax()  # the strongest method without training
    obj = max((r for r in s.crop.rows if r.seeds > 1), key=lambda r: r.final, default=s.crop.rows[0])  # the closest
    gcn, pool = s.gcn.pairs[0].effect, s.crop.pooled[0]
    cores = ((snapshot_info(Path(root) / Path(T.loc[ship, "snapshot"]).name) or {}).get("machine") or {}).get(
        "cpu_count"
    )
    v = verdict(obj.effect, s.min_effect)
    objects = (
        f"lowers J&F by {-obj.effect.effect:.3f} (95\u00a0% interval {-obj.effect.high:.3f} to {-obj.effect.low:.3f})"
        if v == LOWERS
        else f"changes J&F by {_interval(obj.effect)} ({v})"
    )
    return " ".join(
        [
            "EVER's shipped recipe (a retrain of its seed 0 is the shipped model), trained for "
            f"{T.loc[ship, 'train min']:.1f} minutes{f' on {cores} CPU cores' if cores else ''} "
            f"({T.loc[ship, 'GFLOPs']:,.0f} GFLOPs), scores "
            f"J&F {T.loc[ship, 'J&F']:.3f} ± {T.loc[ship, 'J&F sd']:.3f} ({T.loc[ship, 'seeds']} seeds) on "
            f"{s.n_sequences} DAVIS-2016 development sequences, against {T.loc[best, 'J&F']:.3f} for the strongest "
            f"baseline without training (`{best}`) and {untrained['J&F']:.3f} ± {untrained['J&F sd']:.3f} for "
            f"untrained encoders (over {untrained['seeds']} initialisations).",
            f"On the {b.sequences} held-out sequences it {'clears' if b.clears else 'does not clear'} the bar "
            f"of +{b.margin:.2f} J&F over the strongest baseline: {b.model_jf:.3f} against "
            f"`{b.baseline}` {b.baseline_jf:.3f} ({b.lead:+.3f}, p = {b.p:.2f}).",
            f"Claim 1: the object walk that comes closest (`{obj.cell}`) {objects} against the patch-crop walk "
            f"(`{s.crop.reference}`), for {obj.clip_ratio:.1f}x fewer training FLOPs per clip.",
            f"Claim 2: the space-time GCN's effect is {verdict(gcn, s.min_effect)} ({_interval(gcn)} J&F); pooling "
            f"the 49 patches from one encoding costs {pool.flops_ratio:.1f}x fewer training FLOPs than cropping "
            f"them, at {_interval(pool.effect)} J&F ({verdict(pool.effect, s.min_effect)}).",
        ]
    )


def claims_evidence(root: str | Path = "results"):
    """The claims-to-evidence table of the first page: one row per claim (``claim``, a short name that fits one
    line; ``verdict``; ``effect (95 % interval; m = ...)`` with its interval, or the bar's lead; ``where`` in
    the book; ``remade by``: the command that remakes its snapshot, :func:`ever.analysis.tables.snapshot_commands`
    of the repository holding ``root``), from :func:`front`; empty without it."""
    import pandas as pd

    f = front(root)
    if f is None:
        return pd.DataFrame()
    from ever.analysis.tables import CLAIMS, snapshot_commands

    T, b, s = f["table"], f["bar"], f["study"]
    shipped = Path(T.iloc[0]["snapshot"]).name  # the snapshot of the default's recipe
    cmds = snapshot_commands(Path(root).resolve().parent)
    claims, ship = cmds.get(CLAIMS, "–"), cmds.get(shipped, "–")
    effect = "effect (95 % interval" + (f"; m = {s.min_effect:g})" if s.min_effect is not None else ")")
    rows = [
        (
            f"1: object nodes at patch accuracy, ≥{s.crop.factor:g}x less compute",
            f"{r.cell} {verdict(r.effect, s.min_effect)} J&F",
            _interval(r.effect),
            "chapter\u00a05",
            claims,
        )
        for r in s.crop.rows
    ]
    rows += [
        (
            "2: the space-time GCN raises J&F",
            verdict(p.effect, s.min_effect),
            _interval(p.effect),
            "chapter\u00a05",
            claims,
        )
        for p in s.gcn.pairs
    ]
    rows += [
        (
            "pooled patches: patch accuracy for less compute",
            f"{w.flops_ratio:.1f}x fewer FLOPs; J&F {verdict(w.effect, s.min_effect)}",
            _interval(w.effect),
            "chapter\u00a05",
            claims,
        )
        for w in s.crop.pooled
    ]
    rows.append(
        (
            f"shipped model: ≥{b.margin:.2f} J&F above every baseline",
            "clears" if b.clears else "does not clear",
            f"{b.lead:+.3f} against {b.baseline}, p = {b.p:.2f}, {b.sequences} held-out sequences",
            "chapter\u00a0" + ("9" if shipped == "data-scaling" else "4"),
            ship,
        )
    )
    return display_text(pd.DataFrame(rows, columns=["claim", "verdict", effect, "where", "remade by"]))


def display_text(df):
    """``df`` as text whose intervals and "±" never wrap (non-breaking spaces inside them)."""
    import re

    fix = lambda v: re.sub(r"\[([^\]]+)\]", lambda m: "[" + m.group(1).replace(" ", "\u00a0") + "]", str(v))  # noqa: E731
    return df.apply(lambda col: col.map(fix).str.replace(" ± ", "\u00a0±\u00a0", regex=False))


def figure1_caption(T) -> str:
    """Figure 1's caption (``T``: :func:`ever.analysis.tables.table1_data`): what each mark is."""
    U = T[T["kind"] == "untrained"]
    inits = ", ".join(f"{n} {name.split(', ')[-1]}" for name, n in zip(U.index, U["seeds"]))
    return (
        "**Figure 1.** J&F against training compute (GFLOPs counted in the runs' ledgers, log scale), on Table 1's "
        "sequences: each trained method at its training FLOPs, with its sd over seeds; horizontal lines, the methods "
        f"that need no training ({', '.join(f'`{b}`' for b in T.index[T['kind'] == 'baseline'])}); bands, the "
        f"untrained encoders' mean ± sd over their initialisations ({inits}). The shipped recipe is in red."
    )


def published_note(root: str | Path = "results") -> str:
    """The sentence above the published-numbers table (:func:`ever.analysis.tables.published_table`): why EVER's
    scores are not comparable with the published ones yet; empty without the snapshots. (A code cell's
    Markdown output is not MyST, so the page cites the papers in its own text.)"""
    from ever.analysis.tables import PUBLISHED, published_table

    P = published_table(root)
    if P.empty:
        return ""
    ours = P.loc[P.index.str.startswith("EVER"), "J&F"]
    return (
        f"**Not comparable yet.** EVER scores {ours.min():.3f}-{ours.max():.3f} on the DAVIS-2016 development "
        "sequences (from DAVIS-2016's train split) "
        "with one object each, after at most a few thousand CPU steps of a width-16 encoder on about 1,600 frames "
        f"of 18 short videos; {' and '.join(p['method'].split(' (')[0] for p in PUBLISHED)} scored DAVIS-2017's "
        "validation sequences, with several objects each, after training a ResNet-18 on Kinetics-400 for days on GPUs."
    )
