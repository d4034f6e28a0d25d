"""``python -m ever.models.pretrained CHECKPOINT --name NAME --eval SUMMARY.json ...``: ship a trained model
(see :func:`ever.models.pretrained.export`)."""

import argparse
import sys

from ever.models.pretrained import HERE, export

p = argparse.ArgumentParser(prog="python -m ever.models.pretrained", description=export.__doc__.splitlines()[0])
p.add_argument("checkpoint", help="a training checkpoint (its run folder holds ledger.json)")
p.add_argument("--name", required=True)
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
p.add_argument("--out-dir", default=str(HERE))
a = p.parse_args()
print(
    export(
        a.checkpoint,
        a.name,
        a.eval,
        a.out_dir,
        stage=a.stage,
        command=" ".join(["python -m ever.models.pretrained", *sys.argv[1:]]),
    )
)
sys.exit(0)
