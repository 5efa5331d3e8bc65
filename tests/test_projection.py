"""The projection LSTM (``lstm_forward(..., projection=Whr)``): kernels against the NumPy reference and
finite differences, bits across threads and inference, single steps, validation."""
import numpy as np
import pytest

import rnnfast
import rnnfast.reference as reference
from rnnfast._core import driver
from rnnfast._core.plan import StepPlan
from rnnfast.cells import LSTM

from cells import rel_err
from test_gradcheck import numerical_gradient

SHAPES = [(3, 5, 4, 6, 3), (16, 7, 8, 128, 32), (33, 4, 5, 70, 70), (40, 3, 9, 24, 30), (1, 2, 3, 5, 8)]


def problem(rng, N, T, D, H, P, dtype=np.float64, peephole=False):
    """``x, [Wx, Wh, b, Whr, (peephole)], [h0, c0], lengths, dhs, [dhT, dcT]``."""
    def draw(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(dtype)
    params = [draw(D, 4 * H, scale=0.3), draw(P, 4 * H, scale=0.3), draw(4 * H, scale=0.1), draw(H, P, scale=0.3)]
    if peephole:
        params.append(draw(3 * H, scale=0.5))
    return (draw(N, T, D), params, [draw(N, P), draw(N, H)], rng.integers(1, T + 1, size=N), draw(N, T, P),
            [draw(N, P), draw(N, H)])


def run(impl, x, params, states, lengths, dhs, dfinals, **kw):
    Wx, Wh, b, Whr, *peep = params
    extra = {"peephole": peep[0]} if peep else {}
    hs, hT, cT, cache = impl.lstm_forward(x, Wx, Wh, b, *states, lengths=lengths, projection=Whr, **extra, **kw)
    return [hs, hT, cT], list(impl.lstm_backward(dhs, cache, *dfinals))


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("ragged", [False, True])
@pytest.mark.parametrize("peephole", [False, True])
def test_kernel_matches_reference(shape, dtype, tol, ragged, peephole, rng):
    x, params, states, lengths, dhs, dfinals = problem(rng, *shape, dtype=dtype, peephole=peephole)
    lengths = lengths if ragged else None
    outs, grads = run(rnnfast, x, params, states, lengths, dhs, dfinals, num_threads=2)
    ref_outs, ref_grads = run(reference, x, params, states, lengths, dhs, dfinals)
    assert len(grads) == len(ref_grads) == 7 + peephole
    N, T, D, H, P = shape
    assert outs[0].shape == (N, T, P) and outs[1].shape == (N, P) and outs[2].shape == (N, H)
    assert grads[-1].shape == (H, P) and grads[4].shape == (N, P) and grads[5].shape == (N, H)
    for got, want in zip(outs + grads, ref_outs + ref_grads):
        assert got.dtype == dtype
        assert rel_err(got, want) < tol


def test_gradients_match_finite_differences(rng):
    x, params, states, lengths, dhs, dfinals = problem(rng, 3, 4, 2, 5, 3, peephole=True)
    R, S = dhs, dfinals

    def loss():
        outs, _ = run(rnnfast, x, params, states, lengths, dhs, dfinals)
        return sum(float(np.sum(o * w)) for o, w in zip(outs, [R, *S]))

    _, grads = run(rnnfast, x, params, states, lengths, dhs, dfinals)
    dx, dWx, dWh, db, dh0, dc0, dpeep, dWhr = grads
    for a, g in zip([x, *params[:3], *states, params[4], params[3]], [dx, dWx, dWh, db, dh0, dc0, dpeep, dWhr]):
        np.testing.assert_allclose(g, numerical_gradient(loss, a), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("ragged", [False, True])
def test_bits_do_not_depend_on_threads_and_inference_gives_the_same_bits(ragged, rng):
    x, params, states, lengths, dhs, dfinals = problem(rng, 37, 6, 16, 64, 24, dtype=np.float32)
    lengths = lengths if ragged else None
    base = run(rnnfast, x, params, states, lengths, dhs, dfinals, num_threads=1)
    for nt in (2, 3):
        again = run(rnnfast, x, params, states, lengths, dhs, dfinals, num_threads=nt)
        for a, b in zip(base[0] + base[1], again[0] + again[1]):
            np.testing.assert_array_equal(a, b)
    Wx, Wh, b, Whr = params
    inference = rnnfast.lstm_forward(x, Wx, Wh, b, *states, lengths=lengths, projection=Whr, need_grad=False)
    assert inference[-1] is None
    for a, b in zip(base[0], inference[:3]):
        np.testing.assert_array_equal(a, b)


def test_a_forced_serial_plan_gives_the_same_bits(rng):
    x, params, states, _, dhs, dfinals = problem(rng, 32, 5, 16, 64, 16, dtype=np.float32)
    Wx, Wh, b, Whr = params
    outs = []
    for schedule in ("serial", "owned_rows"):
        plan = StepPlan.choose(4, 32, 5, 64, np.float32, 2, D=16, schedule=schedule)
        hs, finals, cache = driver.sequence_forward(LSTM, x, Wx, Wh, [b], states, plan=plan, projection=Whr)
        outs.append([hs, *finals, *driver.sequence_backward(LSTM, dhs, cache, dfinals, "test")])
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


def test_single_steps_match_the_reference(rng):
    x, (Wx, Wh, b, Whr), (h, c), _, _, (dh, dc) = problem(rng, 4, 1, 3, 6, 2)
    got = {}
    for impl in (rnnfast, reference):
        h1, c1, cache = impl.lstm_step_forward(x[:, 0], h, c, Wx, Wh, b, projection=Whr)
        got[impl] = [h1, c1, *impl.lstm_step_backward(dh, dc, cache)]
    shapes = [(4, 2), (4, 6), (4, 3), (4, 2), (4, 6), (3, 24), (2, 24), (24,), (6, 2)]
    assert [a.shape for a in got[rnnfast]] == shapes
    for a, r in zip(got[rnnfast], got[reference]):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("impl", [rnnfast, reference], ids=lambda m: m.__name__)
def test_bad_projection_arguments_are_clear_errors(impl, rng):
    x, (Wx, Wh, b, Whr), (h0, c0), _, _, _ = problem(rng, 3, 4, 5, 6, 2)
    with pytest.raises(ValueError, match=r"Wh has shape \(6, 24\); expected \(2, 24\) = \(P, 4H\)"):
        impl.lstm_forward(x, Wx, np.zeros((6, 24)), b, projection=Whr)
    with pytest.raises(ValueError, match=r"projection must have 2 dimensions|projection has 1 dimension"):
        impl.lstm_forward(x, Wx, Wh, b, projection=Whr[:, 0])
    with pytest.raises(ValueError, match=r"h0 has shape \(3, 6\); expected \(3, 2\)"):
        impl.lstm_forward(x, Wx, Wh, b, np.zeros((3, 6)), projection=Whr)
    with pytest.raises(TypeError, match="projection has dtype float32"):
        impl.lstm_forward(x, Wx, Wh, b, projection=Whr.astype(np.float32))
    bad = Whr.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="projection contains NaN or Inf"):
        impl.lstm_forward(x, Wx, Wh, b, projection=bad)
    _, _, _, cache = impl.lstm_forward(x, Wx, Wh, b, h0, c0, projection=Whr)
    with pytest.raises(ValueError, match=r"dhs has shape \(3, 4, 6\); expected \(3, 4, 2\)"):
        impl.lstm_backward(np.zeros((3, 4, 6)), cache)
    with pytest.raises(ValueError, match=r"dcT has shape \(3, 2\); expected \(3, 6\)"):
        impl.lstm_backward(np.zeros((3, 4, 2)), cache, None, np.zeros((3, 2)))


def test_only_the_lstm_has_a_projection(rng):
    from rnnfast.cells import GRU
    x = rng.standard_normal((2, 3, 4))
    with pytest.raises(ValueError, match="projection: only the LSTM has one"):
        driver.sequence_forward(GRU, x, np.zeros((4, 15)), np.zeros((5, 15)), [np.zeros(15)] * 2, [None],
                                option=True, projection=np.zeros((5, 2)))
