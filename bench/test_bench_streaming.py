"""Batch-1 generation latency: one LSTM step per token, state carried.

rnnfast's ``LSTMStepper`` and its plain ``lstm_step_forward`` vs the NumPy stepper vs PyTorch
calling ``nn.LSTM`` one token at a time, on all cores.
"""
import pytest
from conftest import THREADS

from rnnfast.benchmarks import streaming
from rnnfast.benchmarks.backends import Unavailable
from rnnfast.benchmarks.timing import pinned_threads


@pytest.mark.parametrize("H", [256, 1024])
@pytest.mark.parametrize("backend", streaming.NAMES)
def test_lstm_token_step(benchmark, backend, H):
    threads = THREADS[-1]
    benchmark.group = f"lstm generation step N=1 D=H={H} threads={threads}"
    with pinned_threads(threads):
        try:
            step = streaming.prepare_token_step(backend, H, threads)
        except Unavailable as why:
            pytest.skip(str(why))
        benchmark.pedantic(step, rounds=200 if H <= 256 else 30, warmup_rounds=10)
