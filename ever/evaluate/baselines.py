"""What a user gets without training: the feature functions of ``ever eval lab-dist`` and ``ever eval random``.

Two colour baselines read the mean Lab colour of each 8x8 cell (:func:`ever.evaluate.propagation.lab_cells`);
label propagation L2-normalises features and compares them by dot product:

* ``lab`` (:func:`ever.evaluate.propagation.lab_features`): the scaled 3-d Lab vector. After the
  normalisation only its *direction* is left: a dark and a bright cell of the same hue look alike.
* ``lab-dist`` (:func:`lab_dist_features`): the centred Lab ``x = (L - 50, a, b)`` lifted onto a sphere,
  ``f = [x, h] / R`` with ``h = sqrt(R^2 - |x|^2)`` and ``R = 200``: unit vectors whose dot product is
  ``1 - (|x1 - x2|^2 + (h1 - h2)^2) / (2 R^2)``, about ``1 - |x1 - x2|^2 / (2 R^2)``: the nearest cells are
  about those nearest in Lab (CIE76 colour distance), brightness included. The height term is exactly 0 for
  cells equally far from mid-grey and at most ``((|x1| + |x2|) / (h1 + h2))^2`` of the Lab term (7 % within
  50 of mid-grey, 33 % within 100): no unit vectors keep Euclidean distances exactly (three colours on a
  line would need three points of a sphere on a line), and a larger R trades that error for flatter
  similarities under the propagation's softmax temperature.

``random``: the encoder of a config with the initial weights of a seed (:func:`random_encoder`), read at
``model.eval_stage``; ``ever eval random --set seed=N`` scores one initialisation of a distribution.
"""

from __future__ import annotations

import torch

from ever.config import ModelConfig
from ever.evaluate.propagation import lab_cells

LAB_SPHERE_RADIUS = 200.0  # R > the largest |(L - 50, a, b)| of sRGB colours (about 188)


def lab_dist_features(frames: torch.Tensor, radius: float = LAB_SPHERE_RADIUS) -> torch.Tensor:
    """Distance-preserving colour baseline: (t, 3, H, W) sRGB in [0, 1] -> (t, 4, ceil(H/8), ceil(W/8)),
    unit vectors ``[x, sqrt(R^2 - |x|^2)] / R`` of each cell's mean centred Lab ``x = (L - 50, a, b)``;
    ``f1 . f2 = 1 - (|x1 - x2|^2 + (h1 - h2)^2) / (2 R^2)`` (see the module docstring)."""
    lab = lab_cells(frames)
    x = lab - lab.new_tensor([50.0, 0.0, 0.0])[None, :, None, None]
    height = (radius**2 - x.square().sum(1, keepdim=True)).clamp_min(0).sqrt()
    return torch.cat([x, height], 1) / radius


def random_encoder(cfg: ModelConfig, seed: int) -> torch.nn.Module:
    """The encoder of ``cfg`` with the initial weights that ``seed`` draws (on the CPU, so a seed is the same
    initialisation on any device; the global random state is left as it was), in eval mode."""
    from ever.models import EverModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return EverModel(cfg).eval()
