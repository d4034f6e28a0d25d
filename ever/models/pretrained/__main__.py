"""``python -m ever.models.pretrained CHECKPOINT --name NAME --eval SUMMARY.json ... [--recipe SNAPSHOT:CELL]``:
ship a trained model (see :func:`ever.models.pretrained.export`); ``--card NAME --recipe SNAPSHOT:CELL`` records
the recipe's scores in a shipped card without touching its weights (:func:`ever.models.pretrained.set_recipe`)."""

import argparse
import sys

from ever.errors import EverError
from ever.models.pretrained import HERE, export, set_recipe

p = argparse.ArgumentParser(prog="python -m ever.models.pretrained", description=export.__doc__.splitlines()[0])
p.add_argument("checkpoint", nargs="?", help="a training checkpoint (its run folder holds ledger.json)")
p.add_argument("--name", help="the shipped model's name (with CHECKPOINT)")
p.add_argument("--card", help="a shipped model whose card gets --recipe (instead of CHECKPOINT --name)")
p.add_argument(
    "--eval",
    nargs="+",
    default=[],
    metavar="[LABEL=]SUMMARY.json",
    help="summary.json files of `ever eval` (the model, its fp32 checkpoint, baselines); "
    "LABEL names the card's entry (default: the summary's method)",
)
p.add_argument(
    "--stage",
    choices=("layer2", "layer3", "layer4"),
    default=None,
    help="encoder stage the shipped model's features are read from (default: the run's eval_stage)",
)
p.add_argument(
    "--recipe",
    metavar="SNAPSHOT:CELL",
    help="the committed runs snapshot and cell of the model's recipe (its seeds' scores go in the card)",
)
p.add_argument("--out-dir", default=str(HERE))
a = p.parse_args()
if (a.card is None) == (a.checkpoint is None) or (a.checkpoint is not None) != (a.name is not None):
    p.error("give CHECKPOINT --name NAME (export) or --card NAME --recipe SNAPSHOT:CELL (record a recipe)")
if a.card is not None and (a.recipe is None or a.eval or a.stage):
    p.error("--card takes only --recipe SNAPSHOT:CELL (and --out-dir): its weights and evaluations stay as exported")
command = " ".join(["python -m ever.models.pretrained", *sys.argv[1:]])
try:
    if a.card is not None:
        print(set_recipe(a.card, a.recipe, a.out_dir, command=command))
    else:
        print(export(a.checkpoint, a.name, a.eval, a.out_dir, stage=a.stage, command=command, recipe=a.recipe))
except EverError as e:
    sys.exit(f"error: {e}")
sys.exit(0)
