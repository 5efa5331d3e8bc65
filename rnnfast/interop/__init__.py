"""Weight exchange with other libraries: ``rnnfast.interop.torch`` (PyTorch modules and state dicts,
imported lazily) and ``rnnfast.interop.keras`` (Keras weight layouts as NumPy arrays)."""
from . import keras

__all__ = ["keras"]
