"""rnnfast vs its NumPy reference vs PyTorch: training step (forward + backward) and forward only."""
import numpy as np
import pytest
from conftest import GRID
from threadpoolctl import threadpool_limits

import rnnfast
import rnnfast.reference as reference

CELLS = {"lstm": 4, "gru": 3, "rnn": 1}


def _inputs(cell, N, T, H, dtype):
    rng = np.random.default_rng(0)
    D, G = H, CELLS[cell] * H
    x = rng.standard_normal((N, T, D)).astype(dtype)
    Wx = (rng.standard_normal((D, G)) / np.sqrt(D)).astype(dtype)
    Wh = (rng.standard_normal((H, G)) / np.sqrt(H)).astype(dtype)
    biases = [np.zeros(G, dtype)] * (2 if cell == "gru" else 1)
    dhs = np.ones((N, T, H), dtype)
    return x, Wx, Wh, biases, dhs


def _numpy_step(impl, cell, x, Wx, Wh, biases, dhs, train, threads):
    kw = {} if impl is reference else {"num_threads": threads}
    fwd = getattr(impl, f"{cell}_forward")
    bwd = getattr(impl, f"{cell}_backward")

    def run():
        out = fwd(x, Wx, Wh, *biases, **kw)
        if train:
            bwd(dhs, out[-1])
    return run


def _torch_step(torch, cell, x, Wx, Wh, biases, dhs, train):
    N, T, D = x.shape
    H = Wh.shape[0]
    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell](D, H, batch_first=True)
    module = module.to(torch.float32 if x.dtype == np.float32 else torch.float64)
    xt = torch.from_numpy(x).requires_grad_(train)
    g = torch.from_numpy(dhs)

    def run():
        if train:
            module.zero_grad(set_to_none=True)
            out, _ = module(xt)
            out.backward(g)
        else:
            with torch.no_grad():
                module(xt)
    return run


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", ["float32"])
@pytest.mark.parametrize("shape", GRID, ids=lambda s: "N{}-T{}-H{}".format(*s))
@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("pass_", ["train", "forward"])
@pytest.mark.parametrize("backend", ["rnnfast", "reference", "torch"])
def test_cell(benchmark, backend, pass_, cell, shape, dtype, threads, request):
    N, T, H = shape
    benchmark.group = f"{cell} {pass_} N={N} T={T} D=H={H} {dtype} threads={threads}"
    args = _inputs(cell, N, T, H, np.dtype(dtype))
    train = pass_ == "train"
    if backend == "torch":
        torch = request.getfixturevalue("torch_or_skip")
        torch.set_num_threads(threads)
        fn = _torch_step(torch, cell, *args, train)
    else:
        fn = _numpy_step(rnnfast if backend == "rnnfast" else reference, cell, *args, train, threads)
    rounds = 20 if N * H <= 32 * 256 else 3
    # NumPy's own BLAS gets the same thread count as the other backends.
    with threadpool_limits(threads, user_api="blas"):
        benchmark.pedantic(fn, rounds=rounds, warmup_rounds=1)
