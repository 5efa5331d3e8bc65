"""rnnfast's kernels as PyTorch custom operators (``torch.library.custom_op``): one forward and one backward op
for every cell and direction of a layer, with fake (meta) implementations, so that autograd,
``torch.compile(fullgraph=True)`` and ``torch.library.opcheck`` see them as ordinary operators.

Tensors cross to NumPy without a copy (``Tensor.numpy()``, ``torch.from_numpy``) where the layout allows; the
weights are handed over as ``w_ih.T`` views (the kernels multiply from the right) and the kernels copy what
is not contiguous.  The kernels release the GIL.  What backward needs leaves the forward op as tensors
(the time-major input, the state histories, the gate activations): the op holds no state between calls.

Arguments shared by both ops: ``cell`` is ``"lstm"``, ``"gru"`` or ``"rnn"``; ``option`` the cell's option as
an int (GRU: reset_after 1/0; RNN: relu 1, tanh 0); ``lengths`` the valid steps per sequence, or an empty
tensor for none; ``h0``, ``c0`` the initial states, empty tensors for zeros (``c0`` is
always empty but for the LSTM); ``num_threads`` the kernels' OpenMP threads, 0 for ``torch.get_num_threads()``;
``w_hr`` (LSTM) a projection's ``weight_hr (P, H)``, ``ln`` (LSTM, reset-after GRU) the layer normalizations'
parameters ``(10H,)`` / ``(6H,)`` (``rnnfast.lstm_forward``, ``gru_forward``), ``peep`` (LSTM) the peepholes
``(3H,)``, or None; ``zoneout`` (LSTM) zoneout's rates ``[z_c, z_h]`` or None, ``zoneout_seed`` an int64
tensor ``(1,)`` holding the training masks' seed (``rnnfast.lstm_forward``'s ``zoneout_seed``), or an empty
tensor or None for the evaluation form.  A tensor, not an int, so that a traced graph draws a new seed at
every call.
"""
from __future__ import annotations

import weakref
from typing import List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from .._core import driver
from .._core.buffers import Staircase, contiguous
from .._core.plan import StepPlan
from .._core.validation import padding_mask
from ..cells import CELLS
from .._core.counter_rng import splitmix64

_EMPTY = (0,)
# What a layer-normalized pass keeps for backward besides the plain cell's (the driver's cache.layer_norm)
_LN_SAVED = ("x_hat", "x_rstd", "h_hat", "h_rstd", "c_hat", "c_rstd")
# The ops' results, as their schemas need them spelt: hs, hT, cT, 7 + 6 saved; 10 gradients
_FORWARD_OUT = Tuple[(Tensor,) * (3 + 7 + len(_LN_SAVED))]  # the peepholes need no more
_BACKWARD_OUT = Tuple[(Tensor,) * 10]


_TRANSPOSED: dict = {}  # id(weight tensor) -> (weakref to it, its version key, its kernels' copy)


def _kernel_weights(w: Tensor, num_threads: int) -> np.ndarray:
    """``w.T`` as the kernels take it (C-contiguous), made once per version of the weight: a training step
    reads each weight in forward and backward, an inference loop at every call.  A fresh copy at every call
    cost a sixth of a small forward pass (new pages, a cold cache).  Entries go when their tensor does."""
    key = (w._version, w.data_ptr(), tuple(w.shape), w.dtype)
    hit = _TRANSPOSED.get(id(w))
    if hit is not None and hit[0]() is w and hit[1] == key:
        return hit[2]
    out = contiguous(w.detach().numpy().T, num_threads)
    try:
        ident = id(w)
        _TRANSPOSED[ident] = (weakref.ref(w, lambda _, ident=ident: _TRANSPOSED.pop(ident, None)), key, out)
    except TypeError:  # a tensor that cannot be weakly referenced: no reuse
        pass
    return out


def _threads(num_threads: int) -> int:
    return num_threads if num_threads > 0 else torch.get_num_threads()


def _option(cell: str, option: int):
    spec = CELLS[cell]
    if spec.option == "reset_after":
        return bool(option)
    if spec.option == "nonlinearity":
        return "relu" if option else "tanh"
    return None


def _np(t: Tensor):
    return None if t.numel() == 0 and t.dim() == 1 else t.detach().numpy()


def _zoneout(zoneout: Optional[List[float]], zoneout_seed: Optional[Tensor]):
    """``(rates, seed)`` for the driver: None for no zoneout, the seed None for the evaluation form."""
    if zoneout is None:
        return None, None
    seed = None if zoneout_seed is None or zoneout_seed.numel() == 0 else int(zoneout_seed.reshape(-1)[0])
    return tuple(zoneout), seed


def _zoneout_key(seed: Optional[int]) -> Optional[int]:
    """The masks' key the driver derives from a seed (``driver.sequence_forward``)."""
    return None if seed is None else int(splitmix64(np.array([seed], np.uint64))[0])


def _lengths(lengths: Tensor):
    return None if lengths.numel() == 0 else lengths.detach().numpy().astype(np.intp)


def _biases(cell: str, b_ih: Tensor, b_hh: Tensor, G: int, dtype):
    """The kernels' biases from PyTorch's two: the GRU keeps both (its reset gate multiplies the recurrent
    one); LSTM and RNN add them everywhere, so the kernels take their sum."""
    b_ih = np.zeros(G, dtype) if b_ih.numel() == 0 else b_ih.detach().numpy()
    b_hh = np.zeros(G, dtype) if b_hh.numel() == 0 else b_hh.detach().numpy()
    return [b_ih, b_hh] if len(CELLS[cell].bias_names) == 2 else [b_ih + b_hh]


def _run_forward(cell: str, x: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor, h0: Tensor,
                 c0: Tensor, lengths: Tensor, option: int, need_grad: bool, num_threads: int,
                 w_hr: Optional[Tensor] = None, ln: Optional[Tensor] = None, peep: Optional[Tensor] = None,
                 zoneout: Optional[List[float]] = None, zoneout_seed: Optional[Tensor] = None):
    """``driver.sequence_forward`` on the tensors' arrays: ``(hs, hT, cT, cache)`` as tensors (``cT`` empty but
    for the LSTM) and the driver's cache (None without ``need_grad``)."""
    spec = CELLS[cell]
    G, nt = w_ih.shape[0], _threads(num_threads)
    states = [_np(h0)] + ([_np(c0)] if len(spec.state_names) > 1 else [])
    rates, seed = _zoneout(zoneout, zoneout_seed)
    hs, finals, cache = driver.sequence_forward(
        spec, x.detach().numpy(), _kernel_weights(w_ih, nt), _kernel_weights(w_hh, nt),
        _biases(cell, b_ih, b_hh, G, np.float32 if x.dtype == torch.float32 else np.float64), states,
        _lengths(lengths), _option(cell, option), nt, need_grad=need_grad,
        projection=None if w_hr is None else _kernel_weights(w_hr, nt),
        layer_norm=None if ln is None else ln.detach().numpy(),
        peephole=None if peep is None else peep.detach().numpy(), zoneout=rates, zoneout_seed=seed)
    cT = torch.from_numpy(finals[1]) if len(finals) > 1 else torch.empty(_EMPTY, dtype=x.dtype)
    return torch.from_numpy(hs), torch.from_numpy(finals[0]), cT, cache


def _forward_impl(cell: str, x: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor, h0: Tensor,
                  c0: Tensor, lengths: Tensor, option: int, need_grad: bool, num_threads: int,
                  w_hr: Optional[Tensor] = None, ln: Optional[Tensor] = None,
                  peep: Optional[Tensor] = None, zoneout: Optional[List[float]] = None,
                  zoneout_seed: Optional[Tensor] = None) -> _FORWARD_OUT:
    """One direction of one layer, batch-first ``x (N, T, D)``: ``[hs (N, T, H), hT, cT, *saved, *ln_saved]``;
    ``cT`` is empty but for the LSTM; ``saved`` (7) and ``ln_saved`` (6, ``_LN_SAVED``; empty without ``ln``),
    all empty without ``need_grad``, are what ``recurrent_backward`` reads.  ``w_hr`` (LSTM): PyTorch's
    ``weight_hr (P, H)`` of a projection LSTM; ``hs``, ``hT`` are then P wide."""
    hs, hT, cT, cache = _run_forward(cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, option, need_grad,
                                     num_threads, w_hr, ln, peep, zoneout, zoneout_seed)
    empty = torch.empty(_EMPTY, dtype=x.dtype)
    saved = ([cache.x_tm, cache.hst, cache.cst, cache.act, cache.hg, cache.rh, cache.mst] if cache is not None
             else [None] * 7)
    normalized = cache.layer_norm if cache is not None and cache.layer_norm is not None else {}
    saved += [normalized.get(name) for name in _LN_SAVED]
    return (hs, hT, cT, *[_tensor_holding(a, cache) if a is not None else empty.clone() for a in saved])


def _tensor_holding(a: np.ndarray, cache) -> Tensor:
    """A tensor on a workspace of ``cache`` (no copy).  The workspaces go back to the pool when the cache dies:
    each tensor's array (a view, which the tensor's storage keeps alive) holds the cache until it dies."""
    view = a.view()
    weakref.finalize(view, _release, cache)
    return torch.from_numpy(view)


def _release(cache) -> None:
    """Nothing to do: dropping this reference to the cache is the point."""


recurrent_forward = torch.library.custom_op("rnnfast::recurrent_forward", _forward_impl, mutates_args=())


@recurrent_forward.register_fake
def _(cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, option, need_grad, num_threads, w_hr=None, ln=None,
      peep=None, zoneout=None, zoneout_seed=None):
    N, T, D = x.shape
    G = w_ih.shape[0]
    spec = CELLS[cell]
    H = G // spec.gates
    P = H if w_hr is None else w_hr.shape[0]  # the width of h
    new = x.new_empty
    if not need_grad:
        saved = [new(_EMPTY) for _ in range(7 + len(_LN_SAVED))]
    else:
        if lengths.numel():  # the staircase's rows depend on the lengths' values
            ctx = torch.library.get_ctx()
            rows, history = ctx.new_dynamic_size(), ctx.new_dynamic_size()
        else:
            rows, history = N * T, (T + 1) * N
        gru, reset_before, lstm = cell == "gru", cell == "gru" and not option, cell == "lstm"
        saved = [new((rows, D)), new((history, P)), new((history, H)) if lstm else new(_EMPTY),
                 new((rows, G)), new((rows, G)) if gru and ln is None else new(_EMPTY),
                 new((rows, H)) if reset_before else new(_EMPTY), new((rows, H)) if w_hr is not None else new(_EMPTY)]
        if ln is None:
            saved += [new(_EMPTY) for _ in _LN_SAVED]
        else:  # x_hat, x_rstd, h_hat, h_rstd, and the LSTM's c_hat, c_rstd
            saved += [new((rows, G)), new((rows,)), new((rows, G)), new((rows,)),
                      new((rows, H)) if lstm else new(_EMPTY), new((rows,)) if lstm else new(_EMPTY)]
    return (new((N, T, P)), new((N, P)), new((N, H)) if len(spec.state_names) > 1 else new(_EMPTY), *saved)


def _backward_impl(cell: str, dhs: Tensor, dhT: Tensor, dcT: Tensor, x_tm: Tensor, w_ih: Tensor, w_hh: Tensor,
                   hst: Tensor, cst: Tensor, act: Tensor, hg: Tensor, rh: Tensor, lengths: Tensor, option: int,
                   num_threads: int, ln_saved: List[Tensor], w_hr: Optional[Tensor] = None,
                   mst: Optional[Tensor] = None, ln: Optional[Tensor] = None,
                   b_hh: Optional[Tensor] = None, peep: Optional[Tensor] = None,
                   zoneout: Optional[List[float]] = None, zoneout_seed: Optional[Tensor] = None) -> _BACKWARD_OUT:
    """The gradients of ``recurrent_forward``: ``[dx (N, T, D), dw_ih, dw_hh, db (the kernels' first bias),
    db2 (the GRU's second, else empty), dh0, dc0 (empty but for the LSTM), dw_hr (empty without w_hr), dln
    (empty without ln), dpeep (empty without peep)]``.  A layer-normalized pass also takes ``b_hh`` (the GRU's recurrent bias, which its
    step reads; empty for none) and reads ``ln_saved``, the forward's six ``_LN_SAVED`` (empty tensors else).
    Zoneout's masks are drawn again from ``zoneout_seed``, as the driver's backward pass does."""
    spec = CELLS[cell]
    N, T, _ = dhs.shape
    H = w_ih.shape[0] // spec.gates
    lengths_np = _lengths(lengths)
    steps = Staircase.make(lengths_np, N, T)
    nt = _threads(num_threads)
    Wx, Wh = _kernel_weights(w_ih, nt), _kernel_weights(w_hh, nt)
    plan = StepPlan.choose(spec.gates, N, T, H, np.float32 if dhs.dtype == torch.float32 else np.float64, nt,
                           D=Wx.shape[0], ragged=steps.order is not None, whole_rows=w_hr is not None or ln is not None)
    cache = driver.SequenceCache(spec, _option(cell, option), x_tm.detach().numpy(), Wx, Wh,
                                 hst.detach().numpy(), _np(cst), act.detach().numpy(),
                                 _np(hg), _np(rh), steps, padding_mask(N, T, lengths_np), plan,
                                 None if peep is None else peep.detach().numpy(),
                                 None if w_hr is None else _kernel_weights(w_hr, nt),
                                 None if w_hr is None else mst.detach().numpy())
    rates, seed = _zoneout(zoneout, zoneout_seed)
    cache.zoneout, cache.zoneout_key = rates, _zoneout_key(seed)
    if ln is not None:
        G = w_ih.shape[0]
        bias_h = None
        if cell == "gru":
            bias_h = np.zeros(G, Wx.dtype) if b_hh is None or b_hh.numel() == 0 else b_hh.detach().numpy()
        cache.layer_norm = {"ln": ln.detach().numpy(), "bias_h": bias_h,
                            **{name: _np(t) for name, t in zip(_LN_SAVED, ln_saved)}}
    dfinals = [dhT.detach().numpy()] + ([dcT.detach().numpy()] if len(spec.state_names) > 1 else [])
    return _gradient_tensors(spec, driver.sequence_backward(spec, dhs.detach().numpy(), cache, dfinals,
                                                            "rnnfast.torch.ops.recurrent_forward"), nt,
                             w_hr is not None, ln is not None, peep is not None)


def _gradient_tensors(spec, grads, nt: int, projection: bool = False, layer_norm: bool = False,
                      peephole: bool = False) -> _BACKWARD_OUT:
    """``driver.sequence_backward``'s result as ``recurrent_backward`` returns it: ``(dx, dw_ih, dw_hh, db,
    db2 (the GRU's second bias, else empty), dh0, dc0 (empty but for the LSTM), dw_hr (empty without a
    projection), dln (empty without layer norm), dpeep (empty without peepholes))``, the weights' in PyTorch's
    ``(out, in)`` layout.  The driver returns the variants' gradients last: ``[dpeephole,] [dprojection]``, or
    ``dlayer_norm``."""
    dx, dWx, dWh, *rest = grads
    nb, ns = len(spec.bias_names), len(spec.state_names)
    dbiases, dstates = rest[:nb], rest[nb:nb + ns]
    dx = torch.from_numpy(dx)
    empty = torch.empty(_EMPTY, dtype=dx.dtype)
    return (dx, torch.from_numpy(contiguous(dWx.T, nt)),
            torch.from_numpy(contiguous(dWh.T, nt)), torch.from_numpy(dbiases[0]),
            torch.from_numpy(dbiases[1]) if nb > 1 else empty, torch.from_numpy(dstates[0]),
            torch.from_numpy(dstates[1]) if len(dstates) > 1 else empty.clone(),
            torch.from_numpy(contiguous(rest[-1].T, nt)) if projection else empty.clone(),
            torch.from_numpy(rest[-1]) if layer_norm else empty.clone(),
            torch.from_numpy(rest[-2 if projection else -1]) if peephole else empty.clone())


recurrent_backward = torch.library.custom_op("rnnfast::recurrent_backward", _backward_impl, mutates_args=())


@recurrent_backward.register_fake
def _(cell, dhs, dhT, dcT, x_tm, w_ih, w_hh, hst, cst, act, hg, rh, lengths, option, num_threads, ln_saved,
      w_hr=None, mst=None, ln=None, b_hh=None, peep=None, zoneout=None, zoneout_seed=None):
    N, T, P = dhs.shape
    G, D = w_ih.shape
    H = G // CELLS[cell].gates
    new = dhs.new_empty
    two = len(CELLS[cell].bias_names) > 1
    return (new((N, T, D)), new((G, D)), new((G, P)), new((G,)), new((G,)) if two else new(_EMPTY), new((N, P)),
            new((N, H)) if cell == "lstm" else new(_EMPTY), new(tuple(w_hr.shape)) if w_hr is not None else new(_EMPTY),
            new(tuple(ln.shape)) if ln is not None else new(_EMPTY),
            new(tuple(peep.shape)) if peep is not None else new(_EMPTY))


def _setup_context(ctx, inputs, output):
    cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, option, need_grad, num_threads, *variants = inputs
    w_hr, ln, peep, zoneout, zoneout_seed = (list(variants) + [None] * 5)[:5]
    x_tm, hst, cst, act, hg, rh, mst = output[3:10]
    ctx.save_for_backward(w_ih, w_hh, x_tm, hst, cst, act, hg, rh, lengths, w_hr, mst, ln, b_hh, peep,
                          zoneout_seed, *output[10:])
    ctx.cell, ctx.option, ctx.num_threads, ctx.need_grad = cell, option, num_threads, need_grad
    ctx.zoneout = zoneout
    ctx.has_bias = (b_ih.numel() > 0, b_hh.numel() > 0)
    P = w_hh.shape[1]  # the width of h
    ctx.shapes = ((x.shape[0], x.shape[1], P), (x.shape[0], P), (x.shape[0], w_ih.shape[0] // CELLS[cell].gates))
    ctx.given_states = (h0.numel() > 0, c0.numel() > 0)
    # What backward reads is no result to differentiate, and autograd would otherwise hand backward a
    # zero-filled gradient for every output it saw none for (megabytes at mainstream sizes).
    ctx.mark_non_differentiable(*output[3:])
    ctx.set_materialize_grads(False)


def _backward(ctx, d_hs, d_hT, d_cT, *d_saved):
    w_ih, w_hh, x_tm, hst, cst, act, hg, rh, lengths, w_hr, mst, ln, b_hh, peep, zoneout_seed, *ln_saved = \
        ctx.saved_tensors
    hs_shape, h_shape, c_shape = ctx.shapes
    if not ctx.need_grad:
        raise RuntimeError("rnnfast: backward through a forward that ran with need_grad=False")
    zeros = w_hh.new_zeros
    d_hs = zeros(hs_shape) if d_hs is None else d_hs.contiguous()
    d_hT = zeros(h_shape) if d_hT is None else d_hT.contiguous()
    d_cT = (zeros(c_shape) if d_cT is None else d_cT.contiguous()) if ctx.cell == "lstm" else w_hh.new_empty(_EMPTY)
    grads = recurrent_backward(ctx.cell, d_hs, d_hT, d_cT, x_tm, w_ih, w_hh, hst, cst, act, hg, rh, lengths,
                               ctx.option, ctx.num_threads, ln_saved, w_hr, mst if w_hr is not None else None, ln,
                               b_hh if ln is not None else None, peep, ctx.zoneout, zoneout_seed)
    return _input_gradients(ctx.cell, ctx.has_bias, ctx.given_states, grads)


def _input_gradients(cell: str, has_bias, given_states, grads, clone=Tensor.clone):
    """``recurrent_backward``'s result as the gradients of ``recurrent_forward``'s inputs: None for the
    biases and states that were empty tensors (no bias; zeros).  ``clone`` copies a gradient: a torch
    operator where a graph is traced, NumPy's copy in eager calls (``_numpy_copy``)."""
    dx, dw_ih, dw_hh, db, db2, dh0, dc0, dw_hr, dln, dpeep = grads
    two = len(CELLS[cell].bias_names) > 1
    # LSTM and RNN: the kernels' one bias is b_ih + b_hh, so each gets its gradient
    db_ih = db if has_bias[0] else None
    db_hh = (db2 if two else clone(db)) if has_bias[1] else None
    dh0 = dh0 if given_states[0] else None
    dc0 = dc0 if cell == "lstm" and given_states[1] else None
    return (None, dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0, None, None, None, None,
            dw_hr if dw_hr.numel() else None, dln if dln.numel() else None, dpeep if dpeep.numel() else None,
            None, None)  # zoneout's rates and seed


recurrent_forward.register_autograd(_backward, setup_context=_setup_context)


class _Eager(torch.autograd.Function):
    """What ``recurrent_forward`` computes, for eager calls, without the dispatcher and without passing the
    driver's cache through tensors: the cache stays on ``ctx`` as the driver made it.  A custom op call adds
    argument normalisation, dispatch keys and its autograd wrapper, and its backward rebuilds the cache (the
    step plan, the lengths' staircase): a noticeable share of a small layer's step (bench/RESULTS.md).  Returns
    ``(hs, hT, cT)``.  Tracing (torch.compile, export) sees the custom ops."""

    @staticmethod
    def forward(ctx, cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, option, need_grad, num_threads, w_hr, ln,
                peep, zoneout, zoneout_seed):
        hs, hT, cT, cache = _run_forward(cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, option, need_grad,
                                         num_threads, w_hr, ln, peep, zoneout, zoneout_seed)
        ctx.cache, ctx.cell, ctx.num_threads = cache, cell, _threads(num_threads)
        ctx.has_bias = (b_ih.numel() > 0, b_hh.numel() > 0)
        ctx.given_states = (h0.numel() > 0, c0.numel() > 0)
        ctx.set_materialize_grads(False)  # no zero-filled gradients for outputs the loss does not read
        return hs, hT, cT

    @staticmethod
    def backward(ctx, d_hs, d_hT, d_cT):
        cache = ctx.cache
        if cache is None:
            raise RuntimeError("rnnfast: backward through a forward that ran with need_grad=False")
        spec = CELLS[ctx.cell]
        steps, P = cache.steps, cache.Wh.shape[0]  # the width of h
        dhs = np.zeros((steps.N, steps.T, P), cache.x_tm.dtype) if d_hs is None else d_hs.contiguous().numpy()
        dfinals = [None if d is None else d.contiguous().numpy() for d in (d_hT, d_cT)[:len(spec.state_names)]]
        grads = driver.sequence_backward(spec, dhs, cache, dfinals, "rnnfast.torch.ops.recurrent_forward")
        return _input_gradients(ctx.cell, ctx.has_bias, ctx.given_states,
                                _gradient_tensors(spec, grads, ctx.num_threads, cache.projection is not None,
                                                  cache.layer_norm is not None, cache.peephole is not None),
                                _numpy_copy)


def _numpy_copy(t: Tensor) -> Tensor:
    """A copy of ``t`` without a torch operator's dispatch, which costs more than the copy of a bias."""
    return torch.from_numpy(t.numpy().copy())


def run_forward(*inputs, w_hr: Optional[Tensor] = None, ln: Optional[Tensor] = None,
                peep: Optional[Tensor] = None, zoneout: Optional[List[float]] = None,
                zoneout_seed: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
    """``recurrent_forward``'s ``(hs, hT, cT)``: the custom op while torch.compile or export traces, else the
    same computation through a plain ``autograd.Function``."""
    if torch.compiler.is_compiling():
        return recurrent_forward(*inputs, w_hr, ln, peep, zoneout, zoneout_seed)[:3]
    return _Eager.apply(*inputs, w_hr, ln, peep, zoneout, zoneout_seed)
