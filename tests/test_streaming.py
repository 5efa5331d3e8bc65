"""LSTMStepper (streaming, packed weights) vs its NumPy twin and the step/sequence kernels."""
import numpy as np
import pytest

import rnnfast
import rnnfast.reference as reference

STEPPERS = [rnnfast.LSTMStepper, reference.LSTMStepper]
TOL = {np.float64: dict(rtol=1e-12, atol=1e-12), np.float32: dict(rtol=1e-5, atol=1e-5)}


def _weights(rng, D, H, dtype, scale=0.4):
    return [(rng.standard_normal(s) * scale).astype(dtype) for s in ((D, 4 * H), (H, 4 * H), (4 * H,))]


@pytest.mark.parametrize("Stepper", STEPPERS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("N,D,H", [(1, 3, 1), (1, 7, 5), (3, 11, 33), (2, 20, 70), (1, 64, 130), (5, 9, 600)])
def test_steps_equal_the_sequence_kernel(Stepper, dtype, N, D, H):
    rng = np.random.default_rng(N * 1000 + H)
    Wx, Wh, b = _weights(rng, D, H, dtype, min(0.4, 1.5 / np.sqrt(D + H)))  # float32: no deep saturation
    h0, c0 = (rng.standard_normal((N, H)).astype(dtype) for _ in range(2))
    xs = rng.standard_normal((N, 9, D)).astype(dtype)
    hs, hT, cT, _ = reference.lstm_forward(xs, Wx, Wh, b, h0, c0)
    s = Stepper(Wx, Wh, b, h0, c0)
    got = np.stack([s.step(xs[:, t]) for t in range(xs.shape[1])], axis=1)
    assert got.dtype == dtype and got.shape == (N, 9, H)
    np.testing.assert_allclose(got, hs, **TOL[dtype])
    np.testing.assert_allclose(s.h, hT, **TOL[dtype])
    np.testing.assert_allclose(s.c, cT, **TOL[dtype])


@pytest.mark.parametrize("H", [40, 256, 1100])
def test_bits_do_not_depend_on_the_thread_count(H):
    rng = np.random.default_rng(H)
    Wx, Wh, b = _weights(rng, 16, H, np.float32, 1 / np.sqrt(H))
    xs = rng.standard_normal((6, 2, 16)).astype(np.float32)
    runs = []
    for nt in (1, 2, 3, 4):
        s = rnnfast.LSTMStepper(Wx, Wh, b, batch_size=2, num_threads=nt)
        runs.append(np.stack([s.step(x) for x in xs]))
    for r in runs[1:]:
        np.testing.assert_array_equal(r, runs[0])


def test_returned_state_is_a_copy_and_inputs_and_weights_are_not_kept():
    rng = np.random.default_rng(1)
    Wx, Wh, b = _weights(rng, 4, 6, np.float64)
    keep = [a.copy() for a in (Wx, Wh, b)]
    s = rnnfast.LSTMStepper(Wx, Wh, b)
    x = rng.standard_normal((1, 4))
    x_before = x.copy()
    h1 = s.step(x)
    h1_saved = h1.copy()
    Wx[:] = 0  # later edits do not reach the packed weights
    h2 = s.step(x)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(h1, h1_saved)
    r = reference.LSTMStepper(*keep)
    r.step(x)
    np.testing.assert_allclose(h2, r.step(x), rtol=1e-12)
    s.h[:] = 99  # a copy
    assert not np.any(s.h == 99)


@pytest.mark.parametrize("Stepper", STEPPERS)
def test_reset_starts_again_and_may_change_the_batch(Stepper):
    rng = np.random.default_rng(2)
    Wx, Wh, b = _weights(rng, 3, 4, np.float64)
    s = Stepper(Wx, Wh, b)
    x = rng.standard_normal((1, 3))
    first = s.step(x)
    s.step(x)
    s.reset()
    np.testing.assert_array_equal(s.step(x), first)
    s.reset(batch_size=3)
    assert s.step(np.repeat(x, 3, axis=0)).shape == (3, 4)
    s.reset(batch_size=0)
    assert s.step(np.zeros((0, 3))).shape == (0, 4)


@pytest.mark.parametrize("layout", ["fortran", "strided", "readonly", "negative"])
def test_any_memory_layout_of_x_and_weights(layout):
    rng = np.random.default_rng(3)
    Wx, Wh, b = _weights(rng, 6, 5, np.float64)
    x = rng.standard_normal((2, 6))

    def relayout(a):
        if layout == "fortran":
            return np.asfortranarray(a)
        if layout == "strided":
            big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
            big[..., ::2] = a
            return big[..., ::2]
        if layout == "negative":
            return np.flip(np.flip(a, -1).copy(), -1)
        a = a.copy()
        a.setflags(write=False)
        return a

    expected = reference.LSTMStepper(Wx, Wh, b, batch_size=2).step(x)
    got = rnnfast.LSTMStepper(relayout(Wx), relayout(Wh), relayout(b), batch_size=2).step(relayout(x))
    np.testing.assert_allclose(got, expected, rtol=1e-12)


VARIANTS = {"peephole": lambda rng, H, dtype: {"peephole": (rng.standard_normal(3 * H) * 0.4).astype(dtype)},
            "zoneout": lambda rng, H, dtype: {"zoneout": (0.3, 0.15)}}


@pytest.mark.parametrize("Stepper", STEPPERS)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("N,D,H", [(1, 7, 5), (3, 11, 33), (1, 64, 130), (5, 9, 600)])
def test_variant_steps_equal_the_sequence_kernel(Stepper, variant, dtype, N, D, H):
    # peepholes; zoneout in its evaluation form (the rates, as a trained zoneout LSTM generates)
    rng = np.random.default_rng(N * 1000 + H)
    Wx, Wh, b = _weights(rng, D, H, dtype, min(0.4, 1.5 / np.sqrt(D + H)))
    kw = VARIANTS[variant](rng, H, dtype)
    h0, c0 = (rng.standard_normal((N, H)).astype(dtype) for _ in range(2))
    xs = rng.standard_normal((N, 9, D)).astype(dtype)
    hs, hT, cT, _ = reference.lstm_forward(xs, Wx, Wh, b, h0, c0, **kw)
    s = Stepper(Wx, Wh, b, h0, c0, **kw)
    got = np.stack([s.step(xs[:, t]) for t in range(xs.shape[1])], axis=1)
    np.testing.assert_allclose(got, hs, **TOL[dtype])
    np.testing.assert_allclose(s.h, hT, **TOL[dtype])
    np.testing.assert_allclose(s.c, cT, **TOL[dtype])
    plain = Stepper(Wx, Wh, b, h0, c0)
    assert not np.allclose(plain.step(xs[:, 0]), got[:, 0])  # the variant changed something


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_bits_do_not_depend_on_the_thread_count(variant):
    rng = np.random.default_rng(7)
    Wx, Wh, b = _weights(rng, 16, 256, np.float32, 1 / 16)
    kw = VARIANTS[variant](rng, 256, np.float32)
    xs = rng.standard_normal((6, 2, 16)).astype(np.float32)
    runs = []
    for nt in (1, 2, 3):
        s = rnnfast.LSTMStepper(Wx, Wh, b, batch_size=2, num_threads=nt, **kw)
        runs.append(np.stack([s.step(x) for x in xs]))
    for r in runs[1:]:
        np.testing.assert_array_equal(r, runs[0])


@pytest.mark.parametrize("Stepper", STEPPERS)
def test_variant_arguments_are_checked(Stepper):
    W = (np.zeros((3, 8)), np.zeros((2, 8)), np.zeros(8))
    with pytest.raises(ValueError, match=r"peephole has shape \(5,\); expected \(6,\)"):
        Stepper(*W, peephole=np.zeros(5))
    with pytest.raises(ValueError, match="zoneout"):
        Stepper(*W, zoneout=(1.5, 0.1))
    with pytest.raises(ValueError, match="one LSTM variant at a time"):
        Stepper(*W, peephole=np.zeros(6), zoneout=(0.1, 0.1))


@pytest.mark.parametrize("Stepper", STEPPERS)
@pytest.mark.parametrize("args,kwargs,step_x,exc,match", [
    ((np.zeros((3, 8)), np.zeros((2, 8)), [0.0] * 8), {}, None, TypeError, "b must be a numpy.ndarray"),
    ((np.zeros((3, 8)), np.zeros((2, 7)), np.zeros(8)), {}, None, ValueError, r"Wh has shape \(2, 7\)"),
    ((np.zeros((3, 8), np.float32), np.zeros((2, 8)), np.zeros(8)), {}, None, TypeError, "Wx has dtype float32"),
    ((np.zeros((3, 8)), np.zeros((2, 8)), np.full(8, np.nan)), {}, None, ValueError, "b contains NaN"),
    ((np.zeros((3, 8)), np.zeros((2, 8)), np.zeros(8)), {"batch_size": -1}, None, ValueError, "batch_size must be >= 0"),
    ((np.zeros((3, 8)), np.zeros((2, 8)), np.zeros(8)), {"batch_size": 2.0}, None, TypeError, "batch_size must be an int"),
    ((np.zeros((3, 8)), np.zeros((2, 8)), np.zeros(8)), {"h0": np.zeros((2, 3))}, None, ValueError, r"h0 has shape \(2, 3\)"),
    ((np.zeros((3, 8)), np.zeros((2, 8)), np.zeros(8)), {"h0": np.zeros((2, 2)), "batch_size": 3}, None,
     ValueError, "batch_size = 3 but h0/c0 have 2 rows"),
    ((np.zeros((3, 8)), np.zeros((2, 8)), np.zeros(8)), {}, np.zeros((1, 4)), ValueError, r"x has shape \(1, 4\)"),
    ((np.zeros((3, 8)), np.zeros((2, 8)), np.zeros(8)), {}, np.zeros((2, 3)), ValueError, r"x has shape \(2, 3\)"),
    ((np.zeros((3, 8)), np.zeros((2, 8)), np.zeros(8)), {}, np.zeros(3), ValueError, "x has 1 dimension"),
    ((np.zeros((3, 8)), np.zeros((2, 8)), np.zeros(8)), {}, np.zeros((1, 3), np.float32), TypeError, "x has dtype float32"),
    ((np.zeros((3, 8)), np.zeros((2, 8)), np.zeros(8)), {}, np.full((1, 3), np.inf), ValueError, "x contains NaN or Inf"),
    ((np.zeros((3, 8)), np.zeros((2, 8)), np.zeros(8)), {}, [[0.0, 0.0, 0.0]], TypeError, "x must be a numpy.ndarray"),
])
def test_bad_arguments_are_named(Stepper, args, kwargs, step_x, exc, match):
    with pytest.raises(exc, match=match):
        s = Stepper(*args, **kwargs)
        s.step(step_x)


# --- GRU and RNN steppers ---

OTHER = [  # (id, fast, reference, kwargs, gates, biases, sequence forward)
    ("gru_after", rnnfast.GRUStepper, reference.GRUStepper, {"reset_after": True}, 3, 2,
     lambda x, W, h0: reference.gru_forward(x, *W, h0, reset_after=True)),
    ("gru_before", rnnfast.GRUStepper, reference.GRUStepper, {"reset_after": False}, 3, 2,
     lambda x, W, h0: reference.gru_forward(x, *W, h0, reset_after=False)),
    ("rnn_tanh", rnnfast.RNNStepper, reference.RNNStepper, {}, 1, 1,
     lambda x, W, h0: reference.rnn_forward(x, *W, h0)),
    ("rnn_relu", rnnfast.RNNStepper, reference.RNNStepper, {"nonlinearity": "relu"}, 1, 1,
     lambda x, W, h0: reference.rnn_forward(x, *W, h0, nonlinearity="relu")),
]


def _cell_weights(rng, D, H, G, nb, dtype, scale):
    return [(rng.standard_normal(s) * scale).astype(dtype) for s in ((D, G * H), (H, G * H))] + \
        [(rng.standard_normal(G * H) * scale).astype(dtype) for _ in range(nb)]


@pytest.mark.parametrize("case", OTHER, ids=[c[0] for c in OTHER])
@pytest.mark.parametrize("impl", ["fast", "reference"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("N,D,H", [(1, 3, 1), (1, 7, 5), (3, 11, 33), (1, 64, 130), (5, 9, 600)])
def test_gru_and_rnn_steps_equal_the_sequence_kernel(case, impl, dtype, N, D, H):
    _, fast, ref, kw, G, nb, sequence = case
    rng = np.random.default_rng(N * 1000 + H)
    W = _cell_weights(rng, D, H, G, nb, dtype, min(0.4, 1.5 / np.sqrt(D + H)))
    h0 = rng.standard_normal((N, H)).astype(dtype)
    xs = rng.standard_normal((N, 9, D)).astype(dtype)
    hs, hT, _ = sequence(xs, W, h0)
    s = (fast if impl == "fast" else ref)(*W, h0, **kw)
    got = np.stack([s.step(xs[:, t]) for t in range(9)], axis=1)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, hs, **TOL[dtype])
    np.testing.assert_allclose(s.h, hT, **TOL[dtype])


@pytest.mark.parametrize("case", OTHER, ids=[c[0] for c in OTHER])
def test_gru_and_rnn_bits_do_not_depend_on_the_thread_count(case):
    _, fast, _, kw, G, nb, _ = case
    rng = np.random.default_rng(7)
    W = _cell_weights(rng, 16, 300, G, nb, np.float32, 0.05)
    xs = rng.standard_normal((5, 3, 16)).astype(np.float32)
    runs = []
    for nt in (1, 2, 3):
        s = fast(*W, batch_size=3, num_threads=nt, **kw)
        runs.append(np.stack([s.step(x) for x in xs]))
    for r in runs[1:]:
        np.testing.assert_array_equal(r, runs[0])


@pytest.mark.parametrize("Stepper", [rnnfast.GRUStepper, reference.GRUStepper])
def test_gru_stepper_arguments(Stepper):
    W = [np.zeros((3, 6)), np.zeros((2, 6)), np.zeros(6), np.zeros(6)]
    with pytest.raises(TypeError, match="reset_after must be True or False; got 'yes'"):
        Stepper(*W, reset_after="yes")
    with pytest.raises(ValueError, match=r"bh has shape \(5,\)"):
        Stepper(*W[:3], np.zeros(5))
    s = Stepper(*W)
    s.reset(batch_size=2)
    assert s.step(np.zeros((2, 3))).shape == (2, 2)


@pytest.mark.parametrize("Stepper", [rnnfast.RNNStepper, reference.RNNStepper])
def test_rnn_stepper_arguments(Stepper):
    W = [np.zeros((3, 2)), np.zeros((2, 2)), np.zeros(2)]
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu'; got 'gelu'"):
        Stepper(*W, nonlinearity="gelu")
    with pytest.raises(ValueError, match=r"Wh has shape \(2, 3\)"):
        Stepper(W[0], np.zeros((2, 3)), W[2])
    with pytest.raises(ValueError, match="x contains NaN"):
        Stepper(*W).step(np.full((1, 3), np.nan))


# --- The packed strips' layout (rnnfast.stepper.pack_strips; read by strips.row_product) ---

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("G,H,width", [(4, 20, 20), (3, 70, 32), (1, 130, 64), (4, 1100, 64)])
def test_unit_blocks_are_stored_as_column_strips(dtype, G, H, width):
    from rnnfast.stepper import pack_strips
    rng = np.random.default_rng(G * H)
    K, strip_bytes = 5, 256
    blocks = [rng.standard_normal((K, H)).astype(dtype) for _ in range(G)]
    packed, _ = pack_strips(blocks, [np.zeros(H, dtype)] * G, width, strip_bytes)
    n_blocks, strip = -(-H // width), strip_bytes // np.dtype(dtype).itemsize
    assert packed.shape == (n_blocks, K, G * width) and packed.flags.c_contiguous
    for k in range(n_blocks):
        dense = np.zeros((K, G * width), dtype)  # gate blocks of units k*width... side by side, zero past H
        for q, blk in enumerate(blocks):
            cols = blk[:, k * width:(k + 1) * width]
            dense[:, q * width:q * width + cols.shape[1]] = cols
        strips = [dense[:, s:s + strip].ravel() for s in range(0, G * width, strip)]
        np.testing.assert_array_equal(packed[k].ravel(), np.concatenate(strips))


def test_both_builds_read_strips_of_the_width_the_steppers_pack():
    import importlib

    from rnnfast._core.dispatch import avx2_available, avx512_twin_available
    from rnnfast._core.plan import CONSTANTS
    builds = (["rnnfast._core.kernels"] + (["rnnfast._core.kernels_avx2"] if avx2_available() else [])
              + (["rnnfast._core.kernels_avx512"] if avx512_twin_available() else []))
    widths = {importlib.import_module(b).CONSTANTS["strip_bytes"] for b in builds}
    assert widths == {CONSTANTS["strip_bytes"]} == {256}


# --- The whole-row cells: projection, layer-normalized LSTM and GRU (one-step calls of the sequence kernels) ---

def _whole_row_case(name, rng, D, H, dtype):
    """(Stepper pair, positional weights, keywords, state widths, the sequence forward of each impl)."""
    s = min(0.4, 1.5 / np.sqrt(D + H))
    P = max(1, H // 3)
    if name == "gru-layernorm":
        W = [(rng.standard_normal(sh) * s).astype(dtype) for sh in ((D, 3 * H), (H, 3 * H), (3 * H,), (3 * H,))]
        kw = {"layer_norm": (1 + rng.standard_normal(6 * H) * 0.2).astype(dtype)}
        return (rnnfast.GRUStepper, reference.GRUStepper), W, kw, [H], "gru"
    Wx, Wh, b = _weights(rng, D, H, dtype, s)
    if name == "lstm-layernorm":
        ln = np.concatenate([1 + rng.standard_normal(9 * H) * 0.2, rng.standard_normal(H) * 0.2]).astype(dtype)
        return (rnnfast.LSTMStepper, reference.LSTMStepper), [Wx, Wh, b], {"layer_norm": ln}, [H, H], "lstm"
    kw = {"projection": (rng.standard_normal((H, P)) / np.sqrt(H)).astype(dtype)}
    if name == "lstm-projection-peephole":
        kw["peephole"] = (rng.standard_normal(3 * H) * 0.4).astype(dtype)
    Wh = (rng.standard_normal((P, 4 * H)) * s).astype(dtype)
    return (rnnfast.LSTMStepper, reference.LSTMStepper), [Wx, Wh, b], kw, [P, H], "lstm"


WHOLE_ROWS = ["lstm-projection", "lstm-projection-peephole", "lstm-layernorm", "gru-layernorm"]


@pytest.mark.parametrize("name", WHOLE_ROWS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("N,D,H", [(1, 7, 5), (3, 11, 33), (1, 64, 130), (4, 9, 300)])
def test_whole_row_steps_equal_the_sequence_and_step_kernels(name, dtype, N, D, H):
    rng = np.random.default_rng(N * 100 + H)
    steppers, W, kw, widths, cell = _whole_row_case(name, rng, D, H, dtype)
    states = [rng.standard_normal((N, w)).astype(dtype) for w in widths]
    xs = rng.standard_normal((N, 7, D)).astype(dtype)
    hs, *finals, _ = getattr(reference, f"{cell}_forward")(xs, *W, *states, **kw)
    step_forward = getattr(rnnfast, f"{cell}_step_forward")
    for Stepper in steppers:
        s = Stepper(*W, *states, **kw)
        got, now = [], list(states)
        for t in range(xs.shape[1]):
            got.append(s.step(xs[:, t]))
            if Stepper is steppers[0]:  # and the single-step kernel, step after step
                *now, _ = step_forward(xs[:, t], *now, *W, **kw)
                np.testing.assert_allclose(got[-1], now[0], **TOL[dtype])
        np.testing.assert_allclose(np.stack(got, axis=1), hs, **TOL[dtype])
        for got_state, want in zip([s.h] + ([s.c] if cell == "lstm" else []), finals):
            np.testing.assert_allclose(got_state, want, **TOL[dtype])
        assert s.h.shape == (N, widths[0])


@pytest.mark.parametrize("name", WHOLE_ROWS)
def test_whole_row_steppers_copy_the_weights_reset_and_keep_their_bits_across_threads(name):
    rng = np.random.default_rng(5)
    (Stepper, _), W, kw, widths, cell = _whole_row_case(name, rng, 16, 96, np.float32)
    xs = rng.standard_normal((5, 3, 16)).astype(np.float32)
    runs = []
    for nt in (1, 2, 3):
        s = Stepper(*W, batch_size=3, num_threads=nt, **kw)
        runs.append(np.stack([s.step(x) for x in xs]))
    for r in runs[1:]:
        np.testing.assert_array_equal(r, runs[0])
    s = Stepper(*W, batch_size=3, **kw)
    first = s.step(xs[0])
    W[0][...] = 0  # the caller's arrays may change: the stepper holds copies
    for v in kw.values():
        v[...] = 0
    s.reset()
    np.testing.assert_array_equal(s.step(xs[0]), first)
    s.reset(batch_size=2)
    assert s.step(xs[0, :2]).shape == (2, widths[0]) and s.N == 2
    with pytest.raises(ValueError, match=r"x has shape \(3, 16\)"):
        s.step(xs[0])


def test_whole_row_stepper_arguments_are_checked():
    rng = np.random.default_rng(0)
    (Stepper, Ref), W, kw, _, _ = _whole_row_case("lstm-projection", rng, 4, 6, np.float64)
    for S in (Stepper, Ref):
        with pytest.raises(ValueError, match=r"h0 has shape \(2, 6\)"):  # P = 2 wide with a projection
            S(*W, np.zeros((2, 6)), **kw)
        with pytest.raises(ValueError, match="one LSTM variant at a time"):
            S(*W, zoneout=(0.1, 0.1), **kw)
        with pytest.raises(ValueError, match="batch_size = 3 but h0/c0 have 2 rows"):
            S(*W, np.zeros((2, 2)), batch_size=3, **kw)
        with pytest.raises(TypeError, match="c0 has dtype float32"):
            S(*W, None, np.zeros((1, 6), np.float32), **kw)
        s = S(*W, **kw)
        with pytest.raises(ValueError, match=r"c0 has shape \(1, 2\)"):
            s.reset(c0=np.zeros((1, 2)))
    (Stepper, Ref), W, kw, _, _ = _whole_row_case("gru-layernorm", rng, 4, 6, np.float64)
    for S in (Stepper, Ref):
        with pytest.raises(ValueError, match="reset-after"):
            S(*W, reset_after=False, **kw)
        with pytest.raises(ValueError, match=r"layer_norm has shape \(5,\)"):
            S(*W, layer_norm=np.ones(5))
