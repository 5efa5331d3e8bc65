"""The compiled passes around the cells (``src/training.pyx``, ``rnnfast._core.products``) against their NumPy
twins, the NumPy backend's code: dropout's masks bit for bit, the softmax cross-entropy, the embedding's gradient,
Adam, the clipping norm and the output layer to rounding; every one with the same bits on 1, 2 and 3 threads, and the twins taking what the kernels refuse."""
import numpy as np
import pytest

import rnnfast
from rnnfast.layers import Embedding, LockedDropout, TimeAffine, TimeDropout, TimeSoftmaxWithLoss
from rnnfast.layers.basic import scatter_add_rows
from rnnfast.layers.dropout import keep_mask
from rnnfast.train import Adam, clip_grads_norm

RTOL = {np.float32: 1e-5, np.float64: 1e-12}
THREADS = [1, 2, 3]
BIG = (37, 41, 67)  # 101,639 elements: several threads' worth (training.pyx's MIN_ELEMENTS_PER_THREAD)


def _on_numpy(f, *args):
    with rnnfast.backend.use("numpy"):
        return f(*args)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9])
def test_dropout_mask_equals_its_numpy_twin_bit_for_bit(dtype, p):
    key = 2**64 - 5000  # the counters wrap past 2^64 inside the mask
    mask = keep_mask(key, p, BIG, dtype)
    np.testing.assert_array_equal(mask, _on_numpy(keep_mask, key, p, BIG, dtype))
    assert mask.dtype == dtype and mask.shape == BIG
    kept = mask != 0
    assert np.all(mask[kept] == dtype(1 / (1 - p)))
    assert abs(kept.mean() - (1 - p)) < 0.01
    assert not np.array_equal(mask, keep_mask(key + 1, p, BIG, dtype)) or p == 0.0


def test_dropout_mask_rejects_bad_arguments():
    with pytest.raises(ValueError, match="dropout p must be a number in"):
        keep_mask(1, 1.0, (3,), np.float32)
    for key in (-1, 2**64, 1.5, True):
        with pytest.raises(ValueError, match="key must be an integer"):
            keep_mask(key, 0.5, (3,), np.float32)


def test_dropout_mask_does_not_depend_on_the_thread_count(monkeypatch):
    masks = []
    for nt in THREADS:
        monkeypatch.setenv("RNNFAST_NUM_THREADS", str(nt))
        masks.append(keep_mask(123, 0.3, BIG, np.float32))
    for m in masks[1:]:
        np.testing.assert_array_equal(m, masks[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_time_dropout_draws_and_multiplies_in_one_pass_with_its_twins_bits(dtype, monkeypatch):
    # The compiled forward and backward (``dropout_times``: the mask drawn from the key as the product goes, not
    # stored) against the NumPy backend's mask and product, on 1, 2 and 3 threads; a read-only input is read,
    # not copied.
    x = np.random.default_rng(1).standard_normal(BIG).astype(dtype)
    x.flags.writeable = False
    dout = np.random.default_rng(2).standard_normal(BIG).astype(dtype)
    twin = TimeDropout(0.3, rng=np.random.default_rng(7))
    expected = _on_numpy(twin.forward, x)
    expected_grad = _on_numpy(twin.backward, dout)
    for nt in THREADS:
        monkeypatch.setenv("RNNFAST_NUM_THREADS", str(nt))
        layer = TimeDropout(0.3, rng=np.random.default_rng(7))
        np.testing.assert_array_equal(layer.forward(x), expected)
        np.testing.assert_array_equal(layer.backward(dout), expected_grad)
        assert layer._mask is None  # drawn twice, never stored ...
        np.testing.assert_array_equal(layer.mask, twin.mask)  # ... and made from its key when asked for
    assert np.array_equal(expected, x * twin.mask) and np.count_nonzero(twin.mask) < x.size


def test_dropout_passes_reject_arrays_of_other_sizes():
    from rnnfast._core.training_passes import _training
    a, b = np.ones(4, np.float32), np.ones(5, np.float32)
    with pytest.raises(ValueError, match="times: a, b, out have 4, 5, 4 elements"):
        _training.times(a, b, a.copy(), 1)
    with pytest.raises(ValueError, match="dropout_times: x has 4 elements, out 5; expected the same number"):
        _training.dropout_times(1, 0, 1.0, a, b, 1)


@pytest.mark.parametrize("layer", [TimeDropout, LockedDropout])
def test_dropout_layers_repeat_with_the_seed_and_scale_the_gradient_by_the_mask(layer):
    x = np.random.default_rng(0).standard_normal((5, 7, 300)).astype(np.float32)
    a, b = layer(0.25, rng=np.random.default_rng(4)), layer(0.25, rng=np.random.default_rng(4))
    out = a.forward(x)
    np.testing.assert_array_equal(out, _on_numpy(b.forward, x))
    np.testing.assert_array_equal(a.backward(x), x * a.mask)
    assert not np.array_equal(a.forward(x), out)  # a new key per call


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_step_equals_the_numpy_update(dtype):
    rng = np.random.default_rng(1)
    shapes = [BIG, (300, 7), (5,), (1,)]
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ours, theirs = [p.copy() for p in params], [p.copy() for p in params]
    opt, ref = Adam(lr=3e-3), Adam(lr=3e-3)
    for _ in range(4):
        grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
        opt.update(ours, grads)
        _on_numpy(ref.update, theirs, grads)
    for p, q, p0 in zip(ours, theirs, params):
        np.testing.assert_allclose(p, q, rtol=RTOL[dtype], atol=RTOL[dtype] * 0.1)  # parameters of size ~1
        assert not np.allclose(p, p0, rtol=0, atol=1e-4)  # it moved
    for name in ("m", "v"):
        for a, b in zip(opt.slots[name], ref.slots[name]):
            np.testing.assert_allclose(a, b, rtol=RTOL[dtype], atol=RTOL[dtype] * 0.1)


def test_adam_does_not_depend_on_the_thread_count(monkeypatch):
    rng = np.random.default_rng(2)
    start, grads = rng.standard_normal(BIG).astype(np.float32), rng.standard_normal(BIG).astype(np.float32)
    results = []
    for nt in THREADS:
        monkeypatch.setenv("RNNFAST_NUM_THREADS", str(nt))
        p, opt = start.copy(), Adam(lr=1e-2)
        for _ in range(3):
            opt.update([p], [grads])
        results.append(p)
    for p in results[1:]:
        np.testing.assert_array_equal(p, results[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_over_all_parameters_at_once_has_each_ones_bits(dtype, monkeypatch):
    """One parallel region for every parameter (tasks cut across them) against one call per parameter, on 1-3
    threads; and the squared norms that clipping reads, all at once against one by one."""
    from rnnfast._core import training_passes
    rng = np.random.default_rng(4)
    shapes = [(70_000,), (0,), (300, 7), (16_384,), (1,), (5, 40_000)]  # across and on task boundaries
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
    one_by_one, moments = [p.copy() for p in params], [[np.zeros_like(p) for p in params] for _ in range(2)]
    for _ in range(3):
        for p, g, m, v in zip(one_by_one, grads, *moments):
            training_passes.adam_update([p], [g], [m], [v], 0.9, 0.999, 1e-2, 1e-8)
    assert not np.array_equal(one_by_one[0], params[0])  # it moved
    for nt in THREADS:
        monkeypatch.setenv("RNNFAST_NUM_THREADS", str(nt))
        together, moments = [p.copy() for p in params], [[np.zeros_like(p) for p in params] for _ in range(2)]
        for _ in range(3):
            training_passes.adam_update(together, grads, *moments, 0.9, 0.999, 1e-2, 1e-8)
        for a, b in zip(together, one_by_one):
            np.testing.assert_array_equal(a, b)
        sums = training_passes.sums_of_squares(grads)
        assert sums == [training_passes.sums_of_squares([g])[0] for g in grads]
        assert sums[0] == pytest.approx(float(np.sum(grads[0].astype(np.float64) ** 2)), rel=1e-12)


def test_adam_takes_strided_and_mixed_arrays_on_the_numpy_path():
    rng = np.random.default_rng(3)
    base = rng.standard_normal((40, 60))
    strided, ref = base[:, ::2], base[:, ::2].copy()
    g = rng.standard_normal(strided.shape).astype(np.float32)  # another dtype than the parameter
    opt, opt_ref = Adam(), Adam()
    opt.update([strided], [g])
    _on_numpy(opt_ref.update, [ref], [g])
    np.testing.assert_array_equal(strided, ref)
    np.testing.assert_array_equal(base[:, 1::2], np.random.default_rng(3).standard_normal((40, 60))[:, 1::2])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clipping_norm_equals_numpy_and_does_not_depend_on_threads(dtype, monkeypatch):
    rng = np.random.default_rng(5)
    grads = [rng.standard_normal(s).astype(dtype) for s in [BIG, (33, 9), (4,)]]
    expected = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads))
    norms = []
    for nt in THREADS:
        monkeypatch.setenv("RNNFAST_NUM_THREADS", str(nt))
        norms.append(clip_grads_norm([g.copy() for g in grads], 1e30))
    assert norms[0] == pytest.approx(expected, rel=1e-12)
    assert norms == [norms[0]] * len(THREADS)
    clipped = [g.copy() for g in grads]
    assert clip_grads_norm(clipped, 1.0) == norms[0]
    np.testing.assert_allclose(np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in clipped)), 1.0, rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("D, V", [(256, 96), (300, 500), (5, 7)])
def test_affine_products_equal_numpy(dtype, D, V, monkeypatch):
    rng = np.random.default_rng(6)
    W, b = rng.standard_normal((D, V)).astype(dtype), rng.standard_normal(V).astype(dtype)
    x = rng.standard_normal((9, 31, D)).astype(dtype)
    d = rng.standard_normal((9, 31, V)).astype(dtype)
    ref = TimeAffine(W, b)
    out_ref = _on_numpy(ref.forward, x)
    dx_ref = _on_numpy(ref.backward, d)
    runs = []
    for nt in THREADS:
        monkeypatch.setenv("RNNFAST_NUM_THREADS", str(nt))
        layer = TimeAffine(W, b)
        out = layer.forward(x)
        runs.append((out, layer.backward(d), layer.grads[0].copy(), layer.grads[1].copy()))
    out, dx, dW, db = runs[0]
    np.testing.assert_allclose(out, out_ref, rtol=RTOL[dtype] * 10, atol=RTOL[dtype] * 10)
    np.testing.assert_allclose(dx, dx_ref, rtol=RTOL[dtype] * 10, atol=RTOL[dtype] * 10)
    np.testing.assert_allclose(dW, ref.grads[0], rtol=RTOL[dtype] * 10, atol=RTOL[dtype] * 100)
    np.testing.assert_array_equal(db, ref.grads[1])
    assert out.shape == (9, 31, V) and dx.shape == x.shape and out.dtype == dx.dtype == dtype
    for run in runs[1:]:
        for a, b_ in zip(run, runs[0]):
            np.testing.assert_array_equal(a, b_)


def test_affine_takes_a_strided_input():
    rng = np.random.default_rng(7)
    W, b = rng.standard_normal((6, 4)), rng.standard_normal(4)
    x = rng.standard_normal((3, 5, 12))[:, :, ::2]
    layer = TimeAffine(W, b)
    np.testing.assert_allclose(layer.forward(x), x @ W + b, rtol=1e-12)
    d = rng.standard_normal((3, 5, 4))
    np.testing.assert_allclose(layer.backward(d), d @ W.T, rtol=1e-12)
    np.testing.assert_allclose(layer.grads[0], x.reshape(-1, 6).T @ d.reshape(-1, 4), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("V", [1, 7, 96, 300])
def test_softmax_cross_entropy_equals_its_numpy_twin(dtype, V, monkeypatch):
    rng = np.random.default_rng(8)
    scores = (rng.standard_normal((9, 13, V)) * 4).astype(dtype)
    scores[0, 0] += 80  # large scores: the row's maximum is taken out first
    targets = rng.integers(0, V, (9, 13))
    targets[2, 3], targets[5] = -1, -1  # ignored steps, and a whole ignored sequence
    ref = TimeSoftmaxWithLoss()
    loss_ref = _on_numpy(ref.forward, scores, targets)
    d_ref = _on_numpy(ref.backward, 0.5)
    runs = []
    for nt in THREADS:
        monkeypatch.setenv("RNNFAST_NUM_THREADS", str(nt))
        layer = TimeSoftmaxWithLoss()
        runs.append((layer.forward(scores, targets), layer.backward(0.5)))
    loss, d = runs[0]
    assert loss == pytest.approx(loss_ref, rel=RTOL[dtype])
    np.testing.assert_allclose(d, d_ref, rtol=RTOL[dtype] * 10, atol=RTOL[dtype] * 1e-2)
    assert d.dtype == dtype and d.shape == scores.shape and np.all(d[5] == 0) and np.all(d[2, 3] == 0)
    for loss_n, d_n in runs[1:]:
        assert loss_n == loss
        np.testing.assert_array_equal(d_n, d)


def test_softmax_cross_entropy_reads_a_strided_read_only_input_and_leaves_it_alone():
    rng = np.random.default_rng(9)
    base = rng.standard_normal((4, 6, 20))
    scores = base[:, :, ::2]
    scores.flags.writeable = False
    kept = scores.copy()
    targets = rng.integers(0, 10, (4, 6))
    layer, ref = TimeSoftmaxWithLoss(), TimeSoftmaxWithLoss()
    assert layer.forward(scores, targets) == pytest.approx(_on_numpy(ref.forward, kept, targets), rel=1e-12)
    np.testing.assert_allclose(layer.backward(), _on_numpy(ref.backward), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(scores, kept)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_embedding_gradient_adds_repeated_ids_as_numpy_does(dtype, monkeypatch):
    rng = np.random.default_rng(10)
    V, D = 20, 70  # D not a whole number of the pass's 16-column blocks
    ids = rng.integers(0, V, (32, 64))
    ids[0, :10] = 3  # one id many times
    dout = rng.standard_normal((32, 64, D)).astype(dtype)
    ref = Embedding(rng.standard_normal((V, D)).astype(dtype))
    _on_numpy(ref.forward, ids)
    _on_numpy(ref.backward, dout)
    grads = []
    for nt in THREADS:
        monkeypatch.setenv("RNNFAST_NUM_THREADS", str(nt))
        layer = Embedding(ref.params[0])
        layer.forward(ids)
        layer.backward(dout)
        grads.append(layer.grads[0])
    np.testing.assert_allclose(grads[0], ref.grads[0], rtol=RTOL[dtype] * 10, atol=RTOL[dtype] * 10)
    assert np.all(grads[0][np.setdiff1d(np.arange(V), ids)] == 0)
    for g in grads[1:]:
        np.testing.assert_array_equal(g, grads[0])


def test_scatter_add_rows_keeps_numpys_index_rules():
    out, rows = np.zeros((4, 3)), np.ones((2, 3))
    scatter_add_rows(out, np.array([-1, 0]), rows)  # a negative id counts from the end, as in NumPy
    np.testing.assert_array_equal(out[[0, 3]], np.ones((2, 3)))
    with pytest.raises(IndexError):
        scatter_add_rows(out, np.array([4, 0]), rows)


def test_adam_broadcasts_a_gradient_as_numpy_does():
    p, ref = np.ones(5, np.float32), np.ones(5, np.float32)
    g = np.full(1, 0.5, np.float32)  # one value for every element: NumPy's path
    Adam(lr=0.1).update([p], [g])
    _on_numpy(Adam(lr=0.1).update, [ref], [g])
    np.testing.assert_array_equal(p, ref)
    assert np.all(p < 1)


def test_compiled_passes_refuse_mismatched_arrays_with_named_errors():
    from rnnfast._core.dispatch import kernel_module
    training = kernel_module("training")
    a, b = np.zeros(4, np.float32), np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"adam_update: p, g, m, v \[0\] have 4, 3"):
        training.adam_update([a], [b], [a], [a], 0.9, 0.999, 1e-3, 1e-8, 1)
    with pytest.raises(ValueError, match="adam_update: 1, 2, 1, 1 arrays of p, g, m, v"):
        training.adam_update([a], [a, a], [a], [a], 0.9, 0.999, 1e-3, 1e-8, 1)
    with pytest.raises(ValueError, match="adam_update: arrays of float64 and float32"):
        training.adam_update([a], [a.astype(np.float64)], [a], [a], 0.9, 0.999, 1e-3, 1e-8, 1)
    with pytest.raises(ValueError, match="sum_of_squares: arrays of float64 and float32"):
        training.sum_of_squares([a, a.astype(np.float64)], 1)
    probs, scores = np.zeros((2, 5), np.float32), np.zeros((2, 5), np.float32)
    with pytest.raises(ValueError, match=r"targets\[1\] = 5; expected 0..4 or -1"):
        training.softmax_cross_entropy(scores, np.array([0, 5], np.intp), -1, probs, 1)
    with pytest.raises(ValueError, match="3 targets"):
        training.softmax_cross_entropy_backward(probs, np.zeros(3, np.intp), -1, 1.0, probs.copy(), 1)
    with pytest.raises(ValueError, match=r"ids\[0\] = 7"):
        training.scatter_add_rows(np.zeros((4, 3)), np.array([7], np.intp), np.zeros((1, 3)), 1)
    with pytest.raises(ValueError, match=r"rows has shape \(2, 3\); expected \(1, 3\)"):
        training.scatter_add_rows(np.zeros((4, 3)), np.array([1], np.intp), np.zeros((2, 3)), 1)
