"""Exact weight exchange with PyTorch's ``nn.LSTM``/``nn.GRU``/``nn.RNN`` and their cells.

PyTorch stores ``weight_ih (G*H, D)`` and ``weight_hh (G*H, H)`` multiplying from the left, in
the same gate orders as rnnfast (LSTM i, f, g, o; GRU r, z, n), and two biases ``bias_ih``,
``bias_hh``.  rnnfast's weights are the transposes.  LSTM and RNN add the two biases everywhere,
so rnnfast keeps their sum (converting back puts it in ``bias_ih`` and zeros in ``bias_hh``);
the GRU keeps both, because ``bias_hh``'s n-block sits inside ``r * (h W_hn + b_hn)``.  PyTorch's
GRU is reset-after: a reset-before rnnfast GRU has no exact PyTorch form and is refused.

``torch`` is imported lazily: ``pip install torch`` (or ``rnnfast[torch]``) to use this module.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..cells import CELLS, cell_spec
from ..layers.recurrent import LAYER_CLASSES, TimeRecurrent
from ..layers.stack import RecurrentStack

# PyTorch's module names (nn.LSTM, nn.LSTMCell, ...) -> rnnfast's cells
_CELLS = {spec.title + suffix: spec.name for spec in CELLS.values() for suffix in ("", "Cell")}


def _keeps_both_biases(cell: str) -> bool:
    """The GRU keeps PyTorch's two biases (its reset gate multiplies the recurrent one); LSTM and RNN add
    them everywhere, so rnnfast keeps their sum."""
    return len(cell_spec(cell).bias_names) == 2


def _option(cell: str, layer) -> dict:
    """The constructor keyword of PyTorch's module for the cell's option (RNN's nonlinearity)."""
    return {"nonlinearity": layer.nonlinearity} if cell_spec(cell).option == "nonlinearity" else {}


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("rnnfast.interop.torch needs PyTorch: pip install torch (or rnnfast[torch])") from exc
    return torch


def _array(a, dtype) -> np.ndarray:
    """A tensor or array as a NumPy copy of ``dtype``."""
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.array(a, dtype=dtype)


def params_from_torch(cell: str, w_ih, w_hh, b_ih=None, b_hh=None, dtype=np.float32) -> list:
    """One direction of one layer, PyTorch arrays (or tensors) -> rnnfast ``[Wx, Wh, *biases]``."""
    w_ih, w_hh = _array(w_ih, dtype), _array(w_hh, dtype)
    G = w_ih.shape[0]
    b_ih = np.zeros(G, dtype) if b_ih is None else _array(b_ih, dtype)
    b_hh = np.zeros(G, dtype) if b_hh is None else _array(b_hh, dtype)
    Wx, Wh = np.ascontiguousarray(w_ih.T), np.ascontiguousarray(w_hh.T)
    if _keeps_both_biases(cell):
        return [Wx, Wh, b_ih, b_hh]
    return [Wx, Wh, (b_ih + b_hh).astype(dtype)]


def params_to_torch(cell: str, params, bias: bool = True) -> dict:
    """rnnfast ``[Wx, Wh, *biases]`` -> ``{"weight_ih", "weight_hh", "bias_ih", "bias_hh"}`` (NumPy)."""
    Wx, Wh, *biases = params
    out = {"weight_ih": np.ascontiguousarray(Wx.T), "weight_hh": np.ascontiguousarray(Wh.T)}
    if _keeps_both_biases(cell):
        b_ih, b_hh = biases
    else:
        b_ih, b_hh = biases[0], np.zeros_like(biases[0])
    if bias:
        out["bias_ih"], out["bias_hh"] = b_ih.copy(), b_hh.copy()
    elif any(np.any(b != 0) for b in biases):
        raise ValueError("bias=False: the rnnfast layer has nonzero biases, which a bias-free PyTorch "
                         "module cannot hold; convert with bias=True")
    return out


def _module_cell(module) -> str:
    name = type(module).__name__
    if name not in _CELLS:
        raise TypeError(f"expected torch.nn.LSTM, GRU, RNN or their cells; got {name}")
    if getattr(module, "proj_size", 0):
        raise ValueError("LSTM with proj_size > 0 has no rnnfast equivalent")
    return _CELLS[name]


def from_torch(module, dtype=None):
    """A PyTorch recurrent module -> the rnnfast layer with the same function.

    ``nn.LSTM``/``nn.GRU``/``nn.RNN`` (any ``num_layers``, ``bidirectional``, ``bias``, ``dropout``)
    -> ``rnnfast.layers.RecurrentStack`` (batch-first); ``nn.LSTMCell``/``GRUCell``/``RNNCell`` ->
    ``TimeLSTM``/``TimeGRU``/``TimeRNN`` (use its ``step``).  ``dtype`` defaults to the module's.
    The module's mode comes along (``module.eval()`` gives a stack without dropout), and so does
    ``bias=False`` (zero biases that no gradient step moves).
    """
    cell = _module_cell(module)
    first = next(module.parameters())
    dtype = np.dtype(dtype or str(first.dtype).replace("torch.", ""))
    sd = module.state_dict()
    extra = _option(cell, module)
    if cell_spec(cell).option == "reset_after":
        extra["reset_after"] = True  # PyTorch's GRU
    if type(module).__name__.endswith("Cell"):
        params = params_from_torch(cell, sd["weight_ih"], sd["weight_hh"], sd.get("bias_ih"), sd.get("bias_hh"), dtype)
        return LAYER_CLASSES[cell](*params, bias=module.bias, **extra)
    stack = RecurrentStack(cell, module.input_size, module.hidden_size, module.num_layers,
                           bidirectional=module.bidirectional, dropout=module.dropout, dtype=dtype,
                           bias=module.bias, **extra)
    stack.train(module.training)
    return load_state_dict_into_stack(stack, sd)


def _check_convertible(layer):
    if getattr(layer, "reset_after", True) is False:
        raise ValueError("a reset-before GRU (reset_after=False) has no exact PyTorch form: PyTorch's GRU "
                         "applies the reset gate after the recurrent matmul. Refusing to approximate.")


def to_torch(layer, bias: Optional[bool] = None):
    """An rnnfast ``RecurrentStack`` -> ``nn.LSTM``/``GRU``/``RNN`` (``batch_first=True``); a
    ``TimeLSTM``/``TimeGRU``/``TimeRNN`` -> the matching ``nn.*Cell``.  Same dtype, exact weights;
    ``bias`` defaults to the layer's."""
    torch = _torch()
    if bias is None:
        bias = getattr(layer, "bias", True)
    if isinstance(layer, RecurrentStack):
        cls = getattr(torch.nn, cell_spec(layer.cell).title)
        first = layer.layers[0][0]
        kwargs = _option(layer.cell, first)
        dropout = layer.dropouts[0].p if layer.dropouts else 0.0
        sd = {name: torch.from_numpy(v) for name, v in state_dict_from_stack(layer, bias).items()}
        module = cls(first.input_size, layer.hidden_size, layer.num_layers, bias=bias, batch_first=True,
                     dropout=dropout, bidirectional=layer.bidirectional, **kwargs)
        dtype = first.params[0].dtype
    elif isinstance(layer, TimeRecurrent):
        _check_convertible(layer)
        cls = getattr(torch.nn, cell_spec(layer.cell).title + "Cell")
        kwargs = _option(layer.cell, layer)
        module = cls(layer.input_size, layer.hidden_size, bias=bias, **kwargs)
        sd = {name: torch.from_numpy(v) for name, v in params_to_torch(layer.cell, layer.params, bias).items()}
        dtype = layer.params[0].dtype
    else:
        raise TypeError(f"expected an rnnfast RecurrentStack or TimeLSTM/TimeGRU/TimeRNN; got {type(layer).__name__}")
    module = module.to({np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[np.dtype(dtype)])
    module.load_state_dict(sd)
    module.train(getattr(layer, "training", True))
    return module


def state_dict_from_stack(stack: RecurrentStack, bias: bool = True) -> dict:
    """rnnfast stack parameters -> a PyTorch ``state_dict`` (NumPy arrays, PyTorch's key names)."""
    out = {}
    for k, lay in enumerate(stack.layers):
        for d, direction in enumerate(lay):
            _check_convertible(direction)
            sfx = f"_l{k}" + ("_reverse" if d else "")
            out.update({name + sfx: v for name, v in params_to_torch(stack.cell, direction.params, bias).items()})
    return out


def load_state_dict_into_stack(stack: RecurrentStack, state_dict) -> RecurrentStack:
    """Copy a PyTorch ``state_dict`` (tensors or arrays) into an existing stack's parameters, in place."""
    for k, lay in enumerate(stack.layers):
        for d, direction in enumerate(lay):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            try:
                w_ih, w_hh = state_dict["weight_ih" + sfx], state_dict["weight_hh" + sfx]
            except KeyError as exc:
                raise ValueError(f"state_dict lacks {exc.args[0]!r} for layer {k}") from None
            new = params_from_torch(stack.cell, w_ih, w_hh, state_dict.get("bias_ih" + sfx),
                                    state_dict.get("bias_hh" + sfx), direction.params[0].dtype)
            for p, v in zip(direction.params, new):
                if p.shape != v.shape:
                    raise ValueError(f"{'weight_ih' + sfx} gives shape {v.shape} for a parameter of shape {p.shape}")
                p[...] = v
    return stack
