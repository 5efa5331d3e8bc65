"""The one Python driver of every cell's kernels: check the arguments, choose the plan, lay out the buffers,
call the compiled driver (``kernels.forward``/``backward``), keep what backward needs.  A cell is data here
(``rnnfast.cells``); ``rnnfast.lstm``, ``gru`` and ``rnn`` are the public faces, with their docstrings."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..cells import CellSpec
from .buffers import (SequenceBuffers, Staircase, batch_major, checked_in_place, contiguous, kernel_outputs,
                      state_history, time_major, time_major_ids, transposed)
from .counter_rng import splitmix64
from .dispatch import kernel_module
from .plan import StepPlan
from .products import matmul
from .threads import configured_num_threads, single_threaded_blas
from .training_passes import scatter_add_rows
from .validation import (check_cache, check_flag, check_gradient_out, check_gru_layer_norm, check_layer_norm,
                         check_need_grad, check_peephole, check_projected_forward, check_sequence_backward,
                         check_sequence_forward, check_states, check_step_grads, check_step_x, check_token_input,
                         check_input_dropout, check_zoneout)
from .workspace import ALIGN, pool

_kernels = kernel_module("kernels")  # the AVX-512 or AVX2 twin where the CPU runs it


@dataclass(eq=False)
class SequenceCache:
    """What the backward pass needs; opaque to users."""

    spec: CellSpec
    option: object  # the cell's option (reset_after, nonlinearity), or None
    x_tm: Optional[np.ndarray]  # (rows, D), time-major in blocks per step (``steps``); None: folded token input
    Wx: np.ndarray
    Wh: np.ndarray
    hst: np.ndarray  # (history rows, H) the state entering each step
    cst: Optional[np.ndarray]  # LSTM, likewise
    act: np.ndarray  # (rows, G) gate activations
    hg: Optional[np.ndarray]  # GRU: (rows, G) recurrent pre-activations
    rh: Optional[np.ndarray]  # reset-before GRU: (rows, H) r * h_{t-1}
    steps: Staircase
    mask: Optional[np.ndarray]
    plan: StepPlan
    peephole: Optional[np.ndarray] = None  # LSTM with peepholes: (3H,)
    projection: Optional[np.ndarray] = None  # projection LSTM: Whr (H, P); hst is then P wide
    mst: Optional[np.ndarray] = None  # projection LSTM: (rows, H) o * tanh(c) of every step
    layer_norm: Optional[dict] = None  # layer-normalized LSTM or GRU: ln, bias_h and the normalized rows (as buffers)
    zoneout: Optional[tuple] = None  # LSTM with zoneout: (z_c, z_h) ...
    zoneout_key: Optional[int] = None  # ... and the masks' key (training), as SequenceBuffers
    tokens: Optional["TokenInput"] = None  # x given as token ids into an embedding
    input_dropout: Optional[tuple] = None  # (p, key): x was dropped on its way in (``sequence_forward``)

    @property
    def dtype(self) -> np.dtype:
        return self.Wx.dtype


@dataclass(eq=False)
class TokenInput:
    """How a forward pass with ``embedding=`` read its input, for backward.  Folded (the embedding's rows
    at most half the time-major rows): the input part of every step was a row of ``embedding @ Wx + bias``,
    picked by ``ids`` (time-major, ``time_major_ids``), and backward sums dGx by token instead of running
    the two products over all rows.  Else the rows were gathered into x (``ids``: the user's (N*T,))."""

    ids: np.ndarray
    vocab: int
    embedding: Optional[np.ndarray] = None  # folded: a copy of (V, D)


def _flags(spec: CellSpec, option):
    """(cell code, reset_after, relu): how the compiled driver knows the cell."""
    return _kernels.CELLS[spec.name], spec.name == "gru" and bool(option), spec.name == "rnn" and option == "relu"


def sequence_forward(spec: CellSpec, x, Wx, Wh, biases: Sequence, states: Sequence, lengths=None, option=None,
                     num_threads=None, state_names=None, plan: Optional[StepPlan] = None, need_grad=True,
                     check_finite=True, peephole=None, projection=None, layer_norm=None, zoneout=None,
                     zoneout_seed=None, embedding=None, input_dropout=None):
    """``spec``'s forward pass over whole sequences: ``(hs, finals, cache)``, finals the last state of each
    sequence (``h``, and ``c`` for the LSTM).  ``state_names`` name the states in errors (``h0``, or ``h``
    for the single-step functions); ``plan`` forces a path (tests), else ``StepPlan.choose`` picks it.

    ``need_grad=False`` is inference: the same arithmetic (the same bits), but the state history is a ring
    of two slots, every workspace goes back at once and ``cache`` is None.

    ``check_finite=False`` (SciPy's convention) skips the NaN/Inf checks: non-finite values then propagate
    as in NumPy.  The kernels never index or branch on a value, so that is memory-safe (``.ci/sanitize``).

    ``peephole`` (LSTM): the diagonal weights ``(3H,)`` of a peephole LSTM, or None.  ``projection`` (LSTM):
    ``Whr (H, P)`` of a projection LSTM (``Wh (P, 4H)``, ``h`` and ``hs`` P wide), or None.  ``layer_norm``
    (LSTM, reset-after GRU): ``(10H,)`` of the layer-normalized LSTM, ``(6H,)`` of the GRU
    (``rnnfast/reference/layer_norm.py``), or None; not with the other two.  ``zoneout`` (LSTM) ``(z_c, z_h)``
    and ``zoneout_seed`` (None: evaluation): zoneout (``rnnfast/reference/zoneout.py``); not with the others.

    ``embedding (V, D)``: ``x`` is token ids ``(N, T)`` and the input ``embedding[x]`` (``TokenInput``).

    ``input_dropout`` ``(p, key)``: the input is ``x * counter_rng.dropout_mask(key, p, x.shape)``, dropped in
    the time-major copy (no pass of its own), and backward's ``dx`` is the gradient of the ``x`` given."""
    option = spec.check_option(option)
    need_grad = check_need_grad(need_grad)
    finite = check_flag("check_finite", check_finite)
    input_dropout = check_input_dropout(input_dropout, embedding)
    if embedding is not None:
        ids, embedding, x = check_token_input(x, embedding, Wx, finite)  # x: a stand-in for the checks
    names = state_names or tuple(n + "0" for n in spec.state_names)
    for name, given in [("peephole", peephole), ("projection", projection), ("layer_norm", layer_norm),
                        ("zoneout", zoneout)]:
        cells = ("lstm", "gru") if name == "layer_norm" else ("lstm",)
        if given is not None and spec.name not in cells:
            owners = "the LSTM and the GRU have" if len(cells) == 2 else "the LSTM has"
            raise ValueError(f"{name}: only {owners} one; got cell {spec.name!r}")
    if layer_norm is not None and spec.name == "gru" and not option:
        raise ValueError("layer_norm: the layer-normalized GRU is the reset-after one; got reset_after=False")
    threads = plan.num_threads if plan is not None else configured_num_threads(num_threads)
    plain = projection is None and layer_norm is None  # the cells' own kernel (kernels.forward)
    if projection is None:
        v = check_sequence_forward(spec, x, Wx, Wh, biases, list(zip(names, states)), lengths,
                                   check_x_values=False, finite=finite,  # x: checked in its time-major copy
                                   num_threads=threads,
                                   check_weight_values=not plain)  # plain: as they are packed, below
    else:
        v = check_projected_forward(x, Wx, Wh, biases[0], projection, list(zip(names, states)), lengths,
                                    check_x_values=False, finite=finite)
    N, T, H, dtype = v.N, v.T, v.H, v.dtype
    P = H if v.Whr is None else v.Whr.shape[1]  # the width of h
    peephole = check_peephole(peephole, H, dtype, finite)
    layer_norm = (check_gru_layer_norm if spec.name == "gru" else check_layer_norm)(layer_norm, H, dtype, finite)
    if layer_norm is not None and (peephole is not None or v.Whr is not None):
        raise ValueError("layer_norm: not with peephole or projection (one LSTM variant at a time)")
    zoneout, zoneout_seed = check_zoneout(zoneout, zoneout_seed)
    if zoneout is not None and (peephole is not None or v.Whr is not None or layer_norm is not None):
        raise ValueError("zoneout: not with peephole, projection or layer_norm (one LSTM variant at a time)")
    zoneout_key = None if zoneout_seed is None else int(splitmix64(np.array([zoneout_seed], np.uint64))[0])
    G = spec.gates * H
    plan = plan or StepPlan.choose(spec.gates, N, T, H, dtype, threads, D=v.D, need_grad=need_grad,
                                   ragged=v.mask is not None, whole_rows=v.Whr is not None or layer_norm is not None)
    cell, reset_after, relu = _flags(spec, option)
    ring = not need_grad  # per-step histories: every step for backward, else a ring of two slots
    steps = Staircase.make(v.lengths, N, T, running_only=ring and input_product_row_free(plan, v.lengths, *v.Wx.shape))
    biases = [np.ascontiguousarray(b) for b in v.biases]
    tokens = None
    if embedding is not None:
        V = embedding.shape[0]
        # Folding pays where the table has well under the rows of the products it replaces (at V near the
        # rows, the V-row products cost as much and the sums by token come on top); the whole-row-block
        # paths (projection, layer_norm) read x itself.
        if 2 * V <= steps.rows and projection is None and layer_norm is None:
            tokens = TokenInput(time_major_ids(ids, steps), V, np.array(embedding))
        else:
            tokens = TokenInput(np.array(ids, dtype=np.intp).reshape(-1), V)
            v.x = embedding[ids]
    scratch_rows = 2 * N if ring else steps.rows
    with pool.scope() as ws:
        keep = ws.take
        buf = SequenceBuffers(
            cell, reset_after, relu,
            x_tm=None if tokens is not None and tokens.embedding is not None else
            time_major("x", v.x, steps, v.mask, plan.num_threads, keep, finite, input_dropout),
            Wx=contiguous(v.Wx, plan.num_threads), Wh=contiguous(v.Wh, plan.num_threads),
            offsets=steps.offsets, active=steps.active, order=steps.order, ring=ring,
            hst=state_history(v.states[0], steps, ring, keep), act=keep((steps.rows, G), dtype),
            bias_x=biases[0], bias_h=biases[1] if len(biases) > 1 else None,
            peep=None if peephole is None else np.ascontiguousarray(peephole),
            zoneout=zoneout, zoneout_key=zoneout_key,
            cst=state_history(v.states[1], steps, ring, keep) if len(v.states) > 1 else None,
            hg=keep((scratch_rows, G), dtype) if spec.name == "gru" and layer_norm is None else None,
            rh=keep((scratch_rows, H), dtype) if spec.name == "gru" and not reset_after else None,
            # the user's output, written by the kernel's tiles at the valid steps (zero at the padded ones)
            hs=kernel_outputs(N, dtype, (N, T, P), zeros=steps.order is not None)[0],
        )
        step_rows = N if ring else steps.rows  # the per-step arrays of a whole-row-block path
        blas = True  # whether the kernel's products call BLAS (inside its parallel regions: pinned at one thread)
        if v.Whr is not None:  # whole row blocks a step, on the weights as given (kernels.projected_forward)
            buf.Whr = contiguous(v.Whr, plan.num_threads)
            buf.mst = keep((step_rows, H), dtype)
            run = _kernels.projected_forward
        elif layer_norm is not None:  # likewise (kernels.layer_norm_forward)
            buf.ln = np.ascontiguousarray(layer_norm)
            buf.x_hat, buf.x_rstd = (None, None) if ring else (keep((steps.rows, G), dtype), keep((steps.rows,), dtype))
            buf.h_hat, buf.h_rstd = keep((step_rows, G), dtype), keep((step_rows,), dtype)
            if spec.name == "lstm":
                buf.c_hat, buf.c_rstd = keep((step_rows, H), dtype), keep((step_rows,), dtype)
            run = _kernels.layer_norm_forward
        else:
            buf.panels = ws.take((G * H,), dtype) if plan.step_weights == "microkernel" else None
            buf.blocked = (ws.take((-(-H // plan.units) * plan.units * G,), dtype) if plan.step_weights == "blocked"
                           else None)
            # Wx and Wh are checked in one call, Wh in the pass that packs it (kernels.prepare_forward)
            *bad, blas = _kernels.prepare_forward(buf, plan, finite)
            for name, found in zip(("Wx", "Wh"), bad):
                if found:
                    raise ValueError(f"{name} contains NaN or Inf; expected finite values")
            run = _kernels.forward
            if buf.x_tm is None:  # folded token input: the kernel copies a table row to each step row
                buf.table = matmul(tokens.embedding, buf.Wx, bias=buf.bias_x, num_threads=plan.num_threads)
                buf.tokens = tokens.ids
        if N:
            with single_threaded_blas() if blas else contextlib.nullcontext():
                run(buf, plan)
        cache = None
        if need_grad:
            cache = SequenceCache(spec, option, buf.x_tm, buf.Wx, buf.Wh, buf.hst, buf.cst, buf.act, buf.hg, buf.rh,
                                  steps, v.mask, plan, None if peephole is None else np.array(peephole),
                                  buf.Whr, buf.mst)
            cache.zoneout, cache.zoneout_key, cache.tokens = zoneout, zoneout_key, tokens
            cache.input_dropout = input_dropout
            normalized = ()
            if layer_norm is not None:
                cache.layer_norm = {name: getattr(buf, name)
                                    for name in ("ln", "x_hat", "x_rstd", "h_hat", "h_rstd", "c_hat", "c_rstd")}
                cache.layer_norm["bias_h"] = buf.bias_h
                normalized = tuple(a for a in (buf.x_hat, buf.x_rstd, buf.h_hat, buf.h_rstd, buf.c_hat, buf.c_rstd)
                                   if a is not None)
            ws.keep_until_dead(cache, *(a for a in (buf.x_tm, buf.hst, buf.cst, buf.act, buf.hg, buf.rh, buf.mst,
                                                    *normalized) if a is not None))
        last = steps.final_rows(ring)  # each sequence's own last state
        finals = [steps.unsort(hist[last]) for hist in (buf.hst, buf.cst) if hist is not None]
    return buf.hs, finals, cache


def input_product_row_free(plan: StepPlan, lengths: Optional[np.ndarray], D: int, G: int) -> bool:
    """Whether a ragged call's input product runs on the micro-kernel even over its running rows alone: each row's
    sums are then the same whatever the rows around it, and an inference call may drop the rows a training call
    keeps (``Staircase``'s ``running_only``) with its outputs' bits unchanged.  OpenBLAS's are not: a product of
    another height may take other kernels."""
    side = _kernels.CONSTANTS["microkernel_min_side"]
    return (lengths is not None and plan.microkernel_products and bool(_kernels.CONSTANTS["microkernel"])
            and min(int(lengths.sum()), D, G) >= side)


def sequence_backward(spec: CellSpec, dhs, cache, dfinals: Sequence, producer: str, check_finite=True, out=None):
    """Backward through time of ``spec``'s forward pass (``cache``): ``(dx, dWx, dWh, dbiases, dstates0)``,
    and the peepholes' gradient ``(3H,)`` last when the forward pass had them; ``dx`` is the embedding's
    gradient ``(V, D)`` after a forward pass with token input.
    ``dfinals`` (None: zeros, truncated BPTT) flow into the final state; ``producer`` names the function
    whose cache is expected, in errors; ``check_finite`` as in ``sequence_forward``; ``out``: arrays the
    weight gradients are written into (``validation.check_gradient_out``), returned in their places."""
    cache = check_cache(cache, SequenceCache, producer, spec)
    finite = check_flag("check_finite", check_finite)
    reads = (dhs, *dfinals, cache.Wx, cache.Wh, cache.peephole, cache.projection)
    if cache.projection is not None or cache.layer_norm is not None:
        return _whole_row_backward(cache, dhs, dfinals, finite, out, reads)
    steps, plan = cache.steps, cache.plan
    N, T, D, H, dtype = steps.N, steps.T, cache.Wx.shape[0], cache.Wh.shape[0], cache.dtype
    G = spec.gates * H
    tokens = cache.tokens
    folded = tokens is not None and tokens.embedding is not None
    dnames = [f"d{n}T" for n in spec.state_names]
    dhs, dstates = check_sequence_backward(dhs, list(zip(dnames, dfinals)), N, T, H, dtype, cache.mask,
                                           check_dhs_values=False, finite=finite)
    lengths = steps.lengths if steps.order is None else steps.unsort(steps.lengths)  # the user's rows
    dhs = checked_in_place("dhs", dhs, lengths, cache.mask, plan.num_threads, finite)
    dstates = [steps.sort(np.asarray(d, dtype=dtype)) for d in dstates]  # written in place, rows sorted
    cell, reset_after, relu = _flags(spec, cache.option)
    weights = [(D, G), (H, G), *[(G,)] * len(spec.bias_names)]
    outs = check_gradient_out(out, weights + ([(3 * H,)] if cache.peephole is not None else []), dtype, reads)
    # dWx and dWh are the C of products that add into them k-block after k-block: where an out array is off a
    # cache line, each store would straddle two lines, so the kernel writes a stand-in on one
    stand_ins = [None if o is None or o.ctypes.data % ALIGN == 0 or o.nbytes < ALIGNED_OUT_MIN_BYTES or folded
                 else kernel_outputs(N, dtype, o.shape)[0] for o in outs[:2]]
    dW = _gradient_arrays([o if s is None else s for o, s in zip(outs[:2], stand_ins)] + outs[2:len(weights)],
                          weights, N, dtype)
    with pool.scope() as ws:
        dGx = ws.take((steps.rows, G), dtype)
        microkernel = plan.step_weights == "microkernel"
        buf = SequenceBuffers(
            cell, reset_after, relu, x_tm=cache.x_tm, Wx=cache.Wx, Wh=cache.Wh,
            offsets=steps.offsets, active=steps.active, order=steps.order, ring=False,
            hst=cache.hst, act=cache.act, cst=cache.cst, hg=cache.hg, rh=cache.rh,
            # the step products read the micro-kernel's panels, or Wh.T on BLAS
            panels=ws.take((G * H,), dtype) if microkernel else None,
            WhT=None if microkernel else transposed(cache.Wh, plan.num_threads, ws.take),
            dhs=dhs, dh=dstates[0], dc=dstates[1] if len(dstates) > 1 else None,
            drh=np.empty((N, H), dtype=dtype) if cache.rh is not None else None,
            # the x-side and h-side pre-activation gradients differ only in the reset-after GRU
            dGx=dGx, dGh=ws.take((steps.rows, G), dtype) if spec.name == "gru" and reset_after else dGx,
            dx_tm=None if folded else ws.take((steps.rows, D), dtype), dWx=dW[0], dWh=dW[1],
            dbx=dW[2], dbh=dW[3] if len(dW) > 3 else None,
            peep=cache.peephole,
            dpeep=None if cache.peephole is None else _gradient_arrays(outs[-1:], [(3 * H,)], N, dtype, zeros=True)[0],
            zoneout=cache.zoneout, zoneout_key=cache.zoneout_key,
            # folded token input: dGx summed by token (S), the kernel's, for dWx = E^T S, dE = S Wx^T
            tokens=tokens.ids if folded else None,
            token_sums=np.zeros((tokens.vocab, G), dtype) if folded else None,
        )
        if N:
            with single_threaded_blas():
                _kernels.backward(buf, plan)
        if folded:
            dW[0] = matmul(tokens.embedding, buf.token_sums, trans_a=True, num_threads=plan.num_threads, out=outs[0])
            dx = matmul(buf.token_sums, cache.Wx, trans_b=True, num_threads=plan.num_threads)
        else:
            dx = _token_gradient(tokens, batch_major(buf.dx_tm, steps, plan.num_threads, cache.input_dropout))
    for i, stand_in in enumerate(stand_ins):
        if stand_in is not None:
            outs[i][...] = stand_in
            dW[i] = outs[i]
    extra = () if buf.dpeep is None else (buf.dpeep,)
    return (dx, dW[0], dW[1], *dW[2:], *(steps.unsort(d) if steps.order is not None else d for d in dstates),
            *extra)


# Below this, an out array off a cache line costs less than the copy from an aligned stand-in would.
ALIGNED_OUT_MIN_BYTES = 1 << 16


def _gradient_arrays(outs: list, shapes: list, N: int, dtype, zeros: bool = False) -> list:
    """The arrays a kernel writes weight gradients into: ``out``'s entries where given, else new ones
    (``kernel_outputs``); zeroed where the kernel adds into them (``zeros``) or does not run (N = 0)."""
    new = iter(kernel_outputs(N, dtype, *[s for o, s in zip(outs, shapes) if o is None], zeros=zeros))
    arrays = [next(new) if o is None else o for o in outs]
    for o in outs:
        if o is not None and (zeros or not N):
            o.fill(0)
    return arrays


def _whole_row_backward(cache: SequenceCache, dhs, dfinals: Sequence, finite: bool, out, reads: tuple):
    """``sequence_backward`` of the paths that run whole row blocks a step (``kernels.projected_backward``,
    ``layer_norm_backward``): ``(dx, dWx, dWh, *dbiases, *dstates0, *the variant's weight gradients)`` -- a
    projection LSTM's ``[dpeephole,] dprojection``, a layer-normalized LSTM's or GRU's ``dlayer_norm``;
    ``out`` as there."""
    steps, plan, spec = cache.steps, cache.plan, cache.spec
    N, T, D, dtype = steps.N, steps.T, cache.Wx.shape[0], cache.dtype
    G, P = cache.Wx.shape[1], cache.Wh.shape[0]  # P: the width of h (H but for the projection LSTM)
    H = G // spec.gates
    gru = spec.name == "gru"
    dhs, (dh,) = check_sequence_backward(dhs, [("dhT", dfinals[0])], N, T, P, dtype, cache.mask,
                                         check_dhs_values=False, finite=finite)
    dc = None if gru else check_states([("dcT", dfinals[1])], N, H, dtype, "of the forward pass", finite)[0]
    lengths = steps.lengths if steps.order is None else steps.unsort(steps.lengths)  # the user's rows
    dhs = checked_in_place("dhs", dhs, lengths, cache.mask, plan.num_threads, finite)
    dstates = [steps.sort(np.asarray(d, dtype=dtype)) for d in ((dh,) if gru else (dh, dc))]  # in place, sorted
    weights = [(D, G), (P, G), *[(G,)] * len(spec.bias_names)]
    if cache.projection is not None:
        variants = ([(3 * H,)] if cache.peephole is not None else []) + [(H, P)]
    else:
        variants = [cache.layer_norm["ln"].shape]
    outs = check_gradient_out(out, weights + variants, dtype, reads)
    dW = _gradient_arrays(outs[:len(weights)], weights, N, dtype)
    with pool.scope() as ws:
        rows = steps.rows
        buf = SequenceBuffers(
            _kernels.CELLS[spec.name], True, False, x_tm=cache.x_tm, Wx=cache.Wx, Wh=cache.Wh,
            offsets=steps.offsets, active=steps.active, order=steps.order, ring=False,
            hst=cache.hst, act=cache.act, cst=cache.cst, dhs=dhs, dh=dstates[0],
            dc=None if gru else dstates[1], dGx=ws.take((rows, G), dtype), dx_tm=ws.take((rows, D), dtype),
            dWx=dW[0], dWh=dW[1], dbx=dW[2], dbh=dW[3] if gru else None,
            WhT=transposed(cache.Wh, plan.num_threads, ws.take),  # the step products' NN form
        )
        if cache.projection is not None:
            buf.peep, buf.Whr, buf.mst = cache.peephole, cache.projection, cache.mst
            buf.WhrT = transposed(cache.projection, plan.num_threads, ws.take)
            buf.dpeep = None if cache.peephole is None else _gradient_arrays(outs[-2:-1], [(3 * H,)], N, dtype,
                                                                             zeros=True)[0]
            buf.dhst, buf.dm, buf.zeros = ws.take((rows, P), dtype), ws.take((N, H), dtype), np.zeros(H, dtype)
            buf.dWhr = _gradient_arrays(outs[-1:], [(H, P)], N, dtype)[0]
            run, variant = _kernels.projected_backward, [g for g in (buf.dpeep, buf.dWhr) if g is not None]
        else:
            for name, a in cache.layer_norm.items():
                setattr(buf, name, a)
            buf.dR, buf.dQ = ws.take((rows, G), dtype), ws.take((rows, G), dtype)
            if gru:
                buf.dAH = ws.take((rows, G), dtype)
            else:
                buf.dCN = ws.take((rows, H), dtype)
            buf.dln = _gradient_arrays(outs[-1:], [cache.layer_norm["ln"].shape], N, dtype)[0]
            run, variant = _kernels.layer_norm_backward, [buf.dln]
        if N:
            with single_threaded_blas():
                run(buf, plan)
        dx = _token_gradient(cache.tokens, batch_major(buf.dx_tm, steps, plan.num_threads, cache.input_dropout))
    return (dx, *dW, *(steps.unsort(d) if steps.order is not None else d for d in dstates), *variant)


def _token_gradient(tokens: Optional[TokenInput], dx: np.ndarray) -> np.ndarray:
    """``dx (N, T, D)``, or after a token input whose rows were gathered, the embedding's gradient ``(V, D)``."""
    if tokens is None:
        return dx
    dE = np.zeros((tokens.vocab, dx.shape[-1]), dx.dtype)
    scatter_add_rows(dE, tokens.ids, dx)
    return dE


def step_forward(spec: CellSpec, x, states: Sequence, Wx, Wh, biases: Sequence, option=None, num_threads=None,
                 check_finite=True, peephole=None, projection=None, layer_norm=None, zoneout=None,
                 zoneout_seed=None):
    """One step, ``x (N, D)``: ``(*next_states, cache)``."""
    _, finals, cache = sequence_forward(spec, check_step_x(x), Wx, Wh, biases, states, None, option, num_threads,
                                        state_names=spec.state_names, check_finite=check_finite, peephole=peephole,
                                        projection=projection, layer_norm=layer_norm, zoneout=zoneout,
                                        zoneout_seed=zoneout_seed)
    return (*finals, cache)


def step_backward(spec: CellSpec, dnext: Sequence, cache, check_finite=True):
    """Gradients of one step: ``(dx (N, D), *dstates, dWx, dWh, *dbiases)``, and the peepholes' gradient
    last when the step had them."""
    producer = f"rnnfast.{spec.name}_step_forward"
    cache = check_cache(cache, SequenceCache, producer, spec)
    N, P = cache.steps.N, cache.Wh.shape[0]  # P: the width of h (H but for the projection LSTM)
    H = cache.Wx.shape[1] // spec.gates
    finite = check_flag("check_finite", check_finite)
    for name, d, width in zip(spec.state_names, dnext, (P, H)):
        check_step_grads([(f"d{name}_next", d)], N, width, cache.dtype, finite)
    zeros = np.zeros((N, 1, P), dtype=cache.dtype)
    dx, dWx, dWh, *rest = sequence_backward(spec, zeros, cache, dnext, producer, finite)
    nb, ns = len(spec.bias_names), len(spec.state_names)
    return (dx[:, 0], *rest[nb:nb + ns], dWx, dWh, *rest[:nb], *rest[nb + ns:])
