"""Zoneout (``lstm_forward(..., zoneout=(z_c, z_h), zoneout_seed=s)``) where the cell-parametrized tests
(``cells.CELLS``' ``lstm_zoneout``, training masks) do not reach: the masks' law and determinism, evaluation
mode, chunks, validation, the layers."""
import numpy as np
import pytest

import rnnfast
import rnnfast.reference as reference
from rnnfast.reference.zoneout import masks

from test_gradcheck import numerical_gradient


def _lstm(rng, N=4, T=6, D=3, H=5, dtype=np.float64):
    return (rng.standard_normal((N, T, D)).astype(dtype), (rng.standard_normal((D, 4 * H)) * 0.4).astype(dtype),
            (rng.standard_normal((H, 4 * H)) * 0.4).astype(dtype), (rng.standard_normal(4 * H) * 0.1).astype(dtype))


def test_masks_have_the_rates_and_follow_the_seed():
    k_c, k_h = masks(11, 3, 64, 10, 256, 0.2, 0.7)
    assert abs(k_c.mean() - 0.2) < 0.01 and abs(k_h.mean() - 0.7) < 0.01
    assert np.array_equal(k_c, masks(11, 3, 64, 10, 256, 0.2, 0.7)[0])
    assert not np.array_equal(k_c, masks(12, 3, 64, 10, 256, 0.2, 0.7)[0])
    assert not np.array_equal(k_c, masks(11, 4, 64, 10, 256, 0.2, 0.7)[0])
    assert not masks(11, 3, 8, 10, 16, 0.0, 0.0)[0].any()


def test_zero_rates_give_the_plain_lstm(rng):
    x, Wx, Wh, b = _lstm(rng)
    plain = rnnfast.lstm_forward(x, Wx, Wh, b)
    for seed in (5, None):
        zoned = rnnfast.lstm_forward(x, Wx, Wh, b, zoneout=(0.0, 0.0), zoneout_seed=seed)
        for a, z in zip(plain[:3], zoned[:3]):
            np.testing.assert_allclose(z, a, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("seed", [7, None])
def test_kernels_match_the_reference_and_finite_differences(seed, rng):
    x, Wx, Wh, b = _lstm(rng)
    h0, c0 = rng.standard_normal((2, 4, 5))
    lengths = np.array([6, 2, 4, 5])
    dhs, dh, dc = rng.standard_normal((4, 6, 5)), rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    kw = dict(lengths=lengths, zoneout=(0.3, 0.45), zoneout_seed=seed)
    got = {}
    for impl in (rnnfast, reference):
        hs, hT, cT, cache = impl.lstm_forward(x, Wx, Wh, b, h0, c0, **kw)
        got[impl] = [hs, hT, cT, *impl.lstm_backward(dhs, cache, dh, dc)]
    for a, r in zip(got[rnnfast], got[reference]):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-14)

    def loss():
        hs, hT, cT, _ = rnnfast.lstm_forward(x, Wx, Wh, b, h0, c0, **kw)
        return float(np.sum(hs * dhs) + np.sum(hT * dh) + np.sum(cT * dc))

    for a, g in zip([x, Wx, Wh, b, h0, c0], got[rnnfast][3:]):
        np.testing.assert_allclose(g, numerical_gradient(loss, a), rtol=1e-5, atol=1e-7)


def test_evaluation_mode_chunks_equal_the_whole_sequence(rng):
    x, Wx, Wh, b = _lstm(rng, T=12)
    kw = dict(zoneout=(0.3, 0.45))
    whole = rnnfast.lstm_forward(x, Wx, Wh, b, **kw)
    h = c = None
    pieces = []
    for t0 in range(0, 12, 5):
        hs, h, c, _ = rnnfast.lstm_forward(x[:, t0:t0 + 5], Wx, Wh, b, h, c, **kw)
        pieces.append(hs)
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), whole[0], rtol=1e-12)


def test_training_masks_change_with_the_seed_and_not_with_the_threads(rng):
    x, Wx, Wh, b = _lstm(rng, N=37, T=5, D=16, H=64, dtype=np.float32)
    one = rnnfast.lstm_forward(x, Wx, Wh, b, zoneout=(0.5, 0.5), zoneout_seed=1, num_threads=1)[0]
    assert np.array_equal(one, rnnfast.lstm_forward(x, Wx, Wh, b, zoneout=(0.5, 0.5), zoneout_seed=1,
                                                    num_threads=2)[0])
    assert not np.array_equal(one, rnnfast.lstm_forward(x, Wx, Wh, b, zoneout=(0.5, 0.5), zoneout_seed=2)[0])


@pytest.mark.parametrize("impl", [rnnfast, reference], ids=lambda m: m.__name__)
def test_bad_zoneout_arguments_are_clear_errors(impl, rng):
    x, Wx, Wh, b = _lstm(rng)
    with pytest.raises(ValueError, match=r"zoneout's z_h must be in \[0, 1\); got 1.0"):
        impl.lstm_forward(x, Wx, Wh, b, zoneout=(0.1, 1.0))
    with pytest.raises(TypeError, match="zoneout must be a pair of rates"):
        impl.lstm_forward(x, Wx, Wh, b, zoneout=0.1)
    with pytest.raises(ValueError, match="zoneout_seed must be an int"):
        impl.lstm_forward(x, Wx, Wh, b, zoneout=(0.1, 0.1), zoneout_seed=-1)
    with pytest.raises(ValueError, match="zoneout_seed: given without zoneout"):
        impl.lstm_forward(x, Wx, Wh, b, zoneout_seed=3)
    with pytest.raises(ValueError, match="one LSTM variant at a time"):
        impl.lstm_forward(x, Wx, Wh, b, zoneout=(0.1, 0.1), peephole=np.zeros(15))
