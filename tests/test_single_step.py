"""Single-step kernels equal one step of the sequence kernels and their NumPy twins."""
import numpy as np
import pytest

import rnnfast
import rnnfast.reference as reference
from cells import rel_err

IMPLS = [rnnfast, reference]


@pytest.mark.parametrize("impl", IMPLS, ids=["kernel", "reference"])
def test_lstm_step(impl, rng):
    N, D, H = 3, 4, 5
    x, h, c = rng.standard_normal((N, D)), rng.standard_normal((N, H)), rng.standard_normal((N, H))
    Wx, Wh, b = rng.standard_normal((D, 4 * H)), rng.standard_normal((H, 4 * H)), rng.standard_normal(4 * H)
    h1, c1, cache = impl.lstm_step_forward(x, h, c, Wx, Wh, b)
    hs, hT, cT, _ = reference.lstm_forward(x[:, None], Wx, Wh, b, h, c)
    assert rel_err(h1, hT) < 1e-12 and rel_err(c1, cT) < 1e-12
    dh, dc = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    got = impl.lstm_step_backward(dh, dc, cache)
    _, _, _, rc = reference.lstm_forward(x[:, None], Wx, Wh, b, h, c)
    dx, dWx, dWh, db, dh0, dc0 = reference.lstm_backward(np.zeros((N, 1, H)), rc, dh, dc)
    for a, e in zip(got, (dx[:, 0], dh0, dc0, dWx, dWh, db)):
        assert rel_err(a, e) < 1e-12


@pytest.mark.parametrize("impl", IMPLS, ids=["kernel", "reference"])
@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_step(impl, reset_after, rng):
    N, D, H = 3, 4, 5
    x, h = rng.standard_normal((N, D)), rng.standard_normal((N, H))
    Wx, Wh = rng.standard_normal((D, 3 * H)), rng.standard_normal((H, 3 * H))
    bx, bh = rng.standard_normal(3 * H), rng.standard_normal(3 * H)
    h1, cache = impl.gru_step_forward(x, h, Wx, Wh, bx, bh, reset_after=reset_after)
    _, hT, rc = reference.gru_forward(x[:, None], Wx, Wh, bx, bh, h, reset_after=reset_after)
    assert rel_err(h1, hT) < 1e-12
    dh = rng.standard_normal((N, H))
    got = impl.gru_step_backward(dh, cache)
    dx, dWx, dWh, dbx, dbh, dh0 = reference.gru_backward(np.zeros((N, 1, H)), rc, dh)
    for a, e in zip(got, (dx[:, 0], dh0, dWx, dWh, dbx, dbh)):
        assert rel_err(a, e) < 1e-12


@pytest.mark.parametrize("impl", IMPLS, ids=["kernel", "reference"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_step(impl, nonlinearity, rng):
    N, D, H = 3, 4, 5
    x, h = rng.standard_normal((N, D)), rng.standard_normal((N, H))
    Wx, Wh, b = rng.standard_normal((D, H)), rng.standard_normal((H, H)), rng.standard_normal(H)
    h1, cache = impl.rnn_step_forward(x, h, Wx, Wh, b, nonlinearity)
    _, hT, rc = reference.rnn_forward(x[:, None], Wx, Wh, b, h, nonlinearity)
    assert rel_err(h1, hT) < 1e-12
    dh = rng.standard_normal((N, H))
    got = impl.rnn_step_backward(dh, cache)
    dx, dWx, dWh, db, dh0 = reference.rnn_backward(np.zeros((N, 1, H)), rc, dh)
    for a, e in zip(got, (dx[:, 0], dh0, dWx, dWh, db)):
        assert rel_err(a, e) < 1e-12


def test_generation_loop_equals_sequence_forward(rng):
    """Streaming: token-by-token step kernels reproduce the sequence kernel."""
    N, T, D, H = 2, 6, 3, 4
    x = rng.standard_normal((N, T, D)).astype(np.float32)
    Wx, Wh = rng.standard_normal((D, 4 * H)).astype(np.float32), rng.standard_normal((H, 4 * H)).astype(np.float32)
    b = rng.standard_normal(4 * H).astype(np.float32)
    hs, _, _, _ = rnnfast.lstm_forward(x, Wx, Wh, b)
    h = c = np.zeros((N, H), np.float32)
    for t in range(T):
        h, c, _ = rnnfast.lstm_step_forward(x[:, t], h, c, Wx, Wh, b)
        np.testing.assert_allclose(h, hs[:, t], rtol=1e-6, atol=1e-7)
