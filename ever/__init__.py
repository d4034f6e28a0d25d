"""EVER: green self-supervised video representation learning by contrastive random walks.

Data flows one way: frames -> nodes -> walk -> loss (``ever.train``);
frames -> features -> propagation -> scores (``ever.evaluate``). Importing has no side effects.
"""
__version__ = "0.1.0"
