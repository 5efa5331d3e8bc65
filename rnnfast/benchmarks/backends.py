"""One workload, several implementations: each backend turns a ``Case`` and its
inputs into a zero-argument callable that runs one forward (+ backward) pass.

``prepare`` raises ``Unavailable`` with a reason (library missing, cell or dtype
not supported); callers report the reason instead of a number.
"""
from __future__ import annotations

import importlib
import itertools
from typing import Callable, Dict

import numpy as np

from .cases import ZONEOUT, Case, make_lengths, variant_weights

# "rnnfast.torch": the rnnfast.torch modules, the whole PyTorch path (autograd, module): what a PyTorch user gets
NAMES = ("rnnfast", "rnnfast.torch", "reference", "torch", "thinc")


class Unavailable(Exception):
    """This backend cannot run this case; the message says why."""


def version(name: str):
    """The backend's library version, or None if it is not installed."""
    module = {"rnnfast": "rnnfast", "rnnfast.torch": "rnnfast", "reference": "rnnfast", "torch": "torch",
              "thinc": "thinc"}[name]
    try:
        return importlib.import_module(module).__version__
    except ImportError:
        return None


def _kernel_step(impl, case: Case, inputs, with_threads: bool) -> Callable[[], None]:
    x, Wx, Wh, biases, dhs = inputs
    fwd = getattr(impl, f"{case.cell}_forward")
    bwd = getattr(impl, f"{case.cell}_backward")
    kw = {"num_threads": case.threads} if with_threads else {}
    kw.update(variant_weights(case))
    lengths = make_lengths(case)
    if lengths is not None:
        kw["lengths"] = lengths
    if case.zoneout:  # the evaluation form in inference, fresh training masks at every step of training
        kw["zoneout"] = ZONEOUT
    if case.pass_ == "forward":  # inference, as PyTorch's under no_grad
        return lambda: fwd(x, Wx, Wh, *biases, need_grad=False, **kw)
    seeds = itertools.count()

    def train():
        out = fwd(x, Wx, Wh, *biases, **kw, **({"zoneout_seed": next(seeds)} if case.zoneout else {}))
        bwd(dhs, out[-1])
    return train


def _rnnfast(case, inputs):
    import rnnfast

    return _kernel_step(rnnfast, case, inputs, True)


def _reference(case, inputs):
    import rnnfast.reference as reference

    return _kernel_step(reference, case, inputs, False)


def torch_module(case: Case, Wx, Wh, biases, namespace=None):
    """PyTorch's ``nn.LSTM/GRU/RNN`` (batch_first) holding the same weights as the rnnfast call (or the same
    class from ``namespace``, such as ``rnnfast.torch``)."""
    import torch

    from ..cells import CELLS

    variant = variant_weights(case)
    if (case.layer_norm or case.peephole or case.zoneout) and namespace is not None:  # rnnfast.torch's own
        variant_kw = ({"layer_norm": True} if case.layer_norm else {"zoneout": ZONEOUT} if case.zoneout
                      else {"peephole": True, "proj_size": case.proj})
        module = getattr(namespace, CELLS[case.cell].title)(case.D, case.H, batch_first=True, **variant_kw)
        module = module.to(getattr(torch, case.dtype))
    elif case.peephole or case.layer_norm or case.zoneout:
        if namespace is not None:
            raise Unavailable(f"{namespace.__name__} has no {case.variant} {case.cell.upper()}")
        make = (torch_zoneout_lstm if case.zoneout else torch_peephole_lstm if not case.layer_norm else
                torch_layer_norm_gru if case.cell == "gru" else torch_layer_norm_lstm)
        module = make(case.D, case.H, case.proj).to(getattr(torch, case.dtype))
    else:
        cls = getattr(namespace or torch.nn, CELLS[case.cell].title)
        module = cls(case.D, case.H, batch_first=True, **({"proj_size": case.proj} if case.proj else {}))
        module = module.to(getattr(torch, case.dtype))
    # PyTorch keeps (G*H, D) blocks in the same gate orders (i, f, g, o; r, z, n); its two
    # biases add up, except the GRU's b_hn, which is rnnfast's second bias too.
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(Wx.T)))
        module.weight_hh_l0.copy_(torch.from_numpy(np.ascontiguousarray(Wh.T)))
        module.bias_ih_l0.copy_(torch.from_numpy(biases[0]))
        module.bias_hh_l0.copy_(torch.from_numpy(biases[1] if len(biases) > 1 else np.zeros_like(biases[0])))
        if "projection" in variant:
            module.weight_hr_l0.copy_(torch.from_numpy(np.ascontiguousarray(variant["projection"].T)))
        if "peephole" in variant:
            getattr(module, "weight_peephole_l0" if namespace is not None else "peephole").copy_(
                torch.from_numpy(variant["peephole"]))
        if "layer_norm" in variant:
            getattr(module, "layer_norm_l0" if namespace is not None else "layer_norm").copy_(
                torch.from_numpy(variant["layer_norm"]))
    return module


def _nn_parameters(module, input_size: int, hidden_size: int, gates: int, proj_size: int = 0, extra=()) -> None:
    """``module``'s parameters as ``nn.LSTM``/``nn.GRU`` name them (one layer: ``weight_ih_l0``,
    ``weight_hh_l0``, ``weight_hr_l0`` with ``proj_size``, ``bias_ih_l0``, ``bias_hh_l0``), then ``extra``
    ``(name, size)`` vectors, all from PyTorch's U(-1/sqrt(H), 1/sqrt(H))."""
    import torch
    from torch import nn

    G, H = gates * hidden_size, hidden_size
    shapes = [("weight_ih_l0", (G, input_size)), ("weight_hh_l0", (G, proj_size or H))]
    shapes += [("weight_hr_l0", (proj_size, H))] if proj_size else []
    shapes += [("bias_ih_l0", (G,)), ("bias_hh_l0", (G,))] + [(name, (size,)) for name, size in extra]
    for name, shape in shapes:
        p = nn.Parameter(torch.empty(shape))
        nn.init.uniform_(p, -H ** -0.5, H ** -0.5)
        setattr(module, name, p)


def torch_layer_norm_lstm(input_size: int, hidden_size: int, proj_size: int = 0):
    """A layer-normalized LSTM written from ``torch.nn`` operations, as PyTorch users write one (PyTorch has
    none): ``F.layer_norm`` on the input product of all steps at once, then a loop over steps normalizing
    the recurrent product and the cell state (``rnnfast/reference/layer_norm.py``'s maths); parameters
    named as ``nn.LSTM``'s, plus ``layer_norm`` ``(10H,)``."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    if proj_size:
        raise Unavailable("the nn-ops layer-normalized LSTM has no projection")
    H = hidden_size

    class _LayerNormLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            _nn_parameters(self, input_size, H, 4)
            self.layer_norm = nn.Parameter(torch.cat([torch.ones(9 * H), torch.zeros(H)]))

        def forward(self, x):  # x (N, T, D), batch-first
            N, T, _ = x.shape
            g_x, g_h, g_c, b_c = self.layer_norm.split([4 * H, 4 * H, H, H])
            b = self.bias_ih_l0 + self.bias_hh_l0
            xw = F.layer_norm(x @ self.weight_ih_l0.t(), (4 * H,), g_x, None, 1e-5) + b
            h, c = x.new_zeros(N, H), x.new_zeros(N, H)
            out = []
            for t in range(T):
                a = xw[:, t] + F.layer_norm(h @ self.weight_hh_l0.t(), (4 * H,), g_h, None, 1e-5)
                a_i, a_f, a_g, a_o = a.chunk(4, 1)
                c = torch.sigmoid(a_f) * c + torch.sigmoid(a_i) * torch.tanh(a_g)
                h = torch.sigmoid(a_o) * torch.tanh(F.layer_norm(c, (H,), g_c, b_c, 1e-5))
                out.append(h)
            return torch.stack(out, 1), (h.unsqueeze(0), c.unsqueeze(0))

    return _LayerNormLSTM()


def torch_layer_norm_gru(input_size: int, hidden_size: int, proj_size: int = 0):
    """A layer-normalized GRU (reset-after) written from ``torch.nn`` operations, as the LSTM's above:
    ``F.layer_norm`` on the input product of all steps at once, then a loop over steps normalizing the
    recurrent product; parameters named as ``nn.GRU``'s, plus ``layer_norm`` ``(6H,)``."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    H = hidden_size

    class _LayerNormGRU(nn.Module):
        def __init__(self):
            super().__init__()
            _nn_parameters(self, input_size, H, 3)
            self.layer_norm = nn.Parameter(torch.ones(6 * H))

        def forward(self, x):  # x (N, T, D), batch-first
            N, T, _ = x.shape
            g_x, g_h = self.layer_norm.split([3 * H, 3 * H])
            xw = F.layer_norm(x @ self.weight_ih_l0.t(), (3 * H,), g_x, None, 1e-5) + self.bias_ih_l0
            h = x.new_zeros(N, H)
            out = []
            for t in range(T):
                hw = F.layer_norm(h @ self.weight_hh_l0.t(), (3 * H,), g_h, None, 1e-5) + self.bias_hh_l0
                x_r, x_z, x_n = xw[:, t].chunk(3, 1)
                h_r, h_z, h_n = hw.chunk(3, 1)
                r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
                h = (1 - z) * torch.tanh(x_n + r * h_n) + z * h
                out.append(h)
            return torch.stack(out, 1), h.unsqueeze(0)

    return _LayerNormGRU()


def torch_peephole_lstm(input_size: int, hidden_size: int, proj_size: int = 0):
    """A peephole LSTM written from ``torch.nn`` operations, as PyTorch users write one (PyTorch has none):
    the input projection of all steps in one product, then a loop over steps; parameters named as
    ``nn.LSTM``'s (``weight_hr_l0`` with ``proj_size``), plus ``peephole`` ``(3H,)``."""
    import torch
    from torch import nn

    class _PeepholeLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            _nn_parameters(self, input_size, hidden_size, 4, proj_size, [("peephole", 3 * hidden_size)])

        def forward(self, x):  # x (N, T, D), batch-first
            N, T, _ = x.shape
            H = hidden_size
            p_i, p_f, p_o = self.peephole.chunk(3)
            xw = torch.addmm(self.bias_ih_l0 + self.bias_hh_l0, x.reshape(N * T, -1), self.weight_ih_l0.t())
            xw = xw.view(N, T, 4 * H)
            h, c = x.new_zeros(N, proj_size or H), x.new_zeros(N, H)
            out = []
            for t in range(T):
                a = xw[:, t] + h @ self.weight_hh_l0.t()
                a_i, a_f, a_g, a_o = a.chunk(4, 1)
                i = torch.sigmoid(a_i + p_i * c)
                f = torch.sigmoid(a_f + p_f * c)
                c = f * c + i * torch.tanh(a_g)
                h = torch.sigmoid(a_o + p_o * c) * torch.tanh(c)
                if proj_size:
                    h = h @ self.weight_hr_l0.t()
                out.append(h)
            return torch.stack(out, 1), (h.unsqueeze(0), c.unsqueeze(0))

    return _PeepholeLSTM()


def torch_zoneout_lstm(input_size: int, hidden_size: int, proj_size: int = 0, zoneout=ZONEOUT):
    """A zoneout LSTM written from ``torch.nn`` operations, as PyTorch users write one (PyTorch has none,
    pytorch#561): the input product of all steps at once, then a loop over steps
    (``rnnfast/reference/zoneout.py``'s maths); parameters named as ``nn.LSTM``'s.  In training each unit of c
    and h keeps its previous value where a Bernoulli mask of rate ``z`` says so, drawn per step with
    ``torch.rand``, or given by ``module.masks(t, N)`` -> ``(k_c, k_h)`` where set (the tests' own masks); in
    evaluation it keeps the share ``z``."""
    import torch
    from torch import nn

    if proj_size:
        raise Unavailable("the nn-ops zoneout LSTM has no projection")
    H = hidden_size
    z_c, z_h = zoneout

    class _ZoneoutLSTM(nn.Module):
        masks = None

        def __init__(self):
            super().__init__()
            _nn_parameters(self, input_size, H, 4)

        def forward(self, x):  # x (N, T, D), batch-first
            N, T, _ = x.shape
            xw = torch.addmm(self.bias_ih_l0 + self.bias_hh_l0, x.reshape(N * T, -1), self.weight_ih_l0.t())
            xw = xw.view(N, T, 4 * H)
            h, c = x.new_zeros(N, H), x.new_zeros(N, H)
            out = []
            for t in range(T):
                a_i, a_f, a_g, a_o = (xw[:, t] + h @ self.weight_hh_l0.t()).chunk(4, 1)
                c_new = torch.sigmoid(a_f) * c + torch.sigmoid(a_i) * torch.tanh(a_g)
                h_new = torch.sigmoid(a_o) * torch.tanh(c_new)
                if not self.training:
                    k_c, k_h = z_c, z_h
                elif self.masks is not None:
                    k_c, k_h = self.masks(t, N)
                else:
                    k_c, k_h = (torch.rand(N, H, dtype=x.dtype) < z_c).to(x.dtype), \
                        (torch.rand(N, H, dtype=x.dtype) < z_h).to(x.dtype)
                c = k_c * c + (1 - k_c) * c_new
                h = k_h * h + (1 - k_h) * h_new
                out.append(h)
            return torch.stack(out, 1), (h.unsqueeze(0), c.unsqueeze(0))

    return _ZoneoutLSTM()


def _torch(case, inputs, namespace=None):
    try:
        import torch
    except ImportError:
        raise Unavailable("PyTorch is not installed (pip install rnnfast[torch])") from None
    x, Wx, Wh, biases, dhs = inputs
    if (case.peephole or case.layer_norm or case.zoneout) and case.ragged:
        raise Unavailable(f"the nn-ops {case.variant} {case.cell.upper()} takes no PackedSequence")
    module = torch_module(case, Wx, Wh, biases, namespace)
    module.train(case.pass_ == "train")  # inference is a model in eval mode (zoneout's expectation)
    if namespace is not None:
        module.num_threads = case.threads
    xt = torch.from_numpy(x)
    g = torch.from_numpy(dhs)
    lengths = make_lengths(case)

    def call():
        if lengths is None:
            return module(xt)[0]
        # a PyTorch user packs the padded batch at every call (and unpacks the output)
        packed = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.from_numpy(lengths), batch_first=True,
                                                         enforce_sorted=False)
        return torch.nn.utils.rnn.pad_packed_sequence(module(packed)[0], batch_first=True, total_length=case.T)[0]

    if case.pass_ == "forward":
        def forward():
            with torch.no_grad():
                call()
        return forward
    xt.requires_grad_(True)

    def train():
        module.zero_grad(set_to_none=True)
        xt.grad = None
        call().backward(g)
    return train


def _rnnfast_torch(case, inputs):
    try:
        import rnnfast.torch as rt
    except ImportError:
        raise Unavailable("PyTorch is not installed (pip install rnnfast[torch])") from None
    return _torch(case, inputs, rt)


def _thinc(case, inputs):
    try:
        from thinc.api import LSTM, NumpyOps, Padded
    except ImportError:
        raise Unavailable("thinc is not installed (pip install thinc)") from None
    if case.cell != "lstm":
        raise Unavailable(f"thinc has no {case.cell.upper()} layer")
    if case.variant:
        raise Unavailable(f"thinc has no {case.variant} LSTM")
    if case.ragged:
        raise Unavailable("not measured on thinc: ragged batches")
    if case.dtype != "float32":
        raise Unavailable("thinc's LSTM runs in float32 only")
    x, _, _, _, dhs = inputs
    N, T = case.N, case.T
    model = LSTM(case.H, case.D)
    model.ops = NumpyOps()  # its CPU ops (Cython kernels), whatever the current default

    def padded(a):  # thinc takes time-major (T, N, .) batches
        return Padded(np.ascontiguousarray(a.transpose(1, 0, 2)), size_at_t=np.full(T, N, dtype="int32"),
                      lengths=np.full(N, T, dtype="int32"), indices=np.arange(N, dtype="int32"))
    X, dY = padded(x), padded(dhs)
    model.initialize(X=X)
    if case.pass_ == "forward":
        return lambda: model.predict(X)

    def train():
        _, backprop = model.begin_update(X)
        backprop(dY)
    return train


_PREPARE: Dict[str, Callable] = {"rnnfast": _rnnfast, "rnnfast.torch": _rnnfast_torch, "reference": _reference,
                                  "torch": _torch, "thinc": _thinc}


def prepare(name: str, case: Case, inputs) -> Callable[[], None]:
    if name not in _PREPARE:
        raise ValueError(f"backend must be one of {', '.join(NAMES)}; got {name!r}")
    return _PREPARE[name](case, inputs)
