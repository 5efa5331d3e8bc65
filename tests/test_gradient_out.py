"""The backward functions' ``out``: the weight gradients written into the caller's arrays (a layer's gradient
buffers), with the same bits as new arrays, returned in their places; bad ``out`` gets a clear error from both
implementations."""
import numpy as np
import pytest

import rnnfast
from cells import CELLS, IMPLS
from rnnfast._core import driver
from rnnfast.layers import TimeLSTM


def _problem(cell, rng, dtype, N=5, T=6, D=3, H=16, lengths=True):
    x = rng.standard_normal((N, T, D)).astype(dtype)
    params = cell.params(rng, D, H, dtype)
    lens = np.array([T, 2, 5, 1, 6][:N]) if lengths else None
    dhs = rng.standard_normal((N, T, H)).astype(dtype)
    return x, params, lens, dhs


def _weight_positions(cell, n_grads):
    """Where the weight gradients are in a backward function's result: after dx, and the variant's last."""
    head = 3 + cell.n_biases
    return [*range(1, head), *range(head + cell.n_states, n_grads)]


@pytest.mark.parametrize("cell", CELLS, ids=str)
@pytest.mark.parametrize("impl", ["kernel", "reference"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lengths", [False, True])
def test_out_holds_the_bits_of_new_arrays_and_is_returned(cell, impl, dtype, lengths, rng):
    x, params, lens, dhs = _problem(cell, rng, dtype, lengths=lengths)
    backward = getattr(IMPLS[impl], f"{cell.spec.name}_backward")
    _, _, cache = cell.forward(IMPLS[impl], x, params, None, lens)
    plain = backward(dhs, cache)
    _, _, cache = cell.forward(IMPLS[impl], x, params, None, lens)
    positions = _weight_positions(cell, len(plain))
    out = [np.full_like(plain[i], np.nan) for i in positions]  # what the call must overwrite
    out[1] = None  # an entry left to the call
    got = backward(dhs, cache, out=out)
    assert len(got) == len(plain)
    for k, i in enumerate(positions):
        if out[k] is not None:
            assert got[i] is out[k]
        np.testing.assert_array_equal(got[i], plain[i])
    for i in set(range(len(plain))) - set(positions):
        np.testing.assert_array_equal(got[i], plain[i])


@pytest.mark.parametrize("impl", ["kernel", "reference"])
@pytest.mark.parametrize("variant", ["projection", "layer_norm", "tokens"])
def test_out_on_the_whole_row_paths_and_token_input(impl, variant, rng):
    N, T, D, H, V = 4, 9, 3, 8, 5
    fns = IMPLS[impl]
    Wx = rng.standard_normal((D, 4 * H)).astype(np.float32) * 0.3
    b = rng.standard_normal(4 * H).astype(np.float32) * 0.1
    kw, x = {}, rng.standard_normal((N, T, D)).astype(np.float32)
    P = H
    if variant == "projection":
        P = 4
        kw["projection"] = rng.standard_normal((H, P)).astype(np.float32) * 0.3
    elif variant == "layer_norm":
        kw["layer_norm"] = (1 + 0.1 * rng.standard_normal(10 * H)).astype(np.float32)
    else:  # folded into the input projection where the table is small (2V <= N*T)
        kw["embedding"] = rng.standard_normal((V, D)).astype(np.float32)
        x = rng.integers(0, V, (N, T))
    Wh = rng.standard_normal((P, 4 * H)).astype(np.float32) * 0.3
    dhs = rng.standard_normal((N, T, P)).astype(np.float32)
    cache = fns.lstm_forward(x, Wx, Wh, b, **kw)[-1]
    plain = fns.lstm_backward(dhs, cache)
    cache = fns.lstm_forward(x, Wx, Wh, b, **kw)[-1]
    positions = [1, 2, 3, *range(6, len(plain))]
    out = [np.full_like(plain[i], np.nan) for i in positions]
    got = fns.lstm_backward(dhs, cache, out=out)
    for o, i in zip(out, positions):
        assert got[i] is o
        np.testing.assert_array_equal(o, plain[i])


@pytest.mark.parametrize("impl", ["kernel", "reference"])
def test_an_empty_batch_zeroes_out(impl, rng):
    cell = CELLS[0]
    x, params, _, dhs = _problem(cell, rng, np.float64, N=0, lengths=False)
    _, _, cache = cell.forward(IMPLS[impl], x, params, None)
    out = [np.full_like(p, np.nan) for p in params[:3]]
    IMPLS[impl].lstm_backward(dhs, cache, out=out)
    for o in out:
        assert np.all(o == 0)


def _bad_outs(params, dhs):
    Wx, Wh, b = params[:3]
    return [
        (TypeError, "out must be a list or tuple", np.zeros_like(Wx)),
        (ValueError, "out must have 3 entries", [np.zeros_like(Wx), np.zeros_like(Wh)]),
        (TypeError, r"out\[2\] must be a numpy array", [None, None, list(b)]),
        (ValueError, r"out\[0\] must be a writeable C-contiguous float64 array of shape \(3, 64\); got float64 \(64, 3\)",
         [np.zeros(Wx.shape[::-1]), None, None]),
        (ValueError, r"out\[1\] must be .*float64.*got float32", [None, np.zeros_like(Wh, np.float32), None]),
        (ValueError, r"out\[0\] .*\(not C-contiguous\)", [np.zeros(Wx.shape[::-1]).T, None, None]),
        (ValueError, r"out\[2\] .*\(read-only\)", [None, None, np.zeros_like(b).view()]),
        (ValueError, r"out\[1\] shares memory with an array the backward pass reads", [None, Wh, None]),
        (ValueError, r"out\[2\] shares memory with another entry", [None, np.zeros_like(Wh), None]),
    ]


@pytest.mark.parametrize("impl", ["kernel", "reference"])
@pytest.mark.parametrize("case", range(9))
def test_bad_out_gets_a_clear_error_from_both(impl, case, rng):
    cell = CELLS[0]
    x, params, lens, dhs = _problem(cell, rng, np.float64)
    err, message, out = _bad_outs(params, dhs)[case]
    if case == 6:
        out[2].flags.writeable = False
    if case == 8:
        out[2] = out[1][0]  # a row of another entry's array: (4H,) like db
    _, _, cache = cell.forward(IMPLS[impl], x, params, None, lens)
    with pytest.raises(err, match=message):
        IMPLS[impl].lstm_backward(dhs, cache, out=out)


def test_a_layer_backward_writes_its_gradients_in_place(rng):
    N, T, D, H = 4, 7, 5, 32
    Wx = rng.standard_normal((D, 4 * H)).astype(np.float32) * 0.3
    Wh = rng.standard_normal((H, 4 * H)).astype(np.float32) * 0.3
    b = rng.standard_normal(4 * H).astype(np.float32) * 0.1
    layer = TimeLSTM(Wx, Wh, b)
    buffers = list(layer.grads)
    x = rng.standard_normal((N, T, D)).astype(np.float32)
    dhs = rng.standard_normal((N, T, H)).astype(np.float32)
    layer.forward(x)
    layer.backward(dhs)
    _, _, _, cache = rnnfast.lstm_forward(x, Wx, Wh, b)
    _, dWx, dWh, db, *_ = rnnfast.lstm_backward(dhs, cache)
    assert all(g is kept for g, kept in zip(layer.grads, buffers))
    for g, want in zip(layer.grads, (dWx, dWh, db)):
        np.testing.assert_array_equal(g, want)


def test_a_layer_whose_buffer_the_kernels_cannot_write_gets_the_copy(rng):
    N, T, D, H = 3, 4, 5, 16
    layer = TimeLSTM(*(rng.standard_normal(s).astype(np.float32) * 0.3 for s in ((D, 4 * H), (H, 4 * H), (4 * H,))))
    strided = np.zeros((4 * H, H), np.float32).T  # dWh's shape, not C-contiguous
    layer.grads[1] = strided
    x = rng.standard_normal((N, T, D)).astype(np.float32)
    dhs = rng.standard_normal((N, T, H)).astype(np.float32)
    layer.forward(x)
    layer.backward(dhs)
    _, _, _, cache = rnnfast.lstm_forward(x, *layer.params)
    want = rnnfast.lstm_backward(dhs, cache)[2]
    assert layer.grads[1] is strided
    np.testing.assert_array_equal(strided, want)


@pytest.mark.parametrize("cell", CELLS, ids=str)
def test_out_off_a_cache_line_gets_the_same_bits(cell, rng):
    """dWx and dWh of ``out`` arrays that start off a cache line are made in an aligned stand-in and copied in
    (the products' stores would straddle lines): the same bits, in the caller's arrays."""
    dtype = np.float32
    x, params, lens, dhs = _problem(cell, rng, dtype, N=4, T=5, D=128, H=128)
    _, _, cache = cell.forward(IMPLS["kernel"], x, params, None, lens)
    backward = getattr(rnnfast, f"{cell.spec.name}_backward")
    plain = backward(dhs, cache)
    _, _, cache = cell.forward(IMPLS["kernel"], x, params, None, lens)
    positions = _weight_positions(cell, len(plain))
    out = []
    for i in positions:
        raw = np.full(plain[i].size + 16, np.nan, dtype)
        start = 1 + (-raw.ctypes.data // raw.itemsize) % 16  # one value past a 64-byte boundary
        out.append(raw[start:start + plain[i].size].reshape(plain[i].shape))
    assert all(o.ctypes.data % 64 and o.nbytes >= driver.ALIGNED_OUT_MIN_BYTES for o in out[:2])  # dWx, dWh
    got = backward(dhs, cache, out=out)
    for j, i in enumerate(positions):
        assert got[i] is out[j]
        np.testing.assert_array_equal(got[i], plain[i])
