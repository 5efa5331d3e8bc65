"""Malformed input raises ValueError/TypeError naming the argument, before any native code runs."""
import numpy as np
import pytest

import rnnfast
import rnnfast.reference as reference

from cells import CELLS

N, T, D, H = 3, 4, 5, 2
F = np.float64


def lstm_args(**over):
    rng = np.random.default_rng(0)
    args = dict(
        x=rng.standard_normal((N, T, D)), Wx=rng.standard_normal((D, 4 * H)),
        Wh=rng.standard_normal((H, 4 * H)), b=np.zeros(4 * H), h0=None, c0=None, lengths=None,
    )
    args.update(over)
    return args


def gru_args(**over):
    rng = np.random.default_rng(0)
    args = dict(
        x=rng.standard_normal((N, T, D)), Wx=rng.standard_normal((D, 3 * H)),
        Wh=rng.standard_normal((H, 3 * H)), bx=np.zeros(3 * H), bh=np.zeros(3 * H),
    )
    args.update(over)
    return args


def rnn_args(**over):
    rng = np.random.default_rng(0)
    args = dict(x=rng.standard_normal((N, T, D)), Wx=rng.standard_normal((D, H)),
                Wh=rng.standard_normal((H, H)), b=np.zeros(H))
    args.update(over)
    return args


def with_nan(shape, where=0):
    a = np.zeros(shape)
    a.flat[where] = np.nan
    return a


# (id, function name, args, exception, text the message must contain)
CASES = [
    ("x-none", "lstm_forward", lstm_args(x=None), TypeError, "x must be a numpy.ndarray"),
    ("x-list", "lstm_forward", lstm_args(x=[[[1.0]]]), TypeError, "x must be a numpy.ndarray"),
    ("x-str", "lstm_forward", lstm_args(x="abc"), TypeError, "x must be"),
    ("x-int", "lstm_forward", lstm_args(x=np.ones((N, T, D), dtype=np.int64)), TypeError, "x has dtype int64"),
    ("x-f16", "lstm_forward", lstm_args(x=np.ones((N, T, D), dtype=np.float16)), TypeError, "x has dtype float16"),
    ("x-complex", "lstm_forward", lstm_args(x=np.ones((N, T, D), dtype=complex)), TypeError, "x has dtype complex"),
    ("x-object", "lstm_forward", lstm_args(x=np.ones((N, T, D), dtype=object)), TypeError, "x has dtype object"),
    ("x-byteswapped", "lstm_forward", lstm_args(x=np.ones((N, T, D), dtype=">f8" if np.little_endian else "<f8")),
     TypeError, "byte order"),
    ("x-2d", "lstm_forward", lstm_args(x=np.ones((N, D))), ValueError, "x has 2 dimension"),
    ("x-4d", "lstm_forward", lstm_args(x=np.ones((N, T, D, 1))), ValueError, "x has 4 dimension"),
    ("x-T0", "lstm_forward", lstm_args(x=np.ones((N, 0, D))), ValueError, "T = 0"),
    ("x-D0", "lstm_forward", lstm_args(x=np.ones((N, T, 0)), Wx=np.ones((0, 4 * H))), ValueError, "D = 0"),
    ("x-nan", "lstm_forward", lstm_args(x=with_nan((N, T, D))), ValueError, "x contains NaN"),
    ("x-inf", "lstm_forward", lstm_args(x=np.full((N, T, D), np.inf)), ValueError, "x contains NaN or Inf"),
    ("Wx-shape", "lstm_forward", lstm_args(Wx=np.ones((D + 1, 4 * H))), ValueError, "Wx has shape (6, 8); expected (5, 8)"),
    ("Wx-cols", "lstm_forward", lstm_args(Wx=np.ones((D, 3 * H))), ValueError, "Wx has shape"),
    ("Wx-f32-mix", "lstm_forward", lstm_args(Wx=np.ones((D, 4 * H), np.float32)), TypeError, "Wx has dtype float32"),
    ("Wx-nan", "lstm_forward", lstm_args(Wx=with_nan((D, 4 * H))), ValueError, "Wx contains NaN"),
    ("Wh-not-4H", "lstm_forward", lstm_args(Wh=np.ones((H, 4 * H + 1))), ValueError, "Wh has shape (2, 9); expected (2, 8)"),
    ("Wh-1d", "lstm_forward", lstm_args(Wh=np.ones(4 * H)), ValueError, "Wh has 1 dimension"),
    ("Wh-H0", "lstm_forward", lstm_args(Wh=np.ones((0, 0)), Wx=np.ones((D, 0)), b=np.ones(0)), ValueError, "H = 0"),
    ("Wh-inf", "lstm_forward", lstm_args(Wh=np.full((H, 4 * H), np.inf)), ValueError, "Wh contains"),
    ("b-shape", "lstm_forward", lstm_args(b=np.ones(4 * H + 1)), ValueError, "b has shape (9,); expected (8,)"),
    ("b-2d", "lstm_forward", lstm_args(b=np.ones((1, 4 * H))), ValueError, "b has 2 dimension"),
    ("b-list", "lstm_forward", lstm_args(b=[0.0] * 8), TypeError, "b must be a numpy.ndarray"),
    ("h0-batch", "lstm_forward", lstm_args(h0=np.ones((N + 1, H))), ValueError, "h0 has shape (4, 2); expected (3, 2)"),
    ("h0-broadcast", "lstm_forward", lstm_args(h0=np.ones((1, H))), ValueError, "h0 has shape (1, 2)"),
    ("c0-shape", "lstm_forward", lstm_args(c0=np.ones((N, H + 1))), ValueError, "c0 has shape"),
    ("c0-dtype", "lstm_forward", lstm_args(c0=np.ones((N, H), np.float32)), TypeError, "c0 has dtype float32"),
    ("c0-nan", "lstm_forward", lstm_args(c0=with_nan((N, H))), ValueError, "c0 contains NaN"),
    ("lengths-float", "lstm_forward", lstm_args(lengths=np.ones(N)), TypeError, "lengths has dtype float64"),
    ("lengths-list", "lstm_forward", lstm_args(lengths=[1, 2, 3]), TypeError, "lengths must be"),
    ("lengths-shape", "lstm_forward", lstm_args(lengths=np.ones(N + 1, int)), ValueError, "lengths has shape"),
    ("lengths-zero", "lstm_forward", lstm_args(lengths=np.array([0, 1, 2])), ValueError, "lengths must lie in 1..T"),
    ("lengths-big", "lstm_forward", lstm_args(lengths=np.array([1, 2, T + 1])), ValueError, "lengths must lie in 1..T"),
    ("lengths-neg", "lstm_forward", lstm_args(lengths=np.array([-1, 2, 2])), ValueError, "lengths must lie"),
    ("threads-zero", "lstm_forward", lstm_args(num_threads=0), ValueError, "num_threads must be >= 1"),
    ("threads-float", "lstm_forward", lstm_args(num_threads=2.0), TypeError, "num_threads must be a positive int"),
    ("threads-str", "lstm_forward", lstm_args(num_threads="2"), TypeError, "num_threads"),
    ("gru-Wh-3H", "gru_forward", gru_args(Wh=np.ones((H, 4 * H))), ValueError, "Wh has shape (2, 8); expected (2, 6)"),
    ("gru-bh-shape", "gru_forward", gru_args(bh=np.ones(4 * H)), ValueError, "bh has shape"),
    ("gru-bx-dtype", "gru_forward", gru_args(bx=np.ones(3 * H, np.float32)), TypeError, "bx has dtype"),
    ("gru-reset-str", "gru_forward", gru_args(reset_after="yes"), TypeError, "reset_after must be True or False"),
    ("gru-h0-shape", "gru_forward", gru_args(h0=np.ones((N, 2 * H))), ValueError, "h0 has shape"),
    ("rnn-nonlin", "rnn_forward", rnn_args(nonlinearity="sigmoid"), ValueError, "nonlinearity must be 'tanh' or 'relu'"),
    ("rnn-nonlin-none", "rnn_forward", rnn_args(nonlinearity=None), ValueError, "nonlinearity"),
    ("rnn-Wh-square", "rnn_forward", rnn_args(Wh=np.ones((H, H + 1))), ValueError, "Wh has shape"),
    ("step-x-3d", "lstm_step_forward", dict(x=np.ones((N, 1, D)), h=np.ones((N, H)), c=np.ones((N, H)),
                                           Wx=np.ones((D, 4 * H)), Wh=np.ones((H, 4 * H)), b=np.ones(4 * H)),
     ValueError, "x has 3 dimension"),
    ("step-h-shape", "gru_step_forward", dict(x=np.ones((N, D)), h=np.ones((N + 1, H)), Wx=np.ones((D, 3 * H)),
                                             Wh=np.ones((H, 3 * H)), bx=np.ones(3 * H), bh=np.ones(3 * H)),
     ValueError, "has shape (4, 2); expected (3, 2)"),
]


@pytest.mark.parametrize("impl", [rnnfast, reference], ids=["kernel", "reference"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_forward_rejects_bad_input(impl, case):
    _, fname, args, exc, text = case
    if impl is reference and "threads" in case[0]:
        pytest.skip("the reference ignores num_threads")
    saved = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in args.items()}
    with pytest.raises(exc) as info:
        getattr(impl, fname)(**args)
    assert text in str(info.value)
    for k, v in args.items():
        if isinstance(v, np.ndarray) and v.dtype != object:
            np.testing.assert_array_equal(v, saved[k])


def _lstm_cache(impl):
    a = lstm_args()
    return impl.lstm_forward(a["x"], a["Wx"], a["Wh"], a["b"])[3]


BACKWARD_CASES = [
    ("dhs-shape", lambda c: (np.ones((N, T + 1, H)), c), ValueError, "dhs has shape (3, 5, 2); expected (3, 4, 2)"),
    ("dhs-ndim", lambda c: (np.ones((N, H)), c), ValueError, "dhs has 2 dimension"),
    ("dhs-dtype", lambda c: (np.ones((N, T, H), np.float32), c), TypeError, "dhs has dtype float32"),
    ("dhs-nan", lambda c: (with_nan((N, T, H)), c), ValueError, "dhs contains NaN"),
    ("dhs-none", lambda c: (None, c), TypeError, "dhs must be a numpy.ndarray"),
    ("dhT-shape", lambda c: (np.ones((N, T, H)), c, np.ones((N, H + 1))), ValueError, "dhT has shape"),
    ("dcT-inf", lambda c: (np.ones((N, T, H)), c, None, np.full((N, H), np.inf)), ValueError, "dcT contains"),
    ("cache-wrong", lambda c: (np.ones((N, T, H)), "cache"), TypeError, "cache must be the cache returned by"),
    ("cache-none", lambda c: (np.ones((N, T, H)), None), TypeError, "cache must be"),
]


@pytest.mark.parametrize("impl", [rnnfast, reference], ids=["kernel", "reference"])
@pytest.mark.parametrize("case", BACKWARD_CASES, ids=[c[0] for c in BACKWARD_CASES])
def test_backward_rejects_bad_input(impl, case):
    _, make, exc, text = case
    with pytest.raises(exc) as info:
        impl.lstm_backward(*make(_lstm_cache(impl)))
    assert text in str(info.value)


@pytest.mark.parametrize("cell", CELLS, ids=str)
def test_dhs_is_checked_at_valid_steps_only_on_the_threads_path(cell):
    """``dhs`` is read in place and checked by the threads once it has 64K values or more
    (``buffers.checked_in_place``): a NaN or Inf at any valid step is refused, NaN at a padded one
    changes nothing."""
    rng = np.random.default_rng(2)
    n, t, d, h = 4, 130, 8, 128  # 66,560 values in dhs
    lengths = np.array([t, 60, 1, t - 1])
    x = rng.standard_normal((n, t, d))
    p, s = cell.params(rng, d, h, np.float64), cell.states(rng, n, h, np.float64)
    dhs = rng.standard_normal((n, t, h))
    for length, seq in zip(lengths, dhs):
        seq[length:] = 0
    _, _, cache = cell.forward(rnnfast, x, p, s, lengths=lengths, num_threads=2)
    expected = cell.backward(rnnfast, dhs, cache, None)
    padded = dhs.copy()
    for length, seq in zip(lengths, padded):
        seq[length:] = np.nan
    for a, b in zip(expected, cell.backward(rnnfast, padded, cache, None)):
        np.testing.assert_array_equal(a, b)
    for where in [(1, 59, h - 1), (2, 0, 0), (0, t - 1, h - 1), (3, t - 2, 5)]:  # last, first valid steps
        bad = dhs.copy()
        bad[where] = np.inf if where[0] % 2 else np.nan
        with pytest.raises(ValueError, match="dhs contains NaN or Inf at a valid step"):
            cell.backward(rnnfast, bad, cache, None)


def test_kernel_backward_rejects_reference_cache():
    with pytest.raises(TypeError, match="rnnfast.lstm_forward"):
        rnnfast.lstm_backward(np.ones((N, T, H)), _lstm_cache(reference))


def test_blas_integer_limit_checked_before_allocation():
    from rnnfast._core.validation import check_blas_sizes

    with pytest.raises(ValueError, match="BLAS limit"):
        check_blas_sizes(2**16, 2**16, 3, 4)
    with pytest.raises(ValueError, match="BLAS limit"):
        check_blas_sizes(1, 1, 3, 2**31)
    # an x whose N*T exceeds the limit, without allocating it: a zero-stride view
    x = np.lib.stride_tricks.as_strided(np.zeros(1), shape=(2**16, 2**16, 1), strides=(0, 0, 0))
    with pytest.raises(ValueError, match="BLAS limit"):
        rnnfast.lstm_forward(x, np.ones((1, 8)), np.ones((2, 8)), np.ones(8))


@pytest.mark.parametrize("impl", [rnnfast, reference], ids=["kernel", "reference"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_step_backward_names_its_arguments(impl, cell):
    x, h = np.ones((N, D)), np.ones((N, H))
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    W = (np.ones((D, G * H)), np.ones((H, G * H)))
    if cell == "lstm":
        cache = impl.lstm_step_forward(x, h, h, *W, np.ones(G * H))[2]
        call = lambda dh: impl.lstm_step_backward(dh, np.ones((N, H), np.float32), cache)  # noqa: E731
    elif cell == "gru":
        cache = impl.gru_step_forward(x, h, *W, np.ones(G * H), np.ones(G * H))[1]
        call = lambda dh: impl.gru_step_backward(dh, cache)  # noqa: E731
    else:
        cache = impl.rnn_step_forward(x, h, *W, np.ones(G * H))[1]
        call = lambda dh: impl.rnn_step_backward(dh, cache)  # noqa: E731
    with pytest.raises(ValueError, match=r"dh_next has shape \(4, 2\); expected \(3, 2\)"):
        call(np.ones((N + 1, H)))
    if cell == "lstm":
        with pytest.raises(TypeError, match="dc_next has dtype float32"):
            call(np.ones((N, H)))
