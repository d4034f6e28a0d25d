"""The run folder: the one place that knows its layout, read by the analysis and written by the test fixtures.

``ever train`` and ``ever eval`` (and ``ever report``, which calls them) leave a run folder
``runs/<name>/`` holding::

    config.yaml                       the run's config (ever.config.save_config)
    env.json                          the environment it ran in
    metrics.jsonl                     one JSON line per logged training step
    ledger.json                       what it cost (ever.ledger)
    eval/<split>/summary.json         the evaluation's means (ever.evaluate.run), only once every sequence is done
    eval/<split>/per_sequence.csv     one row per (sequence, object)
    eval-curve/step-NNNNNN/<split>/   the same two files for each training snapshot scored
    curve.csv                         accuracy against training compute (ever.analysis.sources.training_curve)

Baselines live in ``runs/baselines/<kind>/`` with the same ``eval/`` layout. A results snapshot
(``results/<study>/``) keeps this layout, so every reader works on it too. :class:`RunDir` names these files
and reads them; its writers are the ones the tests' hand-made run folders use.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ever.config import flatten, upgrade
from ever.evaluate import BASELINES

CONFIG_FILE = "config.yaml"
ENV_FILE = "env.json"
METRICS_FILE = "metrics.jsonl"
LEDGER_FILE = "ledger.json"  # ever.ledger writes it
CURVE_FILE = "curve.csv"
SUMMARY_FILE = "summary.json"
PER_SEQUENCE_FILE = "per_sequence.csv"
BASELINES_DIR = "baselines"


def read_json(path: str | Path) -> dict[str, Any] | None:
    """A JSON file's object; None when it is absent or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def scalars(d: dict[str, Any]) -> dict[str, Any]:
    """The scalar fields of a summary (what becomes a table column)."""
    return {k: v for k, v in d.items() if v is None or isinstance(v, (str, int, float, bool))}


@dataclass(frozen=True)
class RunDir:
    """One run (or baseline) folder: the paths of its files and their contents (None or empty when absent)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def env_path(self) -> Path:
        return self.path / ENV_FILE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def ledger_path(self) -> Path:
        return self.path / LEDGER_FILE

    @property
    def curve_path(self) -> Path:
        return self.path / CURVE_FILE

    def eval_dir(self, split: str) -> Path:
        return self.path / "eval" / split

    def summary_path(self, split: str) -> Path:
        return self.eval_dir(split) / SUMMARY_FILE

    def per_sequence_path(self, split: str) -> Path:
        return self.eval_dir(split) / PER_SEQUENCE_FILE

    def curve_eval_dir(self, snapshot: str, split: str) -> Path:
        """Where the snapshot ``snapshot`` (e.g. ``step-000250``) of the training was scored."""
        return self.path / "eval-curve" / snapshot / split

    def curve_summaries(self, split: str) -> list[Path]:
        """The summary.json of every scored training snapshot, by step."""
        return sorted(self.path.glob(f"eval-curve/step-*/{split}/{SUMMARY_FILE}"))

    def summary(self, split: str) -> dict[str, Any] | None:
        return read_json(self.summary_path(split))

    def per_sequence(self, split: str):
        """``per_sequence.csv`` as a DataFrame; None when absent."""
        import pandas as pd

        f = self.per_sequence_path(split)
        return pd.read_csv(f) if f.is_file() else None

    def config_flat(self) -> dict[str, Any]:
        return run_config_flat(self.path)

    def metrics(self):
        """``metrics.jsonl`` as a DataFrame (empty when absent)."""
        import pandas as pd

        rows = []
        try:
            for line in self.metrics_path.read_text().splitlines():
                if line.strip():
                    rows.append(json.loads(line))
        except (OSError, ValueError):
            pass
        return pd.DataFrame(rows)

    def ledger(self) -> dict[str, Any] | None:
        return read_json(self.ledger_path)

    def train_totals(self) -> dict[str, Any]:
        """The ledger's training totals (empty without a ledger or a training phase)."""
        return (((self.ledger() or {}).get("phases") or {}).get("train") or {}).get("totals") or {}

    def curve(self):
        """``curve.csv`` as a DataFrame; None when absent."""
        import pandas as pd

        return pd.read_csv(self.curve_path) if self.curve_path.is_file() else None

    # Writers (atomic): what `ever train` / `ever eval` leave, for hand-made run folders and snapshots.
    def write_config(self, cfg) -> None:
        from ever.config import save_config

        self.path.mkdir(parents=True, exist_ok=True)
        save_config(cfg, self.config_path)

    def write_summary(self, split: str, summary: dict[str, Any]) -> None:
        from ever.utils import atomic_write_json

        self.eval_dir(split).mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.summary_path(split), summary)

    def write_per_sequence(self, split: str, rows) -> None:
        """``rows``: a DataFrame or a list of dicts with at least ``sequence``, ``J-Mean``, ``F-Mean``."""
        import pandas as pd

        from ever.utils import atomic_write_text

        self.eval_dir(split).mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.per_sequence_path(split), pd.DataFrame(rows).to_csv(index=False))

    def write_ledger(self, ledger: dict[str, Any]) -> None:
        from ever.utils import atomic_write_json

        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.ledger_path, ledger)

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        from ever.utils import atomic_write_text

        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in rows))


def model_runs(runs_dir: str | Path, names: list[str] | None = None) -> list[Path]:
    """Run folders (those with a ``config.yaml``), in the grid's order when ``names`` is given."""
    runs_dir = Path(runs_dir)
    if names:
        return [runs_dir / n for n in names if (runs_dir / n / CONFIG_FILE).is_file()]
    if not runs_dir.is_dir():
        return []
    return sorted(p for p in runs_dir.iterdir() if (p / CONFIG_FILE).is_file() and p.name != BASELINES_DIR)


def baseline_dir(runs_dir: str | Path, kind: str) -> Path:
    """The folder of the baseline ``kind`` (ever.evaluate.BASELINES) of ``runs_dir``."""
    return Path(runs_dir) / BASELINES_DIR / kind


def result_dirs(runs_dir: str | Path, names: list[str] | None = None) -> list[tuple[str, Path]]:
    """(label, folder) of every run (:func:`model_runs`) then every baseline (``baseline: <kind>``), the
    order every table of the book uses; baselines are listed whether or not they were evaluated."""
    return [(d.name, d) for d in model_runs(runs_dir, names)] + [
        (f"baseline: {b}", baseline_dir(runs_dir, b)) for b in BASELINES
    ]


@functools.lru_cache(maxsize=1)
def _default_config_flat() -> dict[str, Any]:
    """Today's default config, flattened (built once; callers copy it, never change it)."""
    import dataclasses

    from ever.config import config_from_dict

    return flatten(dataclasses.asdict(config_from_dict({})))


def run_config_flat(run_dir: str | Path) -> dict[str, Any]:
    """A run's saved config as a flat ``{"section.key": value}`` dict (lists as strings). A field the config
    does not hold, because the run was saved before the field existed, reads as today's default: a new field's
    default keeps the behaviour from before it, so runs from before and after compare as equal there."""
    try:
        raw = yaml.safe_load((Path(run_dir) / CONFIG_FILE).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    flat = {**_default_config_flat(), **flatten(upgrade(raw))}  # renamed fields (train.amp) under their new name
    return {k: (str(v) if isinstance(v, list) else v) for k, v in flat.items()}


def load_metrics(run_dir: str | Path):
    """``metrics.jsonl`` of a run as a DataFrame (empty when absent)."""
    return RunDir(run_dir).metrics()
