"""The book's ``BaseModel`` (``common/base_model.py``) and its device helpers (``to_cpu``/``to_gpu`` of
``common/util.py``).

``save_params``/``load_params`` keep the book's file format, a pickled list of float16 arrays, so that the
book's trained weights (``ch06/Rnnlm.pkl``, ``ch08/AttentionSeq2seq.pkl``) load and that the book's own code
reads what a ported script saves.  Reading goes through an unpickler that builds NumPy arrays and nothing
else: a file from elsewhere cannot run code.  Writing is atomic (a temporary file, then a rename).
"""
from __future__ import annotations

import io
import os
import pickle

import numpy as np

from ..train.checkpoint import write_atomically
from . import config


def to_cpu(x):
    """A NumPy array (rnnfast computes on the CPU)."""
    return np.asarray(x)


def to_gpu(x):
    """rnnfast has no GPU arrays: the array itself, so that a script's ``if config.GPU: to_gpu(...)`` runs."""
    return np.asarray(x)


# What a pickled list of NumPy arrays refers to (NumPy 1.x and 2.x module names).
_ARRAY_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): np._core.multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): np._core.multiarray.scalar,
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ARRAY_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a list of NumPy arrays; "
                                         "refusing to load it") from None


def load_arrays(file_name: str) -> list:
    """The list of arrays in a parameter file of the book's format (a pickle that holds only arrays)."""
    with open(file_name, "rb") as f:
        params = _ArrayUnpickler(io.BytesIO(f.read())).load()
    if not isinstance(params, (list, tuple)) or not all(isinstance(p, np.ndarray) for p in params):
        raise ValueError(f"{file_name} does not hold a list of arrays (the book's save_params format)")
    return list(params)


def save_arrays(file_name: str, arrays) -> None:
    """Pickle ``arrays`` (a list) to ``file_name`` atomically: a reader sees the old file or the new one."""
    arrays = list(arrays)
    write_atomically(file_name, lambda f: pickle.dump(arrays, f))


class BaseModel:
    """A model of ``params``/``grads`` lists with the book's parameter files (float16 on disk)."""

    def __init__(self):
        self.params, self.grads = None, None

    def forward(self, *args):
        raise NotImplementedError

    def backward(self, *args):
        raise NotImplementedError

    def save_params(self, file_name=None):
        """Write ``params`` as float16 to ``file_name`` (default: ``<ClassName>.pkl``)."""
        if file_name is None:
            file_name = self.__class__.__name__ + ".pkl"
        save_arrays(file_name, [to_cpu(p).astype(np.float16) for p in self.params])

    def load_params(self, file_name=None):
        """Copy the arrays of ``file_name`` (default: ``<ClassName>.pkl``) into ``params``, as float32."""
        if file_name is None:
            file_name = self.__class__.__name__ + ".pkl"
        if "/" in file_name:
            file_name = file_name.replace("/", os.sep)
        if not os.path.exists(file_name):
            raise IOError("No file: " + file_name)
        params = [p.astype("f") for p in load_arrays(file_name)]
        if len(params) != len(self.params):
            raise ValueError(f"{file_name} holds {len(params)} arrays; the model has {len(self.params)} parameters")
        for i, (param, new) in enumerate(zip(self.params, params)):
            if param.shape != new.shape:
                raise ValueError(f"{file_name}: array {i} has shape {new.shape}; the model's parameter {i} has "
                                 f"shape {param.shape}")
            param[...] = new


__all__ = ["BaseModel", "to_cpu", "to_gpu", "config"]
