"""The switch between the Cython kernels and the NumPy reference.

    with rnnfast.backend.use("numpy"):
        model.forward(...)          # runs on rnnfast.reference

Layers also take ``backend="cython"|"numpy"``; ``None`` follows the switch.
"""
from __future__ import annotations

import contextvars
import functools
from contextlib import contextmanager
from types import SimpleNamespace

BACKENDS = ("cython", "numpy")
_current = contextvars.ContextVar("rnnfast_backend", default="cython")


def check_backend(name) -> str:
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {name!r}")
    return name


def current() -> str:
    return _current.get()


@contextmanager
def use(name: str):
    """Run the enclosed code on the named backend (context-local, thread-safe)."""
    token = _current.set(check_backend(name))
    try:
        yield
    finally:
        _current.reset(token)


def ops(backend=None):
    """The kernel functions (``lstm_forward``, ...) of ``backend`` (default: the current switch)."""
    name = check_backend(backend) if backend is not None else _current.get()
    if name == "numpy":
        from . import reference

        return reference
    return _cython_kernels()


@functools.lru_cache(maxsize=None)
def _cython_kernels():
    # Built once: layers ask for it on every forward/backward and generation on every token.
    from . import gru, lstm, rnn, stepper

    return SimpleNamespace(**{k: getattr(m, k) for m in (lstm, gru, rnn) for k in m.__dict__
                              if k.endswith(("_forward", "_backward"))},
                           **{k: getattr(stepper, k) for k in ("LSTMStepper", "GRUStepper", "RNNStepper")})
