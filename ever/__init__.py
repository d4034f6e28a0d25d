"""EVER: green self-supervised video representation learning by contrastive random walks.

Data flows one way: frames -> nodes -> walk -> loss (``ever.train``);
frames -> features -> propagation -> scores (``ever.evaluate``). Importing has no side effects.

    r = ever.propagate("clip.mp4", "first_mask.png", out="out")   # your own video: see ever.own_video
"""

__version__ = "0.1.0"
__all__ = ["propagate"]


def __getattr__(name: str):
    if name == "propagate":  # imported on first use (torch and the models load lazily)
        from ever.own_video import propagate

        return propagate
    raise AttributeError(f"module 'ever' has no attribute {name!r}")
