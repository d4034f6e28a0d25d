"""Node extractors: frames -> one feature vector per node per frame.

Every extractor maps frames ``(B, T, 3, H, W)`` (float in [0, 1]) through an encoder to node features
``(B, T, N, C)`` and a validity mask ``(B, T, N)`` (False = padding). The projection head, the
optional GCN and the L2 normalisation come after, in :class:`ever.models.crw.CRW`, so a new node type
only has to say *which pixels form a node*.

- :class:`PatchCropNodes` (reference CRW): each grid patch is cropped (with jitter) and encoded on its
  own, then average-pooled. Costly: every patch pays a full encoder pass.
- :class:`PatchPoolNodes` (efficient): the frame is encoded once and the same grid cells are
  average-pooled from the dense 1/8 map.
- Object nodes (unsupervised segments) are added by :func:`build_extractor`: mask-pooled from the
  dense map for ``nodes.kind == "object"``, or each segment's box cropped and encoded on its own
  (as the reference encodes each patch) for ``"object_crop"``.

The interface is in :mod:`ever.nodes.base`, patch nodes in :mod:`ever.nodes.patches`, object nodes in
:mod:`ever.nodes.objects`; this module is the registry. To add an extractor: subclass :class:`NodeExtractor`
(a module of its own), implement ``__call__``, register it in :func:`build_extractor`, and add its name to
``NodeConfig.kind``.
"""

from __future__ import annotations

from ever.config import NodeConfig
from ever.nodes.base import NodeExtractor
from ever.nodes.objects import ObjectCropNodes, ObjectNodes
from ever.nodes.patches import PatchCropNodes, PatchPoolNodes, grid_centers

__all__ = [
    "NodeExtractor",
    "ObjectCropNodes",
    "ObjectNodes",
    "PatchCropNodes",
    "PatchPoolNodes",
    "build_extractor",
    "grid_centers",
]


def build_extractor(cfg: NodeConfig) -> NodeExtractor:
    """The registry: ``nodes.kind`` -> its extractor, built from the config."""
    if cfg.kind == "patch_pool":
        return PatchPoolNodes(cfg.patch_size, cfg.patch_stride)
    if cfg.kind == "patch_crop":
        return PatchCropNodes(cfg.patch_size, cfg.patch_stride, cfg.jitter)
    if cfg.kind == "object":
        return ObjectNodes(cfg)
    if cfg.kind == "object_crop":
        return ObjectCropNodes(cfg)
    raise ValueError(f"unknown node kind {cfg.kind!r}")
