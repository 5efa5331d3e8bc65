"""Batch-1 generation latency: one LSTM step per token, state carried (rnnfast step kernel vs PyTorch)."""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import rnnfast


@pytest.mark.parametrize("H", [256, 1024])
@pytest.mark.parametrize("backend", ["rnnfast", "torch"])
def test_lstm_token_step(benchmark, backend, H, request):
    benchmark.group = f"lstm generation step N=1 D=H={H} threads=2"
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, H)).astype(np.float32)
    if backend == "torch":
        torch = request.getfixturevalue("torch_or_skip")
        torch.set_num_threads(2)
        module = torch.nn.LSTM(H, H, batch_first=True)
        xt = torch.from_numpy(x)[:, None, :]
        state = [None]

        def step():
            with torch.no_grad():
                _, state[0] = module(xt, state[0])
    else:
        Wx = (rng.standard_normal((H, 4 * H)) / np.sqrt(H)).astype(np.float32)
        Wh = (rng.standard_normal((H, 4 * H)) / np.sqrt(H)).astype(np.float32)
        b = np.zeros(4 * H, np.float32)
        hc = [np.zeros((1, H), np.float32), np.zeros((1, H), np.float32)]

        def step():
            hc[0], hc[1], _ = rnnfast.lstm_step_forward(x, hc[0], hc[1], Wx, Wh, b, num_threads=2)
    with threadpool_limits(2, user_api="blas"):
        benchmark.pedantic(step, rounds=200, warmup_rounds=10)
