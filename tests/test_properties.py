"""Property tests: kernels equal the NumPy reference over random shapes, dtypes, layouts and lengths.

CI runs the "ci" hypothesis profile; HYPOTHESIS_PROFILE=release runs thousands of examples.
"""
import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

from cells import CELLS, IMPLS, rel_err, run

TOL = {np.float64: 1e-10, np.float32: 1e-4}


def _layout(a, kind):
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "strided":
        big = np.zeros((2 * a.shape[0],) + a.shape[1:], dtype=a.dtype)
        big[::2] = a
        return big[::2]
    if kind == "reversed":
        return np.ascontiguousarray(a[::-1])[::-1]
    if kind == "negative":  # negative strides on every axis, not a copy
        return np.ascontiguousarray(a[tuple(slice(None, None, -1) for _ in a.shape)])[
            tuple(slice(None, None, -1) for _ in a.shape)]
    if kind == "unaligned":  # data one byte off the dtype's alignment
        u = np.frombuffer(bytearray(a.nbytes + 1), dtype=a.dtype, offset=1, count=a.size).reshape(a.shape)
        u[...] = a
        assert not u.flags.aligned
        return u
    if kind == "readonly":
        a = a.copy()
        a.flags.writeable = False
    return a


@example(cell=next(c for c in CELLS if c.name == "lstm_zoneout"), dtype=np.float32, N=1, T=2, D=1, H=1, layout="C",
         use_lengths=True, seed=2)  # dc0 = -4.6e-5 from terms of ~1e-2: the kernel 2.8e-4 off, the reference 2.3e-5
@given(
    cell=st.sampled_from(CELLS),
    dtype=st.sampled_from([np.float32, np.float64]),
    N=st.integers(1, 9), T=st.integers(1, 7), D=st.integers(1, 9), H=st.integers(1, 70),
    layout=st.sampled_from(["C", "fortran", "strided", "reversed", "negative", "unaligned", "readonly"]),
    use_lengths=st.booleans(), seed=st.integers(0, 2**31 - 1),
)
def test_kernel_equals_reference(cell, dtype, N, T, D, H, layout, use_lengths, seed):
    rng = np.random.default_rng(seed)
    x = _layout(rng.standard_normal((N, T, D)).astype(dtype), layout)
    params = [_layout(p, layout) if p.ndim > 1 or layout in ("negative", "unaligned") else p
              for p in cell.params(rng, D, H, dtype)]
    states = [_layout(s, layout) for s in cell.states(rng, N, H, dtype)]
    lengths = rng.integers(1, T + 1, size=N) if use_lengths else None
    dhs = rng.standard_normal((N, T, H)).astype(dtype)
    dfinals = cell.states(rng, N, H, dtype)
    k_out, k_grad = run(cell, IMPLS["kernel"], x, params, states, lengths, dhs, dfinals)
    r_out, r_grad = run(cell, IMPLS["reference"], x, params, states, lengths, dhs, dfinals)
    if dtype == np.float64:
        for k, r in zip(k_out + k_grad, r_out + r_grad):
            assert k.shape == r.shape and k.dtype == dtype
            assert rel_err(k, r) <= TOL[dtype]
        return
    # float32: random tiny problems can be ill-conditioned (a small gradient summing nearly cancelling
    # terms), where two float32 evaluations legitimately differ by more than 1e-4.  Judge the kernel
    # against a float64 evaluation of the same inputs: within 1e-4, or no worse than twice the float32
    # reference's own error, or -- for an array tiny next to the problem's other values, where the
    # reference can be right by luck -- within 1e-5 of the problem's largest value.
    up = lambda arrays: [np.array(a, dtype=np.float64) for a in arrays]  # noqa: E731
    t_out, t_grad = run(cell, IMPLS["reference"], np.array(x, dtype=np.float64), up(params), up(states), lengths,
                        dhs.astype(np.float64), up(dfinals))
    problem_scale = max(float(np.max(np.abs(t))) for t in t_out + t_grad if t.size)
    for k, r, t in zip(k_out + k_grad, r_out + r_grad, t_out + t_grad):
        assert k.shape == r.shape and k.dtype == dtype
        if rel_err(k, t) > max(TOL[dtype], 2 * rel_err(r, t)):
            assert np.max(np.abs(k - t)) <= 0.1 * TOL[dtype] * problem_scale
