"""Evaluation by label propagation (the CRW protocol) on DAVIS-layout data.

* :mod:`ever.evaluate.metrics`: DAVIS J and F (region IoU, boundary F-measure), their statistics, PCK;
* :mod:`ever.evaluate.propagation`: feature functions (raw Lab colour, a model) and mask propagation;
* :mod:`ever.evaluate.keypoints`: keypoint annotations, heat-map propagation and PCK scoring;
* :mod:`ever.evaluate.run`: ``evaluate(...)`` over a split (CSV + JSON), and the ``ever eval`` command.
"""

BASELINES = ("copy", "lab", "random")  # ``ever eval copy|lab|random``: repeat mask 0, raw Lab colour, random-init encoder
