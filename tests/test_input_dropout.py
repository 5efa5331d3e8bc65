"""The sequence functions' ``input_dropout=(p, key)``: the cell reads ``x * keep_mask(key, p, x.shape)``, applied in
the kernels' layout copies, and backward's dx is the gradient of the x given.  The bits equal those of dropping x
first; the reference agrees; bad values get the same error from both implementations; a stack hands its dropout
between layers over to the layer above with the bits of a dropout layer of its own."""
import numpy as np
import pytest

import rnnfast
from cells import CELLS, IMPLS
from rnnfast.layers import RecurrentStack, TimeDropout
from rnnfast.layers.dropout import keep_mask

KEY, P = 0xDEADBEEF12345, 0.3


def _problem(cell, rng, dtype, N=5, T=6, D=7, H=8):
    x = rng.standard_normal((N, T, D)).astype(dtype)
    return x, cell.params(rng, D, H, dtype), rng.standard_normal((N, T, H)).astype(dtype)


def _run(cell, impl, x, params, dhs, lengths, **kw):
    fn = getattr(IMPLS[impl], f"{cell.spec.name}_forward")
    biases = params[2:2 + cell.n_biases]
    hs, *finals, cache = fn(x, params[0], params[1], *biases, lengths=lengths, **cell.keywords(params), **kw)
    grads = getattr(IMPLS[impl], f"{cell.spec.name}_backward")(dhs, cache)
    return hs, finals, grads


@pytest.mark.parametrize("cell", CELLS, ids=str)
@pytest.mark.parametrize("impl", ["kernel", "reference"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lengths", [None, "uniform", "ragged"])
def test_dropping_x_on_the_way_in_has_the_bits_of_dropping_it_first(cell, impl, dtype, lengths, rng):
    x, params, dhs = _problem(cell, rng, dtype)
    lens = {None: None, "uniform": np.full(5, 6), "ragged": np.array([6, 2, 5, 1, 3])}[lengths]
    mask = keep_mask(KEY, P, x.shape, dtype).copy()
    assert 0 < np.count_nonzero(mask) < mask.size  # something is dropped, something kept
    hs, finals, grads = _run(cell, impl, x * mask, params, dhs, lens)
    x_given = x.copy()
    hs_d, finals_d, grads_d = _run(cell, impl, x, params, dhs, lens, input_dropout=(P, KEY))
    np.testing.assert_array_equal(x, x_given)  # the input is not modified
    np.testing.assert_array_equal(hs_d, hs)
    for a, b in zip(finals_d, finals):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(grads_d[0], grads[0] * mask)  # dx: the gradient of the x given
    for a, b in zip(grads_d[1:], grads[1:]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell", CELLS, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_and_reference_agree(cell, dtype, rng):
    x, params, dhs = _problem(cell, rng, dtype)
    lens = np.array([6, 2, 5, 1, 3])
    kern = _run(cell, "kernel", x, params, dhs, lens, input_dropout=(P, KEY))
    ref = _run(cell, "reference", x, params, dhs, lens, input_dropout=(P, KEY))
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(kern[0], ref[0], **tol)
    for a, b in zip(kern[2], ref[2]):
        np.testing.assert_allclose(a, b, **tol)


@pytest.mark.parametrize("variant", [{"projection": 5}, {"layer_norm": True}])
def test_the_whole_row_lstm_paths_drop_x_too(variant, rng):
    N, T, D, H = 4, 5, 6, 8
    x = rng.standard_normal((N, T, D))
    kw = {}
    Wh_rows = H
    if "projection" in variant:
        kw["projection"] = rng.standard_normal((H, variant["projection"])) * 0.3
        Wh_rows = variant["projection"]
    else:
        kw["layer_norm"] = np.concatenate([1 + 0.1 * rng.standard_normal(9 * H), 0.1 * rng.standard_normal(H)])
    Wx, Wh = rng.standard_normal((D, 4 * H)) * 0.3, rng.standard_normal((Wh_rows, 4 * H)) * 0.3
    b = rng.standard_normal(4 * H) * 0.1
    mask = keep_mask(KEY, P, x.shape, x.dtype).copy()
    hs, _, _, cache = rnnfast.lstm_forward(x * mask, Wx, Wh, b, **kw)
    hs_d, _, _, cache_d = rnnfast.lstm_forward(x, Wx, Wh, b, **kw, input_dropout=(P, KEY))
    np.testing.assert_array_equal(hs_d, hs)
    dhs = rng.standard_normal(hs.shape)
    g, g_d = rnnfast.lstm_backward(dhs, cache), rnnfast.lstm_backward(dhs, cache_d)
    np.testing.assert_array_equal(g_d[0], g[0] * mask)
    for a, b in zip(g_d[1:], g[1:]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("impl", ["kernel", "reference"])
def test_rate_zero_drops_nothing(impl, rng):
    cell = CELLS[0]
    x, params, dhs = _problem(cell, rng, np.float64)
    plain, dropped = _run(cell, impl, x, params, dhs, None), _run(cell, impl, x, params, dhs, None,
                                                                   input_dropout=(0.0, KEY))
    np.testing.assert_array_equal(dropped[0], plain[0])
    np.testing.assert_array_equal(dropped[2][0], plain[2][0])


@pytest.mark.parametrize("bad, error, match", [
    (0.3, TypeError, r"input_dropout must be a pair \(p, key\); got 0.3"),
    ((0.3,), TypeError, r"input_dropout must be a pair"),
    ((1.0, 5), ValueError, r"dropout p must be a number in \[0, 1\); got 1.0"),
    ((-0.1, 5), ValueError, r"dropout p must be a number in \[0, 1\); got -0.1"),
    ((True, 5), ValueError, r"dropout p must be a number in \[0, 1\); got True"),
    ((0.3, -1), ValueError, r"key must be an integer in \[0, 2\*\*64\); got -1"),
    ((0.3, 2**64), ValueError, r"key must be an integer in \[0, 2\*\*64\)"),
    ((0.3, 1.5), ValueError, r"key must be an integer in \[0, 2\*\*64\); got 1.5"),
])
@pytest.mark.parametrize("impl", ["kernel", "reference"])
def test_bad_input_dropout_gets_the_same_error_from_both(impl, bad, error, match, rng):
    cell = CELLS[0]
    x, params, dhs = _problem(cell, rng, np.float32)
    with pytest.raises(error, match=match):
        _run(cell, impl, x, params, dhs, None, input_dropout=bad)


@pytest.mark.parametrize("impl", ["kernel", "reference"])
def test_input_dropout_is_refused_with_token_input(impl, rng):
    V, D, H = 9, 4, 6
    ids = rng.integers(0, V, (3, 5))
    emb = rng.standard_normal((V, D))
    Wx, Wh, b = rng.standard_normal((D, 4 * H)), rng.standard_normal((H, 4 * H)), np.zeros(4 * H)
    with pytest.raises(ValueError, match=r"input_dropout: not with embedding="):
        IMPLS[impl].lstm_forward(ids, Wx, Wh, b, embedding=emb, input_dropout=(P, KEY))


def _layer_by_layer(stack, x, dout):
    """The stack's layers and dropouts one after the other, each dropout a pass of its own."""
    for i, layer in enumerate(stack.layers):
        x = layer[0].forward(x)
        if i < len(stack.dropouts):
            x = stack.dropouts[i].forward(x)
    d = dout
    for i in reversed(range(len(stack.layers))):
        if i < len(stack.dropouts):
            d = stack.dropouts[i].backward(d)
        d = stack.layers[i][0].backward(d)
    return x, d


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_stack_hands_its_dropout_to_the_layer_above_with_the_same_bits(cell, backend, dtype, rng):
    x = rng.standard_normal((4, 6, 5)).astype(dtype)
    dout = rng.standard_normal((4, 6, 7)).astype(dtype)

    def stack():
        return RecurrentStack(cell, 5, 7, num_layers=3, dropout=0.4, rng=np.random.default_rng(3), dtype=dtype,
                              backend=backend)

    handed, own = stack(), stack()
    out = handed.forward(x)
    masks = [d.mask.copy() for d in handed.dropouts]
    dx = handed.backward(dout)
    assert handed._handed == [True, True]
    out_own, dx_own = _layer_by_layer(own, x, dout)
    np.testing.assert_array_equal(out, out_own)
    np.testing.assert_array_equal(dx, dx_own)
    for a, b in zip(handed.grads, own.grads):
        np.testing.assert_array_equal(a, b)
    for m, d in zip(masks, own.dropouts):  # the masks a dropout layer of its own drew
        np.testing.assert_array_equal(m, d.mask)
    assert all(0 < np.count_nonzero(m) < m.size for m in masks)


def test_a_stack_in_evaluation_hands_over_nothing(rng):
    s = RecurrentStack("lstm", 5, 7, num_layers=2, dropout=0.4, rng=np.random.default_rng(3))
    s.eval()
    x = rng.standard_normal((2, 3, 5)).astype(np.float32)
    out = s.forward(x)
    assert s.dropouts[0].mask is None
    h = s.layers[0][0].forward(x)
    np.testing.assert_array_equal(out, s.layers[1][0].forward(h))


def test_a_dropout_that_shares_its_mask_along_time_is_not_handed_over():
    from rnnfast.layers import LockedDropout
    with pytest.raises(ValueError, match="cannot be handed over"):
        LockedDropout(0.5, rng=np.random.default_rng(0)).handed_over((2, 3, 4), np.float32)
    assert TimeDropout(0.5, rng=np.random.default_rng(0)).handed_over((2, 3, 4), np.float32)[0] == 0.5


@pytest.mark.parametrize("lengths", [None, np.array([6, 2, 5, 1, 3])])
def test_a_strided_x_is_dropped_by_its_elements_positions(lengths, rng):
    cell = CELLS[0]
    wide = rng.standard_normal((5, 6, 14)).astype(np.float32)
    x = wide[:, :, ::2]  # a view: every other feature
    assert not x.flags.c_contiguous
    _, params, dhs = _problem(cell, rng, np.float32)
    strided = _run(cell, "kernel", x, params, dhs, lengths, input_dropout=(P, KEY))
    packed = _run(cell, "kernel", np.ascontiguousarray(x), params, dhs, lengths, input_dropout=(P, KEY))
    np.testing.assert_array_equal(strided[0], packed[0])
    np.testing.assert_array_equal(strided[2][0], packed[2][0])
