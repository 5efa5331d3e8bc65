"""The recurrent cells, as data: one specification per cell that the kernels' driver, the validation, the
layers, the interop, the benchmarks and the tests all read.

Every cell has fused weights that multiply from the right: ``Wx (D, G*H)``, ``Wh (H, G*H)`` and biases
``(G*H,)``, their G gate blocks side by side in ``gate_names`` order; its state is ``state_names`` (each
``(N, H)``); a cell may take one option (``option``), such as the GRU's ``reset_after``.

>>> from rnnfast.cells import CELLS
>>> CELLS["lstm"].gates, CELLS["gru"].bias_names, CELLS["lstm"].state_names
(4, ('bx', 'bh'), ('h', 'c'))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np


@dataclass(frozen=True)
class CellSpec:
    """One recurrent cell: its gate blocks, biases, states and option.

    Attributes
    ----------
    name : str
        ``"lstm"``, ``"gru"`` or ``"rnn"``: the kernels' prefix (``lstm_forward``) and the CLI's ``--cell``.
    title : str
        The name PyTorch's module has (``nn.LSTM``).
    gate_names : tuple of str
        The gate blocks of the fused weights, in order (PyTorch's).
    bias_names : tuple of str
        The bias arguments: one ``b``, or the GRU's ``bx, bh`` (its reset gate multiplies the recurrent part).
    state_names : tuple of str
        The state: ``h``, and the LSTM's cell state ``c``.
    option : str or None
        The name of the cell's one option (``reset_after``, ``nonlinearity``), its values and its default.
    equations : str
        The cell's maths, as the NumPy reference writes it.
    """

    name: str
    title: str
    gate_names: Tuple[str, ...]
    bias_names: Tuple[str, ...]
    state_names: Tuple[str, ...]
    option: Optional[str] = None
    option_values: tuple = ()
    option_default: object = None
    equations: str = ""

    @property
    def gates(self) -> int:
        """G, the number of gate blocks of the fused weights."""
        return len(self.gate_names)

    @property
    def gate_size(self) -> str:
        """How the docs and errors write the fused width: ``"4H"``, or ``"H"`` for one block."""
        return f"{self.gates}H" if self.gates > 1 else "H"

    def check_option(self, value):
        """The option's value (a flag as a bool), or an error naming the option and its allowed values:
        TypeError for a flag that is not a bool, ValueError for a value not allowed."""
        if self.option is None:
            return None
        allowed = " or ".join(repr(v) for v in self.option_values)
        if isinstance(self.option_default, bool):
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{self.option} must be {allowed}; got {value!r}")
            return bool(value)
        if not isinstance(value, str) or value not in self.option_values:
            raise ValueError(f"{self.option} must be {allowed}; got {value!r}")
        return value

    def flops(self, N: int, T: int, D: int, H: int, train: bool = True) -> float:
        """Multiply-add flops of the products (``x @ Wx`` and ``h @ Wh`` at every step; a training step adds
        the backward products ``dG @ W^T`` and ``[x|h]^T @ dG``, twice the forward).  The element-wise gate
        arithmetic is not counted (the usual convention for RNN GFLOP/s)."""
        forward = 2.0 * N * T * (D + H) * self.gates * H
        return forward * (3 if train else 1)


LSTM = CellSpec(
    "lstm", "LSTM", ("i", "f", "g", "o"), ("b",), ("h", "c"),
    equations="i, f, o = sigmoid(a_i, a_f, a_o); g = tanh(a_g); c' = f * c + i * g; h' = o * tanh(c')",
)
GRU = CellSpec(
    "gru", "GRU", ("r", "z", "n"), ("bx", "bh"), ("h",), option="reset_after", option_values=(True, False),
    option_default=True,
    equations="r, z = sigmoid(...); n = tanh(xn + r * (h @ Wh_n + bh_n)) (reset_after) or "
              "tanh(xn + (r * h) @ Wh_n + bh_n); h' = (1 - z) * n + z * h",
)
RNN = CellSpec(
    "rnn", "RNN", ("a",), ("b",), ("h",), option="nonlinearity", option_values=("tanh", "relu"),
    option_default="tanh", equations="h' = act(x @ Wx + h @ Wh + b), act = tanh or relu",
)

CELLS = {spec.name: spec for spec in (LSTM, GRU, RNN)}


def cell_spec(name) -> CellSpec:
    """The spec of the cell called ``name`` (``"lstm"``, ``"gru"``, ``"rnn"``), or a ValueError."""
    if isinstance(name, CellSpec):
        return name
    if name not in CELLS:
        raise ValueError(f"cell must be one of {', '.join(CELLS)}; got {name!r}")
    return CELLS[name]
