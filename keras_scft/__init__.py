"""keras-scft: reference-based sketch colorization (SCFT) in Keras 3."""

__version__ = "0.1.0"

__all__ = ["__version__"]
