"""One training step taken apart (issue 34): why object crops cost far fewer FLOPs than patch crops but not
far less time. Reads the snapshot ``bench/step_breakdown.py`` writes (``results/step-breakdown/breakdown.json``)
and returns tables and the sentences that explain the gap from its numbers. No figure is typed here.

    snap = load("results/step-breakdown/breakdown.json")
    part_table(snap, 1)        # parts x cells: ms of CPU, share of the step, ms of wall time, GFLOPs
    gap_table(snap, 1)         # per cell: GFLOPs, CPU and wall seconds a step, encoder throughput; ratios
    conv_table(snap, 1)        # per cell: the encoder's convolution calls (images, map sizes, GFLOP/s)
    gap_text(snap)             # what scales with FLOPs and what does not, in words
    tables(snap)               # the chapter's tables, with captions
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ever.errors import EverError

PARTS = (
    "data",
    "segmentation",
    "home view",
    "crops",
    "encoder forward",
    "walk + loss",
    "head + glue",
    "encoder backward",
    "backward rest",
    "optimiser",
    "other",
)
ENCODER = ("encoder forward", "encoder backward")
WORKERS = ("data", "segmentation")  # in training these run in the DataLoader's workers
KEYS = (
    "commit",
    "command",
    "date",
    "machine",
    "threads",
    "load_average",
    "settings",
    "cells",
    "step_totals",
    "rows",
    "convs",
)
CELLS = ("objcrop8", "patchcrop49", "patchpool49")  # object crops, patch crops, pooled patches
SNAPSHOT = Path(__file__).resolve().parents[2] / "results" / "step-breakdown" / "breakdown.json"


def load(path: str | Path = SNAPSHOT) -> dict[str, Any]:
    """The snapshot (the committed one by default) as a dict, checked: its keys, the three cells, every part of
    every timed step once, no negative time (a one-line :class:`EverError` naming the file otherwise)."""
    path = Path(path)
    try:
        snap = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EverError(
            f"{path}: no step-breakdown snapshot here (python bench/step_breakdown.py --out {path})"
        ) from None
    except (OSError, ValueError) as e:
        raise EverError(f"{path}: not a readable JSON file ({type(e).__name__}: {e})") from None
    missing = [k for k in KEYS if not isinstance(snap, dict) or k not in snap]
    if missing:
        raise EverError(f"{path}: not a step-breakdown snapshot (missing {', '.join(missing)})")
    if set(snap["cells"]) != set(CELLS):
        raise EverError(f"{path}: cells {sorted(snap['cells'])}, expected {list(CELLS)}")
    steps: dict[tuple, list[str]] = {}
    for r in snap["rows"]:
        if r["wall_s"] < 0 or r["cpu_s"] < 0:
            raise EverError(f"{path}: negative time for {r['part']!r} of {r['cell']} (step {r['step']})")
        steps.setdefault((r["cell"], r["threads"], r["step"]), []).append(r["part"])
    bad = [k for k, parts in steps.items() if sorted(parts) != sorted(PARTS)]
    if bad or not steps:
        raise EverError(f"{path}: step {bad[0] if bad else '-'} does not hold each part of {list(PARTS)} once")
    return snap


def medians(snap: dict[str, Any]):
    """DataFrame (cell, threads, part) -> the median over timed steps of ``wall_s`` and ``cpu_s``."""
    import pandas as pd

    R = pd.DataFrame(snap["rows"])
    return R.groupby(["cell", "threads", "part"])[["wall_s", "cpu_s"]].median()


def _part_gflop(snap: dict[str, Any], cell: str, part: str) -> float:
    return float(snap["cells"][cell]["gflop"].get(part, 0.0))


def part_table(snap: dict[str, Any], threads: int):
    """Parts (rows, in step order, then ``step``: their sum) x cells: median ms of CPU time, its share of the
    step's, median ms of wall time, GFLOPs counted in the part (one step, the batch)."""
    import pandas as pd

    M = medians(snap)
    cols = {}
    for cell in CELLS:
        m = M.loc[(cell, threads)].reindex(list(PARTS)).fillna(0.0)
        cpu, wall = 1e3 * m["cpu_s"], 1e3 * m["wall_s"]
        gf = pd.Series({p: _part_gflop(snap, cell, p) for p in PARTS})
        cols[(cell, "CPU ms")] = pd.concat([cpu, pd.Series({"step": cpu.sum()})])
        cols[(cell, "% CPU")] = pd.concat([100 * cpu / cpu.sum(), pd.Series({"step": 100.0})])
        cols[(cell, "wall ms")] = pd.concat([wall, pd.Series({"step": wall.sum()})])
        cols[(cell, "GFLOP")] = pd.concat([gf, pd.Series({"step": snap["cells"][cell]["gflop_step"]})])
    T = pd.DataFrame(cols)
    T.columns = pd.MultiIndex.from_tuples(T.columns)
    return T.rename_axis("part").round({c: 3 if c[1] == "GFLOP" else 1 for c in T.columns})


def _cell_sums(snap: dict[str, Any], threads: int) -> dict[str, dict[str, float]]:
    """Per cell: the step's CPU and wall seconds (sums of the parts' medians), the encoder's (forward and
    backward) CPU seconds and GFLOPs, the workers' parts' CPU seconds and the step's GFLOPs."""
    M = medians(snap)
    out = {}
    for cell in CELLS:
        m = M.loc[(cell, threads)]
        info = snap["cells"][cell]
        out[cell] = {
            "gflop": float(info["gflop_step"]),
            "cpu": float(m["cpu_s"].sum()),
            "wall": float(m["wall_s"].sum()),
            "enc_cpu": float(m["cpu_s"].reindex(list(ENCODER)).fillna(0).sum()),
            "enc_gflop": sum(_part_gflop(snap, cell, p) for p in ENCODER),
            "workers_cpu": float(m["cpu_s"].reindex(list(WORKERS)).fillna(0).sum()),
            "cpu_by_part": {p: float(m["cpu_s"].get(p, 0.0)) for p in PARTS},
        }
    return out


def gap_table(snap: dict[str, Any], threads: int):
    """Per cell (rows): GFLOPs, CPU and wall seconds of one step (medians over steps, part by part), each as a
    ratio to objcrop8's; the encoder's (forward + backward) CPU seconds and GFLOPs per CPU second; the CPU
    seconds of the rest of the step and of the parts training runs in its data workers; the share of the
    encoder's FLOPs spent on the home view."""
    import pandas as pd

    S = _cell_sums(snap, threads)
    o = S["objcrop8"]
    rows = {}
    for cell, s in S.items():
        rows[cell] = {
            "GFLOP/step": s["gflop"],
            "x FLOPs": s["gflop"] / o["gflop"],
            "CPU s/step": s["cpu"],
            "x CPU": s["cpu"] / o["cpu"],
            "wall s/step": s["wall"],
            "x wall": s["wall"] / o["wall"],
            "encoder CPU s": s["enc_cpu"],
            "encoder GFLOP/CPU s": s["enc_gflop"] / s["enc_cpu"] if s["enc_cpu"] > 0 else float("nan"),
            "rest CPU s": s["cpu"] - s["enc_cpu"],
            "data + segmentation CPU s": s["workers_cpu"],
            "home view % of encoder FLOPs": 100 * float(snap["cells"][cell]["home_share_of_encoder"]),
        }
    return pd.DataFrame(rows).T.rename_axis("cell").round(3)


def conv_table(snap: dict[str, Any], threads: int):
    """Per cell (rows): the encoder forward's convolution calls in one step (median over steps), the images
    each call convolves, the side of the maps entering the first and leaving the last, their GFLOPs, their
    wall ms and GFLOP/s, and the share of the encoder forward's wall time spent outside convolutions
    (normalisation, activations, pooling)."""
    import pandas as pd

    C = pd.DataFrame(snap["convs"])
    C = C[C["threads"] == threads]
    M = medians(snap)
    rows = {}
    for cell in CELLS:
        g = C[C["cell"] == cell]
        per_step = g.groupby("step").agg(calls=("layer", "size"), gflop=("gflop", "sum"), wall=("wall_s", "sum"))
        first, last = g.iloc[0], g[g["step"] == g["step"].iloc[0]].iloc[-1]
        conv_ms = 1e3 * float(per_step["wall"].median())
        enc_ms = 1e3 * float(M.loc[(cell, threads, "encoder forward"), "wall_s"])
        rows[cell] = {
            "conv calls": int(per_step["calls"].median()),
            "images per call": int(g["images"].median()),
            "side in -> out": f"{int(first['in_hw'])} -> {int(last['out_hw'])}",
            "conv GFLOP": float(per_step["gflop"].median()),
            "conv wall ms": conv_ms,
            "conv GFLOP/s": float(per_step["gflop"].median()) / (conv_ms / 1e3) if conv_ms > 0 else float("nan"),
            "% of encoder forward outside convs": 100 * max(0.0, 1 - conv_ms / enc_ms) if enc_ms > 0 else float("nan"),
        }
    return pd.DataFrame(rows).T.rename_axis("cell")


def _follows(ratio: float, flop_ratio: float) -> str:
    """How a time ratio compares with a FLOP ratio, in words (within 1.5x either way: it follows them)."""
    if flop_ratio / 1.5 <= ratio <= flop_ratio * 1.5:
        return "follows them"
    return "grows less than they do" if ratio < flop_ratio else "grows more than they do"


def _excess(S: dict[str, dict[str, Any]], flop_ratio: float) -> list[tuple[str, float]]:
    """objcrop8's CPU seconds per part beyond patchcrop49's divided by the FLOP ratio, largest first (their
    sum is what objcrop8's step takes beyond a step that shrank with its FLOPs)."""
    o, p = S["objcrop8"]["cpu_by_part"], S["patchcrop49"]["cpu_by_part"]
    return sorted(((k, o[k] - p[k] / flop_ratio) for k in PARTS), key=lambda kv: -kv[1])


WHY = {  # what each part is, said once for the text
    "data": "reading and augmenting the clips (the same for every cell)",
    "segmentation": "Felzenszwalb segmentation (object crops alone)",
    "crops": "finding and resizing the segments' boxes",
    "optimiser": "the optimiser (the same weights in every cell)",
    "encoder forward": "the encoder's forward pass",
    "encoder backward": "the encoder's backward pass",
    "walk + loss": "the walk and its loss",
    "head + glue": "the projection head and glue",
    "backward rest": "the walk's and head's backward",
    "home view": "rolling the home view",
    "other": "the step's bookkeeping",
}


def gap_text(snap: dict[str, Any], grid: dict[str, dict[str, float]] | None = None) -> str:
    """Why object crops save fewer seconds than FLOPs, from the snapshot's numbers: the headline ratios at
    each thread count, the encoder's time against its FLOPs, the parts that do not shrink with the FLOPs
    (each one's excess over a step that did), the home view's share and the pooled walk beside them; with
    ``grid`` (:func:`grid_steps`) the grid's own ratios beside the measured ones."""
    t = snap["threads"][0]
    S = _cell_sums(snap, t)
    o, p, q = S["objcrop8"], S["patchcrop49"], S["patchpool49"]
    rF, rC, rW = p["gflop"] / o["gflop"], p["cpu"] / o["cpu"], p["wall"] / o["wall"]
    conv = conv_table(snap, t)
    load = snap["load_average"][0]
    n = int(snap["settings"]["steps"])
    thr = {c: S[c]["enc_gflop"] / S[c]["enc_cpu"] for c in CELLS}
    enc_share = (o["enc_gflop"] + p["enc_gflop"]) / (o["gflop"] + p["gflop"])
    excess = _excess(S, rF)
    total_excess = o["cpu"] - p["cpu"] / rF
    named = [f"{WHY[k]} {v:.2f} s" for k, v in excess if v > 0.05 * total_excess]  # the parts that make up most of it
    home = float(snap["cells"]["patchcrop49"]["home_share_of_encoder"])
    rF_nohome = (p["gflop"] - home * p["enc_gflop"]) / o["gflop"]
    out = [
        f"**Measured, not estimated:** `{snap['command']}` at commit `{snap['commit']}` on "
        f"{snap['machine'].get('cpu_model') or snap['machine']['device']} ({snap['date'][:10]}), {t} torch "
        f"thread{'s' if t > 1 else ''}, medians over {n} steps of each part of a step (batch "
        f"{snap['settings']['batch']}, clips of {snap['settings']['clip_len']} frames of "
        f"{snap['settings']['size']} px), "
        f"while other work ran on the machine (load average {load['before'][0]:.1f} before, {load['after'][0]:.1f} "
        "after): CPU seconds, which that load distorts less than wall seconds, and shares of the step.",
        f"One objcrop8 step counts **{rF:.1f}x fewer FLOPs** than one patchcrop49 step ({o['gflop']:.1f} against "
        f"{p['gflop']:.1f} GFLOP) but takes only **{rC:.1f}x less CPU time** ({o['cpu']:.2f} s against "
        f"{p['cpu']:.2f} s) and {rW:.1f}x less wall time.",
        f"**What follows the FLOPs: the encoder.** Its forward and backward passes hold {enc_share:.1%} of the two "
        f"steps' FLOPs, and their CPU time {_follows(p['enc_cpu'] / o['enc_cpu'], p['enc_gflop'] / o['enc_gflop'])}: "
        f"patchcrop49's encoder takes {p['enc_cpu'] / o['enc_cpu']:.1f}x objcrop8's CPU time for "
        f"{p['enc_gflop'] / o['enc_gflop']:.1f}x its FLOPs ({thr['objcrop8']:.0f} and {thr['patchcrop49']:.0f} GFLOP "
        f"per CPU second). Many small crops do not mean many small convolution calls: each of the encoder's "
        f"{conv.loc['objcrop8', 'conv calls']} convolutions runs once a step on every crop at once "
        f"({conv.loc['objcrop8', 'images per call']} crops of {snap['cells']['objcrop8']['image_side']} px in "
        f"objcrop8, "
        f"{conv.loc['patchcrop49', 'images per call']} in patchcrop49).",
        f"**What does not: everything else.** The rest of the step takes {o['cpu'] - o['enc_cpu']:.2f} CPU s in "
        f"objcrop8 ({(o['cpu'] - o['enc_cpu']) / o['cpu']:.0%} of its step) and {p['cpu'] - p['enc_cpu']:.2f} s in "
        f"patchcrop49. Had each part of objcrop8's step been {rF:.1f}x cheaper than patchcrop49's, the step would take "
        f"{p['cpu'] / rF:.2f} s; the {total_excess:.2f} s it takes beyond that are mostly " + "; ".join(named) + ". "
        f"In training, reading and segmenting run in the data loader's workers on the same cores, so their CPU "
        f"seconds count as fully as the encoder's: {o['workers_cpu'] / o['cpu']:.0%} of objcrop8's step, "
        f"{p['workers_cpu'] / p['cpu']:.0%} of patchcrop49's.",
        f"**The home view.** patchcrop49 also encodes frame 0 rolled, a fifth view per clip: {home:.0%} of its "
        f"encoder's FLOPs. Without it the FLOP ratio would be {rF_nohome:.1f}x instead of {rF:.1f}x "
        f"({rF / rF_nohome:.2f}x of it is the home view); rolling the frame itself costs "
        f"{1e3 * p['cpu_by_part']['home view']:.1f} ms.",
        f"**The pooled walk** counts {q['gflop'] / o['gflop']:.1f}x objcrop8's FLOPs and takes "
        f"{q['cpu'] / o['cpu']:.2f}x its CPU time: it segments nothing, and its encoder runs "
        f"{thr['patchpool49']:.0f} GFLOP per CPU second on {conv.loc['patchpool49', 'images per call']} frames of "
        f"{snap['cells']['patchpool49']['image_side']} px (objcrop8's: {thr['objcrop8']:.0f} on its crops).",
    ]
    out += [_threads_text(snap, t, t2) for t2 in snap["threads"][1:]]
    if grid:
        ratios = [
            _cell_sums(snap, n)["patchcrop49"]["cpu"] / _cell_sums(snap, n)["objcrop8"]["cpu"] for n in snap["threads"]
        ]
        go, gp, gq = grid["objcrop8"], grid["patchcrop49"], grid["patchpool49"]
        inside = min(ratios) <= gp["cpu"] / go["cpu"] <= max(ratios)
        out.append(
            f"**The grid's own runs** (their ledgers, means over {go['seeds']}, {gp['seeds']} and {gq['seeds']} "
            "seeds): objcrop8 "
            f"counted {gp['gflop'] / go['gflop']:.1f}x fewer FLOPs a step than patchcrop49 and took "
            f"{gp['cpu'] / go['cpu']:.1f}x less CPU time ({go['cpu']:.2f} against {gp['cpu']:.2f} s a step) and "
            f"{gp['wall'] / go['wall']:.1f}x less wall time; the pooled walk took {gq['cpu']:.2f} CPU s a step. "
            "Training ran its step at torch's default threads, one per core, beside its two data workers on the "
            f"same cores: its ratio {'lies' if inside else 'does not lie'} "
            f"between the {' and '.join(f'{r:.1f}x' for r in ratios)} measured here at "
            f"{' and '.join(map(str, snap['threads']))} threads."
        )
    return "\n\n".join(out)


def _threads_text(snap: dict[str, Any], t: int, t2: int) -> str:
    """The same steps at ``t2`` torch threads against ``t``: the ratios, and the encoder's throughput in each."""
    S, S2 = _cell_sums(snap, t), _cell_sums(snap, t2)
    o2, p2, q2 = S2["objcrop8"], S2["patchcrop49"], S2["patchpool49"]
    thr = {c: S[c]["enc_gflop"] / S[c]["enc_cpu"] for c in CELLS}
    thr2 = {c: S2[c]["enc_gflop"] / S2[c]["enc_cpu"] for c in CELLS}
    fall = {c: thr[c] / thr2[c] for c in CELLS}
    load = next(a for a in snap["load_average"] if a["threads"] == t2)
    worst = max(fall, key=fall.get)
    pooled = S["patchpool49"]["cpu"] / S["objcrop8"]["cpu"]
    feel = ", which objcrop8's few crops, with the least work per operator, feel most" if worst == "objcrop8" else ""
    return (
        f"**With {t2} torch threads** (load average {load['before'][0]:.1f} before, {load['after'][0]:.1f} after; "
        f"reading and segmenting kept at one thread, as in the data workers) one step takes {o2['cpu']:.2f} CPU s "
        f"in objcrop8, {p2['cpu']:.2f} in patchcrop49 and {q2['cpu']:.2f} in patchpool49 ({o2['wall']:.2f}, "
        f"{p2['wall']:.2f} and {q2['wall']:.2f} s of wall time): objcrop8 takes only **{p2['cpu'] / o2['cpu']:.1f}x "
        f"less CPU time** than patchcrop49 and {p2['wall'] / o2['wall']:.1f}x less wall time, and the pooled walk "
        f"takes {q2['cpu'] / o2['cpu']:.2f}x objcrop8's CPU time (with {t}: {pooled:.2f}x). "
        "The encoder does fewer "
        f"GFLOPs per CPU second than with {t}: {fall['objcrop8']:.1f}x fewer in objcrop8 ({thr2['objcrop8']:.0f}), "
        f"{fall['patchcrop49']:.1f}x in patchcrop49 ({thr2['patchcrop49']:.0f}), {fall['patchpool49']:.1f}x in "
        f"patchpool49 ({thr2['patchpool49']:.0f}), most in {worst}. A second thread costs every operator a start and "
        "a wait at its end whatever its FLOPs, and on a loaded machine a thread that waits for a descheduled partner "
        f"spins on its core: a cost per operator{feel}. How much it "
        "costs depends on the load, so these seconds hold for this machine at this load only."
    )


def tables(snap: dict[str, Any]) -> list[tuple[Any, str]]:
    """The chapter's tables with their captions: the parts of a step at each thread count, then the gap and the
    convolution calls at the first."""
    t = snap["threads"][0]
    out = [
        (
            part_table(snap, n),
            f"one training step taken apart, {n} torch thread{'s' if n > 1 else ''}: median over "
            f"{snap['settings']['steps']} steps of each part's CPU ms, its share of the step's CPU time, its wall ms, "
            "and the GFLOPs PyTorch counts in it (none in reading, segmenting, cropping or the optimiser); step: the "
            "parts' sum",
        )
        for n in snap["threads"]
    ]
    out.append(
        (
            gap_table(snap, t),
            f"{t} thread{'s' if t > 1 else ''}: the step's FLOPs, CPU and wall seconds, each x objcrop8's; the "
            "encoder's (forward + backward) CPU seconds and GFLOPs per CPU second; the rest of the step; the parts "
            "that training runs in its data workers; the home view's share of the encoder's FLOPs",
        )
    )
    out.append(
        (
            conv_table(snap, t),
            f"{t} thread{'s' if t > 1 else ''}: the encoder forward's convolutions in one step (median over steps): "
            "calls, images per call, map side into the first and out of the last, GFLOPs, wall ms, GFLOP/s, and the "
            "share of the encoder forward's wall time outside them",
        )
    )
    return out


def grid_steps(snapshot: str | Path) -> dict[str, dict[str, float]] | None:
    """The grid's own training steps from its runs' ledgers (``<snapshot>/<cell>-3k-s<seed>/ledger.json``,
    :func:`ever.ledger.load_ledger`): per cell, the mean over seeds of the training phase's wall and CPU
    seconds per step and its GFLOPs per step; None when the snapshot lacks a cell."""
    from ever.ledger import load_ledger

    out = {}
    for cell in CELLS:
        runs = sorted(Path(snapshot).glob(f"{cell}-3k-s*/ledger.json"))
        tots = [(load_ledger(r.parent).get("phases", {}).get("train") or {}).get("totals") or {} for r in runs]
        tots = [t for t in tots if t.get("steps") and t.get("seconds") and t.get("cpu_seconds") and t.get("flops")]
        if not tots:
            return None
        out[cell] = {
            k: sum(t[key] / t["steps"] for t in tots) / len(tots) / scale
            for k, key, scale in (("wall", "seconds", 1), ("cpu", "cpu_seconds", 1), ("gflop", "flops", 1e9))
        }
        out[cell]["seeds"] = len(tots)
    return out
