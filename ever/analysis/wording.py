"""Verdicts and numbers as sentences: every sentence the README and the book print about results is made
here, from the data of :mod:`ever.analysis.claims` and :mod:`ever.analysis.stats`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ever.analysis.claims import chance_runs, crop_claim, green_claim
from ever.analysis.sources import evaluation_sequences, sequence_scores, snapshot_info, summaries
from ever.analysis.stats import best_baseline, cell_of, cell_sequence_scores, compare, cost_ratios, noise, paired
from ever.analysis.tables import ablation_table
from ever.config import SAME_WEIGHTS_KEYS
from ever.runs import RunDir, read_json, result_dirs, run_config_flat


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
    how = (f"made by `{cmd}`" if "\n" not in cmd else f"made by the commands in `{shown}/SNAPSHOT.json`")
    runs_at = info.get("trained_at") or []
    taken = f"snapshot taken at commit `{(info.get('commit') or '?')[:7]}`"
    if runs_at == [info.get("commit")]:
        at = f"at commit `{runs_at[0][:7]}`"
    elif runs_at:
        at = (f"runs trained at commit{'s' if len(runs_at) > 1 else ''} "
              + ", ".join(f"`{c[:7]}`" for c in runs_at) + f", {taken}")
    else:
        at = taken
    by_files: dict[tuple[str, ...], list[str]] = {}
    for run, files in (info.get("trained_changes") or {}).items():
        by_files.setdefault(tuple(files), []).append(f"`{run}`")
    changed = "".join(f"; {', '.join(runs)} {'were' if len(runs) > 1 else 'was'} trained with uncommitted changes to "
                      + ", ".join(f"`{f}`" for f in files) for files, runs in by_files.items())
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
    line = (f"**`{a}` against `{b}`**: J&F {Q[a].mean():.3f} against {Q[b].mean():.3f} ({c['lead']:+.3f}) on "
            f"{c['n']} sequences, ahead on {c['ahead']} of {c['n']}; its largest lead is {c['top_lead']:+.3f} on "
            f"`{c['top']}`")
    if c["lead_without_top"] is not None:
        line += f", and without that sequence its mean lead is {c['lead_without_top']:+.3f}"
    return line + (f" (paired t-test over the sequences: p = {c['p']:.2g})." if c["p"] is not None else ".")


PROTOCOL_WORDS = {  # eval.context / eval.label_resize values (ever.evaluate.propagation) as the book names them
    "reference": "frame 0 padded in front (reference)", "first_once": "frame 0 once (EVER's earlier)",
    "bilinear": "labels resized bilinearly", "area": "labels area-averaged",
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
        words = [PROTOCOL_WORDS.get(c.get(k), f"{k.replace('_', ' ')}: {c.get(k)}") for k in ("context", "label_resize")]
        columns[f"{c.get('context')} context, {c.get('label_resize')} labels"] = "; ".join(words)
        stage = s.get("eval_stage") or next(iter(re.findall(r"-(layer\d)$", row)), None)
        what = ([] if m is None else ["raw Lab colour of 8x8 blocks, no learned features"] if m == "lab" else
                ["the same encoder with random weights, no training"] if m == "random" else
                [f"the shipped model `{m}`"] if m in shipped else [f"the trained checkpoint `{m}`"]) + ([f"features of {stage}"] if stage else [])
        if what:
            rows.setdefault(row, ", ".join(what))
        if "--" in label:
            labels[label] = f"`{row}` with " + ", ".join(words)
    used = {x for pair in info.get("compare", []) for x in pair}
    return columns, ([f"`{r}`: {w}" for r, w in rows.items()]
                     + [f"`{k}`: {w}" for k, w in labels.items() if k in used])


def _ahead_clause(c: dict[str, Any] | None) -> str:
    """A :func:`compare` as " (ahead on k of n sequences, p = ...)"; empty without one or without a p."""
    return "" if c is None or c["p"] is None else f" (ahead on {c['ahead']} of {c['n']} sequences, p = {c['p']:.2g})"


def screen_line(jf, main: str, Q, seeds: list[str], rows: list[str]) -> str:
    """A screen of single runs read against its noise, as one sentence: every run's J&F (``jf``: run ->
    score, on the screen's sequences) minus ``main``'s, and which differ by more than twice the spread over
    seeds of one recipe on the same sequences: the sd of the means over ``rows`` of the ``seeds`` columns of
    ``Q`` (a sequences x runs table, :func:`sequence_scores`, e.g. of a three-seed study scored on more)."""
    sd = float(Q.loc[Q.index.isin(list(rows)), list(seeds)].mean().std(ddof=1))
    diffs = {r: float(v - jf[main]) for r, v in jf.items() if r != main}
    beyond = [r for r, d in diffs.items() if abs(d) > 2 * sd]
    return (f"Against the kept run `{main}` (J&F {jf[main]:.3f}): "
            + ", ".join(f"`{r}` {d:+.3f}" for r, d in diffs.items())
            + f". The same recipe's {len(seeds)} seeds spread by sd {sd:.3f} on these {len(rows)} sequences: "
            + (f"{', '.join(f'`{r}`' for r in beyond)} differ{'s' if len(beyond) == 1 else ''} by more than twice that, "
               "the others by less." if beyond else "every run is within twice that."))


def protocol_text(summary: dict[str, Any]) -> str:
    """One sentence naming the label-propagation protocol an evaluation used (from its summary.json)."""
    c = summary.get("cfg") or {}
    context = {"reference": "the reference (CRW) context: frame 0 unrestricted plus the preceding frames, the "
                            "video padded in front by copies of frame 0",
               "first_once": "frame 0 once plus the preceding frames (EVER's earlier protocol)"}.get(
        c.get("context"), f"context {c.get('context')!r}")
    size = f"frames resized to a long side of {c['long_side']} px" if c.get("long_side") else "native resolution"
    text = (f"Protocol: {context}; {c.get('n_context')} preceding frames, top-{c.get('topk')}, radius "
            f"{c.get('radius')} cells, temperature {c.get('temperature')}, first-frame labels resized "
            f"{'bilinearly' if c.get('label_resize') == 'bilinear' else 'by area averaging'}, {size}; J and F "
            "as the official DAVIS evaluation (F on seg2bmap boundaries, void as background)")
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


def findings(runs_dir: str | Path, split: str, names: list[str] | None = None, crop: dict | None = None) -> list[str]:
    """What the evaluated runs of ``runs_dir`` show, as Markdown sentences computed from their files (the
    book opens with them, the README carries them for the committed snapshots). Each says on how many
    sequences and seeds it rests:

    * the first cell (the first run, its seeds averaged) and every other cell against the best baseline,
      overall and sequence by sequence, called a win only when a paired t-test over the sequences gives
      p < 0.05 and every seed is above (else "above, but not clearly"), and "clearly below" in the mirror case;
    * claim 2, the GCN: its effect in every pair of runs whose configs differ only in ``gcn.*``, whether
      that exceeds the spread over seeds (when the grid measures one), sequence by sequence, where the walk
      without it ends against the best baseline, and its share of the training FLOPs;
    * object-node runs against the untrained encoder and against copying the first mask;
    * claim 1, objects at patch accuracy for >= 5x less compute: where the grid has patch-crop and
      object-crop cells with curves, :func:`crop_claim` (compute to reach the patch walk's J&F, over seeds);
      else :func:`green_claim`'s verdict, or that the grid cannot test it when its object and patch cells
      cost the same FLOPs (pooled nodes). ``crop``: that :func:`crop_claim`, when the caller already has it."""
    S = summaries(runs_dir, split, names)
    if S.empty or "J&F-Mean" not in S or not (S["kind"] == "model").any():
        return []
    jf = S.set_index("run")["J&F-Mean"]
    models = list(S.loc[S["kind"] == "model", "run"])
    base = S[S["kind"] == "baseline"].set_index("run")["J&F-Mean"]
    n_seq = int(S["num_sequences"].max()) if "num_sequences" in S else None
    on = f"on {n_seq} sequences" if n_seq else "on the evaluation split"
    cfgs = {r: run_config_flat(Path(runs_dir) / r) for r in models}
    cells = list(dict.fromkeys(cell_of(r) for r in models))
    seeds_of = {c: [r for r in models if cell_of(r) == c] for c in cells}
    best = best_baseline(S)
    Q = sequence_scores(runs_dir, split, names)
    CQ = cell_sequence_scores(Q)
    out = []

    def against_best(cell: str) -> dict[str, Any] | None:
        seeds = seeds_of[cell]
        if best is None or not jf[seeds].notna().any():
            return None
        m = jf[seeds].mean()
        above = int((jf[seeds] > base[best]).sum())
        shared = not Q.empty and set(seeds) <= set(Q) and best in Q and len(CQ[[cell, best]].dropna()) > 0
        c = compare(CQ, cell, best) if shared else None
        clear = c is not None and c["p"] is not None and c["p"] < 0.05 and above == len(seeds)
        lead = m - base[best]
        below = c is not None and c["p"] is not None and c["p"] < 0.05 and above == 0  # the mirror of a win
        verdict = ("scores clearly below the best baseline" if lead < 0 and below else
                   "does not beat the best baseline" if lead <= 0 else
                   "beats the best baseline" + (" on this seed" if len(seeds) == 1 else "") if clear else
                   "scores above the best baseline, but not clearly")
        return {"seeds": seeds, "m": m, "lead": lead, "above": above, "c": c, "verdict": verdict}

    main = cells[0]
    v = against_best(main)
    if v is not None:
        seeds, c = v["seeds"], v["c"]
        who = f"The main run `{main}`" if len(seeds) == 1 else f"The main cell `{main}`"
        if len(seeds) == 1:
            score, spread = f"J&F {v['m']:.3f}", f", seed {cfgs[seeds[0]].get('seed')}."
        else:
            score = f"J&F {v['m']:.3f} (mean of {len(seeds)} seeds)"
            spread = (f"; seeds {', '.join(f'{jf[r]:.3f}' for r in seeds)} (sd {jf[seeds].std(ddof=1):.3f}), "
                      f"{v['above']} of {len(seeds)} above that baseline.")
        line = (f"**{who} {v['verdict']}** (`{best}`{_one_init(S, best)}): {score} against {base[best]:.3f} "
                f"({v['lead']:+.3f}) {on}{spread}")
        if c is not None:
            line += (f" Sequence by sequence {'the seed mean' if len(seeds) > 1 else 'it'} is ahead on {c['ahead']} "
                     f"of {c['n']}; its largest lead is {c['top_lead']:+.3f} on `{c['top']}`")
            if c["lead_without_top"] is not None:
                line += f", and without that sequence its mean lead is {c['lead_without_top']:+.3f}"
            if c["p"] is not None:
                line += f" (paired t-test over the sequences: p = {c['p']:.2g})"
            line += "."
        out.append(line)
        others = []
        for cell in cells[1:]:
            o = against_best(cell)
            if o is None:
                continue
            n = len(o["seeds"])
            txt = f"`{cell}` {o['m']:.3f}" + (f" ± {jf[o['seeds']].std(ddof=1):.3f} ({n} seeds)" if n > 1 else " (1 seed)")
            txt += f" {o['verdict'].replace('the best baseline', 'it')}"
            others.append(txt + _ahead_clause(o["c"]))
        if others:
            out.append(f"**The other cells against the same baseline** ({base[best]:.3f}): " + "; ".join(others) + ".")

    def without_gcn(c: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in c.items() if k != "name" and not k.startswith("gcn.") and k not in SAME_WEIGHTS_KEYS}

    A = ablation_table(runs_dir, split, names)  # GCN FLOP share and claim 1, read once
    pairs = [(r, g) for g in cells if cfgs[seeds_of[g][0]].get("gcn.enabled") for r in cells
             if not cfgs[seeds_of[r][0]].get("gcn.enabled")
             and without_gcn(cfgs[seeds_of[r][0]]) == without_gcn(cfgs[seeds_of[g][0]])]
    if pairs:
        cell_jf = {c: jf[seeds_of[c]].mean() for c in cells}
        sds = [jf[seeds_of[c]].std(ddof=1) for c in cells if len(seeds_of[c]) > 1]
        d = {g: cell_jf[g] - cell_jf[r] for r, g in pairs}
        diffs = ", ".join(f"`{g}` {d[g]:+.3f}{_ahead_clause(paired(CQ, g, r))}" for r, g in pairs)
        bare = list(dict.fromkeys(r for r, _ in pairs))  # what the GCN is added to, and how far that walk learned
        diffs += ("; without it " + ", ".join(f"`{r}` ends at {cell_jf[r]:.3f}" for r in bare)
                  + (f" (best baseline {base[best]:.3f})" if best is not None else ""))
        n = noise(*sds)  # the grid's own noise: twice the mean sd over seeds of its cells
        if n is not None:
            sd = n / 2
            up, down = sum(x > n for x in d.values()), sum(x < -n for x in d.values())
            where = f"in all {len(pairs)} pairs" if len(pairs) > 1 else "in its one pair"
            verdict = (f"moved J&F by less than twice the spread over seeds (sd {sd:.3f}) {where}" if up == down == 0
                       else f"raised J&F beyond twice the spread over seeds (sd {sd:.3f}) in {up} of {len(pairs)} "
                       f"pairs and lowered it in {down}")
            hint = ""
        else:
            verdict = "is not shown to raise J&F"
            hint = "; one seed each, and this grid does not measure the spread over seeds, so a difference is a hint"
        share = A.loc[A["GCN"], "GCN % of FLOPs"].dropna() if "GCN % of FLOPs" in A else A.iloc[0:0]
        cost = (f" It adds {share.max():.2g} % of the training FLOPs: it cannot lower the footprint by itself, "
                "only by letting a smaller encoder reach the same accuracy, which this grid does not test."
                if len(share) else "")
        out.append(f"**The GCN (claim 2) {verdict}**: run with GCN minus run without, {diffs}{hint}.{cost}")
    objects = [c for c in cells if str(cfgs[seeds_of[c][0]].get("nodes.kind", "")).startswith("object")]
    refs = [b for b in ("baseline: random", "baseline: copy") if b in base]
    if objects and refs:
        cell_jf = {c: jf[seeds_of[c]].mean() for c in objects}
        learned = [c for c in objects if cell_jf[c] > base[refs[0]] + 0.02]
        head = (f"**{len(learned)} of {len(objects)} object-node cells score more than 0.02 above "
                + ("the untrained encoder" if refs[0] == "baseline: random" else "copying the first mask") + "**")
        out.append(head + " (" + f"`{refs[0]}` {base[refs[0]]:.3f}" + "): "
                   + ", ".join(f"`{c}` {cell_jf[c]:.3f}" for c in objects)
                   + ("." if learned else ": every one scores below it."
                      if all(v < base[refs[0]] for v in cell_jf.values())
                      else ": they learned little beyond what the architecture gives."))
    stuck = chance_runs(runs_dir, models)
    if stuck:
        out.append(f"**{len(stuck)} of {len(models)} runs never left chance in training** (loss over the second half "
                   "of training relative to a uniform walk's; their scores stay in their cells' means and spreads): "
                   + "; ".join(f"`{r['run']}` loss {r['loss / ln N']:.2f}x a uniform walk's"
                               + (f", accuracy {r['acc × N']:.2f}x chance" if r["acc × N"] is not None else "")
                               + (f", median gradient norm {r['grad_norm']:.2g}" if r["grad_norm"] is not None else "")
                               + f", J&F {jf[r['run']]:.3f}" for r in stuck) + ".")
    crop = crop if crop is not None else crop_claim(runs_dir, split, names)
    if crop is not None:  # nodes encoded on their own, with curves over seeds: the test the claim is about
        out.append(crop_claim_line(crop))
        return out
    claim = green_claim(A)
    ratios = [r["compute ratio"] for r in claim.get("rows", []) if r["compute ratio"] is not None]
    if claim["holds"] is not None and ratios and not claim["testable"]:
        out.append(f"**Claim 1 (object nodes at patch accuracy for ≥{claim['factor']:g}x less compute) is not "
                   f"tested by this grid**: its object and patch cells pool their nodes from one dense encoding "
                   f"of each frame, so their training FLOPs per clip differ by at most "
                   f"{(max(max(ratios), 1 / min(ratios)) - 1) * 100:.1f} % (chapter 5). It can show only where "
                   f"each node is encoded on its own, as in the original walk (`configs/report-green.yaml`).")
    elif claim["holds"] is not None:
        out.append(f"**Claim 1 (object nodes at patch accuracy for ≥{claim['factor']:g}x less compute) "
                   f"{'holds' if claim['holds'] else 'does not hold'} on this grid** (chapter 5).")
    return out


def in_short(real: list[str], studies: dict[str, list[str]]) -> list[str]:
    """The book's first lines: the bold verdicts that open :func:`findings`' sentences, for the shipped
    recipe's study (its main cell, ``real[0]``) and, per study of the green claims (``studies``: label ->
    its findings, in the order given), its sentences whose verdict names claim 1 or claim 2, labelled."""
    import re

    def head(line: str) -> str | None:
        m = re.match(r"\*\*(.+?)\*\*", line)
        return m.group(1) if m else None

    first = [f"Shipped recipe: {h[0].lower()}{h[1:]}" for h in map(head, real[:1]) if h]
    return first + [f"{label}: {h}" for label, lines in studies.items() for h in map(head, lines)
                    if h and re.search(r"claim [12]\b", h, re.I)]


def _one_init(S, baseline: str) -> str:
    """", one initialisation" when ``baseline`` is the random encoder (a single seed of it was scored)."""
    return ", one initialisation" if baseline == "baseline: random" else ""


def cost_findings(T, claim: dict[str, Any] | None) -> list[str]:
    """What :func:`training_cost` ``T`` says, as sentences: how far the seeds of one cell spread in wall
    seconds (the timing's noise on this machine), and, for claim 1 (``claim``: :func:`crop_claim`), each
    object-crop cell's saving against the patch-crop walk in counted FLOPs per clip beside its saving in
    timed wall and CPU seconds and estimated energy, means over seeds for the same number of steps."""
    out, any_smaller = [], False
    multi = T[T["seeds"] > 1].dropna(subset=["wall s sd"])
    if len(multi):
        rel = (multi["wall s sd"] / multi["wall s"]).sort_values()
        out.append(f"Over the seeds of one cell the wall seconds spread by {100 * rel.iloc[0]:.0f} % (`{rel.index[0]}`) "
                   f"to {100 * rel.iloc[-1]:.0f} % (`{rel.index[-1]}`) of their mean (sd / mean).")
    for row in (claim or {}).get("rows", []):
        ref, obj = claim["reference"], row["cell"]
        if ref not in T.index or obj not in T.index:
            continue
        r = cost_ratios(T, ref, obj)
        timed = [f"{r[k]:.1f}x less {what}" for k, what in (("wall", "wall time"), ("cpu", "CPU time"),
                                                            ("energy", "estimated energy")) if r[k] == r[k]]
        if not timed:
            continue
        smaller = all(r[k] < r["flops"] for k in ("wall", "cpu", "energy") if r[k] == r[k])
        any_smaller = any_smaller or smaller
        out.append(f"`{obj}` needs {r['flops']:.1f}x fewer FLOPs per clip than `{ref}`"
                   + (", but only " if smaller else ", and ") + ", ".join(timed[:-1])
                   + (" and " if len(timed) > 1 else "") + timed[-1] + ".")
    if any_smaller:
        out.append("Where the saving in time and energy is smaller than the saving in FLOPs, the FLOP counter does not "
                   "see all the work (an object walk also segments every frame, in the data workers, whose CPU time the "
                   "ledger includes) or this machine runs the two cells' FLOPs at different rates.")
    return out


def core_range(span: tuple[float, float]) -> str:
    """(min, max) cores busy as words: "2.0" when they round alike, else "1.0 to 2.0"."""
    lo, hi = (f"{v:.1f}" for v in span)
    return lo if lo == hi else f"{lo} to {hi}"


def crop_claim_line(claim: dict[str, Any]) -> str:
    """:func:`crop_claim` as one Markdown sentence for the findings."""
    verdict = ("is not decided by this grid" if claim["holds"] is None else "holds beyond the spread over seeds"
               if claim["clear"] else "holds on the mean, not beyond the spread over seeds" if claim["holds"] else
               "does not hold in this grid")
    n = claim["reference_seeds"]
    ref = (f"the patch-crop walk `{claim['reference']}` (every patch encoded on its own) ends at J&F "
           f"{claim['reference_final']:.3f}" + (f" ± {claim['reference_sd']:.3f} ({n} seeds)" if n > 1 else " (1 seed)")
           + f", so patch-level accuracy is J&F ≥ {claim['target']:.3f} (within {claim['tolerance']:g})")
    at_first = claim["reference_reached"] > 0 and claim["reference_at_first"] == claim["reference_reached"]
    if claim["reference_reach"] is not None:
        ref += (f"; {claim['reference_reached']} of its {n} seeds reach it, after "
                f"{claim['reference_reach']:,.0f} training GFLOPs on average"
                + (", all at their first evaluation" if at_first else ""))
    cells = []
    for r in claim["rows"]:
        t = (f"`{r['cell']}`" + (f" ({r['clip_ratio']:.1f}x fewer training FLOPs per clip)" if r.get("clip_ratio") else "")
             + f" ends at {r['final']:.3f}" + (f" ± {r['final_sd']:.3f}" if r["final_sd"] is not None else "")
             + f" ({r['gap']:+.3f}" + ("" if r.get("noise") is None else
                                        f", {'beyond' if r['beyond_noise'] else 'within'} the noise of the patch walk's "
                                        f"seeds, twice their sd, {r['noise']:.3f}; one seed, so it does not enter the verdict"
                                        if r["seeds"] == 1 else
                                        f", {'beyond' if r['beyond_noise'] else 'within'} the noise of the two cells, "
                                        f"twice the mean of their sds over seeds, {r['noise']:.3f}")
             + ")" + (f", below it on {v['n'] - v['ahead']} of {v['n']} sequences (paired t-test p = {v['p']:.2g})"
                      if (v := r.get("vs_reference")) and v["p"] is not None else "")
             + f"; {r['reached']} of {r['seeds']} seeds reach {claim['target']:.3f}")
        if r["reach"] is not None:
            t += f", after {r['reach']:,.0f}" + (f" ± {r['reach_sd']:,.0f}" if r["reach_sd"] is not None else "") + " GFLOPs"
        if r["ratio"] is not None:
            t += f": {r['ratio']:.1f}x less compute (slowest of its seeds against the fastest patch seed: {r['ratio_low']:.1f}x)"
        elif r["ratio_reached"] is not None:
            t += f" ({r['ratio_reached']:.1f}x less than the patch walk, counting only the seeds that reach it)"
        cells.append(t)
    lead = claim["reference_final"] - claim["baseline_jf"] if claim.get("baseline_jf") is not None else None
    vb = claim.get("reference_vs_baseline")
    above = ("" if lead is None or claim.get("undecided") == "baseline" else
             f" That walk ends above the best baseline (`{claim['baseline']}`, {claim['baseline_jf']:.3f}) by {lead:+.3f}"
             + ("" if claim["reference_noise"] is None else
                f", more than the noise of its seeds (twice their sd, {claim['reference_noise']:.3f})")
             + ("." if vb is None or vb["p"] is None else
                f"; sequence by sequence it is ahead on {vb['ahead']} of {vb['n']} (paired t-test p = {vb['p']:.2g})"
                + (", so that lead is not shown to carry over to other videos." if vb["p"] >= 0.05 else ".")))
    why = above   # then, when the grid does not decide, why not
    if claim["holds"] is None and claim.get("undecided") == "baseline":
        why += (f" That walk does not end above the best baseline (`{claim['baseline']}`, {claim['baseline_jf']:.3f}): "
                "it has not learned beyond what the baselines give" if lead <= 0 else
                f" That walk does not end clearly above the best baseline (`{claim['baseline']}`, "
                f"{claim['baseline_jf']:.3f}): its lead, {lead:+.3f}, is within the noise of its seeds (twice their "
                f"sd, {claim['reference_noise']:.3f}), so it is not shown to have learned beyond what the baselines give")
        why += ", and reaching its accuracy, at any compute, says nothing about the claim."
    elif claim["holds"] is None:
        unshown = [r for r in claim["rows"] if not r["equal"] and not r["beyond_noise"]
                   and (r["seeds"] > 1 or r.get("noise") is None)]
        why += " " + " ".join(
            f"`{r['cell']}` ends below patch-level accuracy, "
            + ("but with one seed in each cell the grid does not measure the noise, so that is not shown to be real."
               if r.get("noise") is None else
               "but by less than the noise: with seeds this scattered it is not shown to be less accurate, and "
               "not shown to be as accurate either.") for r in unshown)
        if claim["reference_seeds"] != 1 and not any(r["seeds"] > 1 for r in claim["rows"]):
            why += " No object cell has two seeds: a cell of one seed has no spread of its own, so none enters the verdict."
    return (f"**Claim 1 (object nodes at patch accuracy for ≥{claim['factor']:g}x less compute) {verdict}** where "
            f"each node is encoded on its own: {ref}.{why} " + "; ".join(cells) + ". A seed already at the target "
            "at its first evaluation counts that point's compute, an upper bound of what it needed"
            + ("; every patch seed was, so no ratio here bounds the saving either way" if at_first else "")
            + " (chapter 5).")
