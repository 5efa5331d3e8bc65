"""The products over all steps (input projection, dx, dWx, dWh): ``all_steps.all_steps_gemm``.

Builds with the micro-kernel compute them on it (``packed_tiled_gemm``; float64 on its float64 kernels) once every
side is at least ``microkernel_min_side``; each thread packs its own part of the operands.  These tests call the
product alone (``_mathfuncs.product``) in both dtypes on every edge the packing has -- a last sliver of fewer than 6
rows, a last panel narrower than a panel (16 floats, 8 doubles), k-blocks of uneven depth (256 deep at most),
both transposes, a bias -- and check it against NumPy in float64, bitwise across thread counts, and through whole
cells.
"""
import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

import rnnfast
from rnnfast._core import dispatch as _dispatch

from cells import CELLS, IMPLS, problem, rel_err, run

CELL_IDS = [c.name for c in CELLS]
MIN_SIDE = _dispatch.kernel_module("kernels").CONSTANTS["microkernel_min_side"]
FAR_C_BYTES = _dispatch.kernel_module("kernels").CONSTANTS["far_c_bytes"]


@pytest.fixture(scope="module")
def funcs():
    if not _dispatch.avx2_available():
        pytest.skip("no AVX2 + FMA build on this machine")
    module = importlib.import_module("rnnfast._core.mathfuncs_avx2")
    if not module.PACKED_GEMM:
        pytest.skip("this build has no packed micro-kernel")
    return module


DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])


def operands(rng, m, n, k, trans_a, trans_b, dtype=np.float32):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    return a, b


def exact(a, b, trans_a, trans_b, bias=None):
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    c = (a64.T if trans_a else a64) @ (b64.T if trans_b else b64)
    return c if bias is None else c + bias


SHAPES = [  # (m, n, k): whole and partial slivers (6 rows), panels (16 or 8 columns), k-blocks (256 deep)
    (1, 1, 1), (5, 15, 7), (6, 16, 256), (7, 17, 257), (12, 8, 256), (13, 9, 257), (133, 33, 300), (264, 272, 513),
    (301, 100, 1030),
]


@DTYPES
@pytest.mark.parametrize("trans_a", [False, True], ids=["A", "At"])
@pytest.mark.parametrize("trans_b", [False, True], ids=["B", "Bt"])
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_packed_product_matches_float64(funcs, rng, m, n, k, trans_a, trans_b, dtype):
    a, b = operands(rng, m, n, k, trans_a, trans_b, dtype)
    bias = rng.standard_normal(n).astype(dtype)
    for with_bias in (None, bias):
        c = funcs.product(a, b, trans_a, trans_b, with_bias, num_threads=2, path="packed")
        want = exact(a, b, trans_a, trans_b, with_bias)
        assert c.dtype == dtype and c.shape == (m, n)
        # sums of k products: error ~ sqrt(k) * eps * |a||b| per element
        scale = np.sqrt(k) * np.abs(a).max() * np.abs(b).max()
        tol = 1e-6 if dtype == np.float32 else 1e-14
        assert np.abs(c - want).max() <= tol * (scale + 1)


@DTYPES
@pytest.mark.parametrize("m,n,k", [(7, 17, 257), (301, 100, 1030), (1000, 40, 70), (20, 700, 600)])
def test_packed_product_bits_do_not_depend_on_threads(funcs, rng, m, n, k, dtype):
    for trans_a, trans_b in [(False, False), (False, True), (True, False)]:
        a, b = operands(rng, m, n, k, trans_a, trans_b, dtype)
        first = funcs.product(a, b, trans_a, trans_b, num_threads=1, path="packed")
        for nt in (2, 3, 4, 7):
            np.testing.assert_array_equal(first, funcs.product(a, b, trans_a, trans_b, num_threads=nt,
                                                               path="packed"))


@DTYPES
@pytest.mark.parametrize("trans_a", [False, True], ids=["A", "At"])
def test_a_row_s_bits_do_not_depend_on_how_the_rows_are_cut_into_slivers(funcs, rng, trans_a, dtype):
    # m rows cut into slivers as even as they allow (16 -> 6, 5, 5; 13 -> 6, 4, 3): each row's products are the
    # same bits as those of the whole, whatever its sliver's height and place (packed 6, 4 or 1 rows at a time).
    whole_a, b = operands(rng, 45, 40, 300, trans_a, False, dtype)
    whole = funcs.product(whole_a, b, trans_a, False, num_threads=1, path="packed")
    for m in range(1, 45):
        a = whole_a[:, :m] if trans_a else whole_a[:m]
        np.testing.assert_array_equal(funcs.product(a, b, trans_a, False, num_threads=1, path="packed"), whole[:m])


@pytest.mark.skipif(not _dispatch.avx512_available(), reason="no AVX-512 here")
@DTYPES
def test_packed_product_makes_the_same_bits_in_avx512_and_avx2_registers(funcs, rng, dtype):
    # the layers' products (``rnnfast._core.products``) run this module's micro-kernel, whose width is
    # switched per module: dispatch turns the AVX-512 kernel on here as in ``kernels``
    assert funcs.use_wide_microkernel(True)
    try:
        for m, n, k, trans_a, trans_b in [(301, 100, 1030, False, False), (2048, 96, 256, False, True),
                                          (64, 1024, 700, True, False)]:
            a, b = operands(rng, m, n, k, trans_a, trans_b, dtype)
            wide = funcs.product(a, b, trans_a, trans_b, num_threads=2, path="packed")
            assert not funcs.use_wide_microkernel(False)
            np.testing.assert_array_equal(wide, funcs.product(a, b, trans_a, trans_b, num_threads=2, path="packed"))
            assert funcs.use_wide_microkernel(True)
    finally:
        funcs.use_wide_microkernel(True)


@pytest.mark.parametrize("wide", [True, False], ids=["avx512", "avx2"])
@DTYPES
def test_packed_product_makes_the_same_bits_in_6_and_12_row_slivers(funcs, rng, dtype, wide):
    # 12-row slivers (Intel's AVX-512 cores; forced through the AVX2 kernel, six rows at a time, on any machine)
    # against 6-row ones: every row count up to two groups, so each way of cutting the rows (as evenly as the
    # fewest slivers allow, or the last two sharing theirs; 1-12 rows in one sliver) is met, with panel counts
    # odd and even and a last panel narrower than a panel.
    if wide and not _dispatch.avx512_available():
        pytest.skip("no AVX-512 here")
    assert funcs.use_wide_microkernel(wide) == wide
    try:
        for m in list(range(1, 41)) + [131, 132, 133, 301]:
            for n, k, trans_a, trans_b in [(100, 257, False, False), (48, 70, True, False), (33, 300, False, True)]:
                a, b = operands(rng, m, n, k, trans_a, trans_b, dtype)
                got = {}
                for rows in (12, 6):
                    assert funcs.use_sliver_rows(rows, force=not wide) == rows
                    got[rows] = funcs.product(a, b, trans_a, trans_b, num_threads=2, path="packed")
                np.testing.assert_array_equal(got[12], got[6])
        if wide:  # without the AVX-512 kernel the slivers stay 6 high, and 12 comes back with it
            assert funcs.use_sliver_rows(12) == 12
            funcs.use_wide_microkernel(False)
            assert funcs.use_sliver_rows(12) == 6
            assert funcs.use_wide_microkernel(True) and funcs.use_sliver_rows(12) == 12
    finally:
        funcs.use_wide_microkernel(_dispatch.active_isa() == "avx512")
        funcs.use_sliver_rows(_dispatch.sliver_rows())


@pytest.mark.parametrize("wide", [True, False], ids=["avx512", "avx2"])
def test_a_product_whose_c_is_far_makes_the_bits_of_its_row_blocks(funcs, rng, wide):
    # From FAR_C_BYTES on, the float32 products ask for C's rows a sliver ahead (12-row slivers on the AVX-512
    # kernel).  A request changes no value: the product of all rows is its row blocks' products (each under the
    # size, so asked for as before), bit for bit, on any thread count, and matches NumPy in float64.
    if wide and not _dispatch.avx512_available():
        pytest.skip("no AVX-512 here")
    m, n, k = 2101, 1040, 300  # a last sliver and panel of their own, two k-blocks; C 8.3 MiB
    assert m * n * 4 >= FAR_C_BYTES > (m // 2 + 1) * n * 4
    a, b = operands(rng, m, n, k, False, False)
    bias = rng.standard_normal(n).astype(np.float32)
    funcs.use_wide_microkernel(wide)
    try:
        if wide:
            assert funcs.use_sliver_rows(12) == 12
        whole = funcs.product(a, b, bias=bias, num_threads=2, path="packed")
        np.testing.assert_array_equal(whole, funcs.product(a, b, bias=bias, num_threads=1, path="packed"))
        for r0, r1 in [(0, m // 2), (m // 2, m)]:
            np.testing.assert_array_equal(whole[r0:r1], funcs.product(a[r0:r1], b, bias=bias, num_threads=2,
                                                                       path="packed"))
    finally:
        funcs.use_wide_microkernel(_dispatch.active_isa() == "avx512")
        funcs.use_sliver_rows(_dispatch.sliver_rows())
    scale = np.sqrt(k) * np.abs(a).max() * np.abs(b).max()
    assert np.abs(whole - exact(a, b, False, False, bias)).max() <= 1e-6 * (scale + 1)


@DTYPES
def test_packed_product_with_no_depth_is_the_bias(funcs, rng, dtype):
    a = np.zeros((5, 0), dtype)
    b = np.zeros((0, 20), dtype)
    bias = rng.standard_normal(20).astype(dtype)
    np.testing.assert_array_equal(funcs.product(a, b, path="packed"), np.zeros((5, 20), dtype))
    np.testing.assert_array_equal(funcs.product(a, b, bias=bias, path="packed"), np.tile(bias, (5, 1)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_product_into_out_is_the_new_product(funcs, rng, dtype):
    a, b = (x.astype(dtype) for x in operands(rng, 70, 90, 40, True, False))
    bias = rng.standard_normal(90).astype(dtype)
    out = np.full((70, 90), np.nan, dtype)
    assert funcs.product(a, b, True, False, bias, num_threads=2, out=out) is out
    np.testing.assert_array_equal(out, funcs.product(a, b, True, False, bias, num_threads=2))
    for bad in (np.empty((90, 70), dtype), np.empty((70, 90), np.float16), np.empty((90, 70), dtype).T, [[0.0]]):
        with pytest.raises(ValueError, match=r"out must be a writeable C-contiguous .* \(70, 90\)"):
            funcs.product(a, b, True, False, out=bad)


@DTYPES
def test_products_take_the_micro_kernel_only_when_every_side_is_long(funcs, rng, dtype):
    for m, n, k in [(MIN_SIDE, MIN_SIDE, 300), (MIN_SIDE - 1, 300, 300), (300, MIN_SIDE - 1, 600)]:
        a, b = operands(rng, m, n, k, False, False, dtype)
        auto = funcs.product(a, b, num_threads=2)
        packed = funcs.product(a, b, num_threads=2, path="packed")
        blas = funcs.product(a, b, num_threads=2, path="blas")
        assert not np.array_equal(packed, blas)  # the paths add in other orders (k = 300: 150 + 150 here)
        np.testing.assert_array_equal(auto, packed if min(m, n, k) >= MIN_SIDE else blas)


@DTYPES
@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_cells_on_packed_products_match_the_reference_for_any_thread_count(cell, rng, dtype):
    """N*T, D and every gate width at least 256, with partial slivers and panels: all four products
    of the training step take the micro-kernel (AVX2 builds)."""
    N, T, D, H = 7, 40, 262, 90  # N*T = 280, 3H = 270, 4H = 360; H = 90 is not a whole panel
    if cell.name.startswith("rnn"):
        H = 262  # the RNN's gate width is H itself
    args = problem(cell, rng, N, T, D, H, dtype)
    outs, grads = run(cell, IMPLS["kernel"], *args, num_threads=1)
    outs_r, grads_r = run(cell, IMPLS["reference"], *args)
    for k, r in zip(outs + grads, outs_r + grads_r):
        assert rel_err(k, r) <= (1e-4 if dtype == np.float32 else 1e-11)
    for nt in (2, 3):
        outs_n, grads_n = run(cell, IMPLS["kernel"], *args, num_threads=nt)
        for a, b in zip(outs + grads, outs_n + grads_n):
            np.testing.assert_array_equal(a, b)


@pytest.fixture
def late_thread():
    """Sets which thread of each product's team starts late (``rows_taken_over``) in the product module and the
    kernels' module; yields a function that does, and returns the rows taken over in each since the last call."""
    modules = [importlib.import_module("rnnfast._core.mathfuncs_avx2"), _dispatch.kernel_module("kernels")]

    def late(tid, seconds=10.0):  # at most: the late thread starts once its rows have been taken over
        return [m.rows_taken_over(tid, seconds) for m in modules]

    late(-1, 0)
    yield late
    late(-1, 0)


@DTYPES
@pytest.mark.parametrize("m,n,k,trans_a", [(600, 512, 700, False), (1000, 200, 300, True), (600, 40, 1030, False)])
def test_a_late_thread_s_rows_are_taken_over_with_the_same_bits(funcs, rng, late_thread, m, n, k, trans_a, dtype):
    """A thread done with its part takes over the far rows of a slower one's (``all_steps._take_over``): each C
    element is still summed by one thread, k-block after k-block, so the bits are those of one thread."""
    a, b = operands(rng, m, n, k, trans_a, False, dtype)
    bias = rng.standard_normal(n).astype(dtype)
    first = funcs.product(a, b, trans_a, False, bias, num_threads=1, path="packed")
    for nt in (2, 3, 4):
        for tid in (0, nt - 1):
            late_thread(tid)
            got = funcs.product(a, b, trans_a, False, bias, num_threads=nt, path="packed")
            taken = late_thread(-1, 0)[0]
            assert taken > 0, (nt, tid)
            np.testing.assert_array_equal(first, got)


@pytest.mark.parametrize("cell", [c for c in CELLS if c.name in ("lstm", "gru")], ids=lambda c: c.name)
def test_a_training_step_with_a_late_thread_keeps_the_bits_of_one_thread(cell, rng, late_thread):
    """The input product, dx and the stacked weight gradients (whose packing of dG also sums the bias gradient,
    by the part that starts at row 0, which keeps its first rows) with one thread of each team late."""
    if not _dispatch.avx2_available():
        pytest.skip("no AVX2 + FMA build on this machine")
    N, T, D, H = 7, 40, 262, 90
    args = problem(cell, rng, N, T, D, H, np.float32)
    outs, grads = run(cell, IMPLS["kernel"], *args, num_threads=1)
    for nt in (2, 3):
        late_thread(0)
        outs_n, grads_n = run(cell, IMPLS["kernel"], *args, num_threads=nt)
        assert late_thread(-1, 0)[1] > 0
        for a, b in zip(outs + grads, outs_n + grads_n):
            np.testing.assert_array_equal(a, b)


def test_a_team_of_one_thread_never_waits_for_a_part_that_has_not_started(funcs, tmp_path):
    """Where OpenMP gives a team one thread (``OMP_THREAD_LIMIT=1``, a build without OpenMP), the team's parts run
    one after the other: the first, done, finds the second's rows not worth taking now (194 rows on two threads:
    98 in the second part, whose far half rounds to 44 rows, under 48) and must not wait for it to move on."""
    script = tmp_path / "team_of_one.py"
    script.write_text(
        "import importlib, numpy as np\n"
        "m = importlib.import_module('rnnfast._core.mathfuncs_avx2')\n"
        "rng = np.random.default_rng(0)\n"
        "a = rng.standard_normal((194, 600)).astype(np.float32)\n"
        "b = rng.standard_normal((600, 64)).astype(np.float32)\n"
        "one = m.product(a, b, num_threads=1, path='packed')\n"
        "two = m.product(a, b, num_threads=2, path='packed')\n"
        "print(np.array_equal(one, two))\n")
    env = dict(os.environ, OMP_THREAD_LIMIT="1", PYTHONPATH=os.path.dirname(os.path.dirname(rnnfast.__file__)))
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
