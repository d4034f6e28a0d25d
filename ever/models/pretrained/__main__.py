"""``python -m ever.models.pretrained CHECKPOINT --name NAME --eval SUMMARY.json ...``: ship a trained model
(see :func:`ever.models.pretrained.export`)."""
import argparse
import sys

from ever.models.pretrained import HERE, export

p = argparse.ArgumentParser(prog="python -m ever.models.pretrained", description=export.__doc__.splitlines()[0])
p.add_argument("checkpoint", help="a training checkpoint (its run folder holds ledger.json)")
p.add_argument("--name", required=True)
p.add_argument("--eval", nargs="+", default=[], metavar="SUMMARY.json",
               help="summary.json files of `ever eval` (the model, its fp32 checkpoint, baselines)")
p.add_argument("--out-dir", default=str(HERE))
a = p.parse_args()
print(export(a.checkpoint, a.name, a.eval, a.out_dir,
             command=" ".join(["python -m ever.models.pretrained", *sys.argv[1:]])))
sys.exit(0)
