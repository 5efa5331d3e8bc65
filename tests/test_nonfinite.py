"""``check_finite=False``: NaN and Inf go through the kernels as through NumPy.

With the check off, a NaN lands where the NumPy reference puts it (the same elements of every output and
gradient are NaN, the others agree as usual), on every path of the kernels (BLAS, the packed micro-kernel,
the blocked step weights, ragged batches, one and two threads), and the kernels stay memory-safe:
``.ci/sanitize`` runs this file under AddressSanitizer and UndefinedBehaviorSanitizer.  With the check on
(the default) the same inputs are a ValueError naming the argument."""
import numpy as np
import pytest

import rnnfast
import rnnfast.reference as reference
from cells import CELLS, problem
from rnnfast._core import driver
from rnnfast._core.plan import StepPlan

TOL = {np.float64: 1e-10, np.float32: 2e-4}
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # NumPy, on NaN


def _poison(a, index, value=np.nan):
    a = a.copy()
    a[index] = value
    return a


def _kernel(cell, x, params, states, lengths, dhs, dfinals, **kw):
    hs, finals, cache = driver.sequence_forward(cell.spec, x, params[0], params[1], cell.weights(params)[2:], states,
                                                lengths, cell.option, check_finite=False,
                                                **{k: v for k, v in cell.keywords(params).items()
                                                   if k != cell.spec.option}, **kw)
    grads = driver.sequence_backward(cell.spec, dhs, cache, dfinals, "rnnfast", check_finite=False)
    return [hs, *finals], list(grads)


def _reference(cell, x, params, states, lengths, dhs, dfinals):
    fn = getattr(reference, f"{cell.spec.name}_forward")
    hs, *finals, cache = fn(x, *cell.weights(params), *states, lengths=lengths, check_finite=False,
                            **cell.keywords(params))
    grads = getattr(reference, f"{cell.spec.name}_backward")(dhs, cache, *dfinals, check_finite=False)
    return [hs, *finals], list(grads)


def _same_nans_and_close(got, want, dtype):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
        ok = ~np.isnan(w)
        scale = max(float(np.max(np.abs(w[ok]), initial=0.0)), 1e-30)
        assert float(np.max(np.abs(g[ok] - w[ok]), initial=0.0)) <= TOL[dtype] * scale


def _case(cell, dtype, N=6, T=5, D=7, H=8, seed=0):
    rng = np.random.default_rng(seed)
    x, params, states, lengths, dhs, dfinals = problem(cell, rng, N, T, D, H, dtype)
    return x, params, states, lengths, dhs, dfinals


WHERE = ["x", "h0", "Wx", "Wh", "bias", "dhs", "dhT"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("ragged", [False, True], ids=["full", "ragged"])
@pytest.mark.parametrize("cell", CELLS, ids=str)
def test_a_nan_lands_where_numpy_puts_it(cell, ragged, where, dtype):
    x, params, states, lengths, dhs, dfinals = _case(cell, dtype)
    if not ragged:
        lengths = None
    else:
        lengths[1] = 2  # the poisoned row below runs its steps 0 and 1
    if where == "x":
        x = _poison(x, (1, 1, 3))
    elif where == "h0":
        states = [_poison(states[0], (1, 2))] + states[1:]
    elif where == "Wx":
        params = [_poison(params[0], (2, 3))] + params[1:]
    elif where == "Wh":
        params = [params[0], _poison(params[1], (4, 5))] + params[2:]
    elif where == "bias":
        params = params[:2] + [_poison(params[2], 1)] + params[3:]
    elif where == "dhs":
        dhs = _poison(dhs, (1, 1, 2))
    else:
        dfinals = [_poison(dfinals[0], (3, 4))] + dfinals[1:]
    want = _reference(cell, x, params, states, lengths, dhs, dfinals)
    for num_threads in (1, 2):
        got = _kernel(cell, x, params, states, lengths, dhs, dfinals, num_threads=num_threads)
        for g, w in zip(got, want):
            _same_nans_and_close(g, w, dtype)
    assert any(np.isnan(a).any() for part in want for a in part), "the NaN reached no output"


PATHS = [dict(step_weights="as_given"), dict(step_weights="microkernel"), dict(step_weights="blocked", units=16),
         dict(schedule="serial"), dict(schedule="shared_tiles", rows=4)]


@pytest.mark.parametrize("force", PATHS, ids=lambda f: "-".join(f"{k}={v}" for k, v in f.items()))
@pytest.mark.parametrize("cell", CELLS, ids=str)
def test_nan_and_inf_on_every_path_of_the_kernels(cell, force):
    dtype = np.float32
    x, params, states, lengths, dhs, dfinals = _case(cell, dtype, N=9, T=4, D=5, H=48, seed=3)
    lengths[2] = 4  # the NaN's row runs to the end
    x = _poison(_poison(x, (2, 1, 0)), (5, 0, 4), np.inf)
    dhs = _poison(dhs, (7, 3, 1), -np.inf)
    try:
        plan = StepPlan.choose(cell.gates, 9, 4, 48, np.dtype(dtype), 2, D=5, **force)
    except ValueError as exc:  # a path this build or CPU does not have
        pytest.skip(str(exc))
    outs, grads = _kernel(cell, x, params, states, lengths, dhs, dfinals, plan=plan)
    ref_outs, _ = _reference(cell, x, params, states, lengths, dhs, dfinals)
    for g, w in zip(outs, ref_outs):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
    assert np.isnan(outs[0][2, 1:]).all() and not np.isnan(outs[0][0]).any()
    assert all(g.shape == w.shape for g, w in zip(grads, _reference(cell, x, params, states, lengths, dhs,
                                                                           dfinals)[1]))


@pytest.mark.parametrize("cell", CELLS, ids=str)
def test_single_steps_let_nan_through(cell):
    dtype = np.float64
    x, params, states, _, dhs, dfinals = _case(cell, dtype)
    x1 = _poison(x[:, 0], (2, 1))
    opt = cell.keywords(params)
    name = cell.spec.name
    outs = {}
    for impl in (rnnfast, reference):
        *nxt, cache = getattr(impl, f"{name}_step_forward")(x1, *states, *cell.weights(params), check_finite=False,
                                                            **opt)
        grads = getattr(impl, f"{name}_step_backward")(*dfinals, cache, check_finite=False)
        outs[impl] = [*nxt, *grads]
    for g, w in zip(outs[rnnfast], outs[reference]):
        _same_nans_and_close(g, w, dtype)
    assert np.isnan(outs[rnnfast][0][2]).all() and not np.isnan(outs[rnnfast][0][0]).any()


@pytest.mark.parametrize("cell", CELLS, ids=str)
def test_by_default_non_finite_input_is_a_clear_error(cell):
    x, params, states, _, dhs, dfinals = _case(cell, np.float64)
    opt = cell.keywords(params)
    params = cell.weights(params)
    fwd = getattr(rnnfast, f"{cell.spec.name}_forward")
    bwd = getattr(rnnfast, f"{cell.spec.name}_backward")
    with pytest.raises(ValueError, match="x contains NaN or Inf"):
        fwd(_poison(x, (0, 0, 0)), *params, **opt)
    with pytest.raises(ValueError, match="Wh contains NaN or Inf"):
        fwd(x, params[0], _poison(params[1], (0, 0), np.inf), *params[2:], **opt)
    _, *_, cache = fwd(x, *params, **opt)
    with pytest.raises(ValueError, match="dhs contains NaN or Inf"):
        bwd(_poison(dhs, (0, 0, 0)), cache)
    with pytest.raises(TypeError, match="check_finite must be True or False"):
        fwd(x, *params, check_finite="no", **opt)
    with pytest.raises(TypeError, match="check_finite must be True or False"):
        bwd(dhs, cache, check_finite=None)


WEIGHT_PATHS = [dict(step_weights="microkernel"), dict(step_weights="as_given"),
                dict(step_weights="blocked", units=16), dict(step_weights="microkernel", all_step_products="blas")]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("force", WEIGHT_PATHS, ids=lambda f: "-".join(f"{k}={v}" for k, v in f.items()))
@pytest.mark.parametrize("name", ["Wx", "Wh"])
@pytest.mark.parametrize("cell", CELLS, ids=str)
def test_weights_are_checked_where_they_are_packed(cell, name, force, dtype):
    """The plain cells test Wh in the pass that packs it where the steps run on the micro-kernel, and Wx and Wh
    alone elsewhere, all in one call (``kernels.prepare_forward``): a NaN or an Inf anywhere, the last value
    included, is a ValueError naming the weight on every path, before the kernel runs; with
    ``check_finite=False`` the call runs."""
    N, T, D, H = 8, 4, 300, 48  # 32 rows: the products on the micro-kernel where the plan says so
    x, params, states, lengths, dhs, dfinals = _case(cell, dtype, N=N, T=T, D=D, H=H, seed=5)
    try:
        plan = StepPlan.choose(cell.gates, N, T, H, np.dtype(dtype), 2, D=D, **force)
    except ValueError as exc:  # a path this build or CPU does not have
        pytest.skip(str(exc))
    which = 0 if name == "Wx" else 1
    W = params[which]
    keywords = {k: v for k, v in cell.keywords(params).items() if k != cell.spec.option}

    def forward(params, check_finite=True):
        return driver.sequence_forward(cell.spec, x, params[0], params[1], cell.weights(params)[2:], states, lengths,
                                       cell.option, plan=plan, check_finite=check_finite, **keywords)

    for where, value in [((0, 0), np.nan), ((W.shape[0] - 1, W.shape[1] - 1), np.inf), ((W.shape[0] - 3, 17), -np.inf)]:
        poisoned = list(params)
        poisoned[which] = _poison(W, where, value)
        with pytest.raises(ValueError, match=f"{name} contains NaN or Inf"):
            forward(poisoned)
        hs = forward(poisoned, check_finite=False)[0]
        assert hs.shape == (N, T, H)
    assert np.isfinite(forward(params)[0]).all()


def test_the_kernel_refuses_panels_that_were_not_packed(monkeypatch):
    """``kernels.forward`` reads the weights' panels that ``kernels.prepare_forward`` packed: a driver that
    skipped it gets a ValueError, not garbage."""
    cell = next(c for c in CELLS if c.spec.name == "lstm")
    x, params, states, lengths, _, _ = _case(cell, np.float32, N=8, T=4, D=48, H=48)
    try:
        plan = StepPlan.choose(cell.gates, 8, 4, 48, np.dtype(np.float32), 1, D=48, step_weights="microkernel")
    except ValueError as exc:  # a build without the micro-kernel
        pytest.skip(str(exc))

    class Unpacked:
        def __getattr__(self, attr):
            return getattr(driver_kernels, attr)

        @staticmethod
        def prepare_forward(buf, plan, count):
            return False, False, True

    driver_kernels = driver._kernels
    monkeypatch.setattr(driver, "_kernels", Unpacked())
    with pytest.raises(ValueError, match="were not packed"):
        driver.sequence_forward(cell.spec, x, params[0], params[1], cell.weights(params)[2:], states, lengths,
                                plan=plan)
