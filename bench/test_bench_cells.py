"""rnnfast vs its NumPy reference vs PyTorch vs thinc: training step (forward + backward) and forward only."""
import pytest
from conftest import SIZES, THREADS

from rnnfast.benchmarks import backends
from rnnfast.benchmarks.cases import Case, make_inputs
from rnnfast.benchmarks.timing import pinned_threads


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: "N{}-T{}-D{}-H{}".format(*s))
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("pass_", ["train", "forward"])
@pytest.mark.parametrize("backend", backends.NAMES)
def test_cell(benchmark, backend, pass_, cell, size, dtype, threads):
    case = Case(cell, pass_, *size, dtype, threads)
    benchmark.group = case.label
    with pinned_threads(threads):
        try:
            fn = backends.prepare(backend, case, make_inputs(case))
        except backends.Unavailable as why:
            pytest.skip(str(why))
        rounds = 20 if size[0] * size[3] <= 32 * 256 else 3
        benchmark.pedantic(fn, rounds=rounds, warmup_rounds=2)
