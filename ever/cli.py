"""The ``ever`` command line. Parsing happens only in :func:`main`; sub-commands import lazily.

ever data list | fetch NAME | verify NAME | generate [NAME] | frames ROOT... --out DIR
ever train CONFIG.yaml [--set key=value ...] [--resume]
ever eval CHECKPOINT|copy|lab|lab-dist|random [--config C] [--data DIR] [--split val] [--out DIR] [--set ...]
ever propagate VIDEO --mask FIRST.png [--points FIRST.json] [--model NAME|CKPT] --out DIR [--long-side N]
               [--overwrite]
ever models
ever ledger runs/* [--csv FILE]
ever report [--grid configs/report.yaml] [--device cuda] [--jobs N] [--only CELL ...] [--snapshot DIR]
"""

from __future__ import annotations

import argparse
import signal
import sys
import warnings
from pathlib import Path


def _size(text: str) -> int:
    """A size in pixels for argparse: an integer >= 0."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of pixels >= 0, got {text!r}")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ever", description="EVER: green self-supervised video correspondence")
    sub = p.add_subparsers(dest="cmd", required=True)

    d = sub.add_parser("data", help="list, fetch, verify or generate datasets")
    dsub = d.add_subparsers(dest="data_cmd", required=True)
    dsub.add_parser("list", help="datasets described in data_manifest/")
    for name in ("fetch", "verify"):
        q = dsub.add_parser(name)
        q.add_argument("name")
        q.add_argument("--root", default=None, help="dataset folder (default: data/NAME)")
    g = dsub.add_parser("generate", help="generate the embedded ever-synth data")
    g.add_argument("name", nargs="?", default="ever-synth")
    g.add_argument("--root", default=None)
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="generator options")
    f = dsub.add_parser("frames", help="decode training videos once into JPEG frame folders (fast clip reads)")
    f.add_argument("roots", nargs="+", help="folders or video files (as data.roots)")
    f.add_argument("--out", required=True, help="writes OUT/<video stem>/00000.jpg ...")
    f.add_argument("--short-side", type=int, default=256, help="px (frames are never enlarged)")

    t = sub.add_parser("train", help="train a model by the contrastive random walk")
    t.add_argument("config")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    t.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")

    e = sub.add_parser("eval", help="label propagation on a DAVIS-layout folder")
    e.add_argument("checkpoint", help="a checkpoint .pt, or a baseline: copy | lab | lab-dist | random")
    e.add_argument("--config", default=None, help="config for the 'random' baseline's architecture")
    e.add_argument("--data", default=None)
    e.add_argument("--split", default=None)
    e.add_argument("--out", default=None)
    e.add_argument(
        "--save-masks",
        default=None,
        metavar="DIR",
        help="also write the predictions: DIR/<seq>/<frame>.png (DAVIS submission layout), DIR/keypoints/<seq>.json",
    )
    e.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="eval.* overrides")

    pr = sub.add_parser("propagate", help="carry a first-frame mask (and points) through your own video")
    pr.add_argument(
        "video",
        help="a video file (mp4, avi, webm, mkv, ...) or a folder of JPEG/PNG frames "
        "(read in natural order: frame2.jpg before frame10.jpg)",
    )
    pr.add_argument(
        "--mask",
        required=True,
        help="first frame's mask: palette, grey/binary or RGB PNG. A lossy JPEG mask is read as one "
        "object, grey > 127 (with a warning); a JPEG of several objects is refused",
    )
    pr.add_argument("--points", default=None, help='first frame\'s points: JSON {"points": [[x, y], ...]}')
    pr.add_argument(
        "--model", default=None, help="a shipped model (ever models) or a checkpoint .pt (default: the shipped default)"
    )
    pr.add_argument("--out", required=True, help="writes OUT/masks/<frame>.png, OUT/overlay.mp4, OUT/points.json")
    pr.add_argument(
        "--overwrite", action="store_true", help="replace the files of an earlier run in OUT (refused without it)"
    )
    pr.add_argument(
        "--long-side",
        type=_size,
        default=None,
        metavar="N",
        help="process frames with the long side at N px (default: the resolution the model was "
        "scored at, 427 for the shipped models, never above the video's; 0 = native size, "
        "slower: 4x the pixels at 854x480, 20x at 1080p)",
    )
    pr.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="eval.* overrides, e.g. eval.topk=5"
    )
    sub.add_parser("models", help="the models shipped with EVER")

    lg = sub.add_parser("ledger", help="table of the cost ledgers of runs")
    lg.add_argument("runs", nargs="+")
    lg.add_argument("--csv", default=None)

    r = sub.add_parser("report", help="train, evaluate, execute notebooks and build the book")
    r.add_argument("--grid", default="configs/report.yaml")
    r.add_argument("--device", default=None, help="override train.device for every run (cpu | cuda)")
    r.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="train and score N runs at once (on a CPU each gets cores // N threads unless OMP_NUM_THREADS is set)",
    )
    r.add_argument(
        "--only",
        nargs="+",
        default=None,
        metavar="NAME",
        help="train and score only these cells or runs of the grid (no baselines, notebooks or book); with "
        "--snapshot the grid's other runs are carried from the snapshot already in DIR, if their configs still match",
    )
    r.add_argument(
        "--snapshot",
        default=None,
        metavar="DIR",
        help="afterwards copy the small result files into DIR (a results snapshot to commit, e.g. results/report)",
    )
    return p


def _run(args: argparse.Namespace) -> int:
    if args.cmd == "data":
        from ever.data import manifest

        return manifest.cli(args)
    if args.cmd == "train":
        from ever.config import load_config
        from ever.train import train

        cfg = load_config(args.config, args.set)
        train(cfg, resume=args.resume)
        return 0
    if args.cmd == "eval":
        from ever.evaluate.run import cli as eval_cli

        return eval_cli(args)
    if args.cmd == "propagate":
        from ever.own_video import cli as propagate_cli

        return propagate_cli(args)
    if args.cmd == "models":
        from ever.models.pretrained import cli as models_cli

        return models_cli(args)
    if args.cmd == "ledger":
        from ever.ledger import cli as ledger_cli

        return ledger_cli(args)
    if args.cmd == "report":
        from ever.report import cli as report_cli

        return report_cli(args)
    raise AssertionError(args.cmd)


def _sigterm(signum, frame):  # turn `kill`/timeout into an exception so runs close their files cleanly
    raise KeyboardInterrupt


_PACKAGE = Path(__file__).resolve().parent
_FORMAT_WARNING = warnings.formatwarning


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """EVER's own warnings (those meant for the user) as one line, like its errors; others as Python does."""
    if Path(filename).resolve().is_relative_to(_PACKAGE):
        return f"ever: warning: {message}\n"
    return _FORMAT_WARNING(message, category, filename, lineno, line)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    warnings.formatwarning = _format_warning
    from ever.config import ConfigError
    from ever.errors import EverError

    try:
        return _run(args)
    except (EverError, ConfigError, FileNotFoundError) as e:
        print(f"ever: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a folder made read-only during a run: one line, what was written stays
        where = f"{e.filename}: " if e.filename else ""
        print(
            f"ever: error: {where}{e.strerror or e} (results and checkpoints written so far are kept)", file=sys.stderr
        )
        return 2
    except KeyboardInterrupt:
        print("ever: interrupted (checkpoints and results written so far are kept)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
