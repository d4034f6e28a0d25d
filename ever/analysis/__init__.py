"""What the book and the README read: run folders and snapshots turned into tables, verdicts and figures.

One concept a module, each importing only those above it in this list:

- :mod:`~ever.analysis.stats`: pure statistics (seeds grouped into cells, noise, paired tests, compute to reach);
- :mod:`~ever.analysis.display`: number formats and how a notebook shows a table or a note;
- :mod:`~ever.analysis.sources`: live run folders or committed snapshots -> DataFrames (layout: :mod:`ever.runs`);
- :mod:`~ever.analysis.tables`: the tables the chapters show;
- :mod:`~ever.analysis.claims`: each claim's verdict as a frozen dataclass (verdict, numbers, reason);
- :mod:`~ever.analysis.wording`: those verdicts as sentences (the README and the book both call it);
- :mod:`~ever.analysis.captions`: what a chapter's figure or table shows, in words;
- :mod:`~ever.analysis.plots`: every figure of the chapters, one call each;
- :mod:`~ever.analysis.readme`: the README's generated sections (``python -m ever.analysis.readme``);
- :mod:`~ever.analysis.speed`: the bench snapshots of ``results/speed`` (a training step and propagation beside
  ajabri/videowalk's) as tables and sentences, read by the README and chapter 6.

Nothing here imports torch at module load.
"""
