"""Evaluation by label propagation (the CRW protocol) on DAVIS-layout data.

* :mod:`ever.evaluate.metrics`: DAVIS J and F (region IoU, boundary F-measure), their statistics, PCK;
* :mod:`ever.evaluate.propagation`: feature functions (raw Lab colour, a model) and mask propagation;
* :mod:`ever.evaluate.baselines`: the distance-preserving Lab colour and the random-init encoder baselines;
* :mod:`ever.evaluate.keypoints`: keypoint annotations, heat-map propagation and PCK scoring;
* :mod:`ever.evaluate.run`: ``evaluate(...)`` over a split (CSV + JSON), and the ``ever eval`` command.
"""

# ``ever eval copy|lab|lab-dist|random``: repeat mask 0; raw Lab colour, its direction (lab) or its distances
# (lab-dist); a random-init encoder (see ever.evaluate.baselines)
BASELINES = ("copy", "lab", "lab-dist", "random")
