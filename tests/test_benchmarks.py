"""The benchmark machinery (not the speed: timings are never asserted in tests)."""
import json
import re
import sys

import numpy as np
import pytest

from rnnfast.benchmarks import backends, report, run, streaming
from rnnfast.benchmarks.cases import Case, flops, make_inputs, parse_size
from rnnfast.benchmarks.timing import pair_ratios, pinned_threads, time_in_pairs, time_side_by_side
from rnnfast.cli import main

TINY = dict(blocks=1, block_seconds=0.001, settle_seconds=0.0)


def test_flop_count_is_the_gemm_work():
    c = Case("lstm", "forward", N=2, T=3, D=5, H=7, dtype="float32", threads=1)
    assert flops(c) == 2 * 2 * 3 * (5 + 7) * 4 * 7
    assert flops(Case("gru", "train", 2, 3, 5, 7, "float64", 1)) == 3 * 2 * 2 * 3 * 12 * 3 * 7


@pytest.mark.parametrize("kwargs, match", [
    (dict(cell="lstmx"), "cell must be one of lstm, gru, rnn; got 'lstmx'"),
    (dict(pass_="backward"), "pass must be one of train, forward"),
    (dict(dtype="float16"), "dtype must be one of float32, float64"),
    (dict(H=0), "H must be >= 1; got 0"),
    (dict(threads=0), "threads must be >= 1"),
])
def test_bad_case_is_a_clear_error(kwargs, match):
    args = dict(cell="lstm", pass_="train", N=1, T=1, D=1, H=1, dtype="float32", threads=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        Case(**args)


def test_size_parsing():
    assert parse_size("4,5,6") == (4, 5, 6, 6)
    assert parse_size("4,5,6,7") == (4, 5, 6, 7)
    for bad in ("4,5", "a,b,c", "4,0,6", "1,2,3,4,5"):
        with pytest.raises(ValueError, match="expected N,T,D,H or N,T,H"):
            parse_size(bad)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("pass_", ["train", "forward"])
@pytest.mark.parametrize("name", backends.NAMES)
def test_every_backend_runs_or_says_why(cell, pass_, name):
    case = Case(cell, pass_, 3, 4, 5, 6, "float32", 1)
    try:
        fn = backends.prepare(name, case, make_inputs(case))
    except backends.Unavailable as why:
        assert name in ("torch", "rnnfast.torch", "thinc") and str(why)
        return
    fn()
    fn()


def test_missing_library_is_reported_not_raised(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    case = Case("lstm", "train", 1, 2, 3, 4, "float32", 1)
    with pytest.raises(backends.Unavailable, match="PyTorch is not installed"):
        backends.prepare("torch", case, make_inputs(case))
    with pytest.raises(backends.Unavailable, match="PyTorch is not installed"):
        streaming.prepare_token_step("torch", 8, 1)


def test_torch_backend_gets_the_same_weights():
    torch = pytest.importorskip("torch")
    import rnnfast

    for cell in ("lstm", "gru", "rnn"):
        case = Case(cell, "forward", 2, 3, 4, 5, "float64", 1)
        x, Wx, Wh, biases, _ = make_inputs(case)
        module = backends.torch_module(case, Wx, Wh, biases)
        with torch.no_grad():
            out = module(torch.from_numpy(x))[0].numpy()
        np.testing.assert_allclose(out, getattr(rnnfast, f"{cell}_forward")(x, Wx, Wh, *biases)[0], rtol=1e-10)


def test_blocks_alternate_and_every_call_is_timed():
    calls = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    times = time_side_by_side(fns, blocks=3, block_seconds=1e-9)
    assert [len(times["a"]), len(times["b"])] == [3, 3]
    assert calls[4:] == ["a", "b", "b", "a", "a", "b"]  # after 2 warm-up calls each


def test_pairs_alternate_their_order_and_time_every_call():
    calls = []
    a, b = time_in_pairs(lambda: calls.append("a"), lambda: calls.append("b"), 3)
    assert (a.size, b.size) == (3, 3) and (a >= 0).all() and (b >= 0).all()
    assert calls[4:] == ["a", "b", "b", "a", "a", "b"]  # after 2 warm-up pairs


def test_pair_ratios_split_the_quiet_and_the_busy_spells():
    # theirs: 1 s in quiet spells, 2 s in busy ones; ours: 0.8 s quiet (they / we = 1.25), 2.5 s busy (0.8)
    theirs = np.array([1.0, 2.0, 1.0, 1.5, 2.0, 1.0, 1.5, 2.0, 1.5])
    ours = np.where(theirs == 1.0, 0.8, np.where(theirs == 2.0, 2.5, 1.5))
    r = pair_ratios(ours, theirs)
    assert r["quiet"] == pytest.approx(1.25) and r["busy"] == pytest.approx(0.8) and r["pairs"] == pytest.approx(1.0)
    assert r["medians"] == pytest.approx(1.0)


@pytest.mark.parametrize("call, match", [
    (lambda: time_in_pairs(print, print, 0), "calls must be a positive int; got 0"),
    (lambda: time_in_pairs(print, print, 2.0), "calls must be a positive int; got 2.0"),
    (lambda: pair_ratios([1.0, 2.0], [1.0]), r"got shapes \(2,\) and \(1,\)"),
    (lambda: pair_ratios([], []), "equally long 1-D sequences of positive times"),
    (lambda: pair_ratios([1.0, 0.0], [1.0, 1.0]), "positive times"),
])
def test_pairs_reject_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_pinned_threads_restores_every_pool():
    from threadpoolctl import threadpool_info

    before = [p["num_threads"] for p in threadpool_info()]
    with pinned_threads(1):
        assert all(p["num_threads"] == 1 for p in threadpool_info())
    assert [p["num_threads"] for p in threadpool_info()] == before


@pytest.fixture(scope="module")
def tiny_result():
    cases = [Case("lstm", "train", 2, 3, 4, 5, "float32", t) for t in (1, 2)]
    cases.append(Case("gru", "forward", 2, 3, 4, 5, "float64", 1))
    return run(cases, ["rnnfast", "reference", "thinc"], stream_sizes=[8], **TINY)


def test_run_reports_every_row_and_backend(tiny_result):
    r = tiny_result
    assert set(r["gemm_peak_gflops"]) == set(r["fma_ceiling_gflops"]) == {"float32", "float64"}
    assert set(r["fma_ceiling_gflops"]["float32"]) == {"1", "2"}
    assert r["machine"]["libraries"]["numpy"] == np.__version__
    assert [row["case"]["threads"] for row in r["rows"]] == [1, 2, 1]
    for row in r["rows"]:
        ours = row["results"]["rnnfast"]
        assert ours["median_ms"] > 0 and ours["gflops"] > 0 and ours["percent_of_peak"] > 0
        assert row["speedup"]["reference"] == pytest.approx(
            row["results"]["reference"]["median_ms"] / ours["median_ms"])
    assert "rnnfast" in r["rows"][1]["scaling_efficiency"]  # the 2-thread row has a 1-thread twin
    assert r["rows"][0]["scaling_efficiency"] == {}
    gru = r["rows"][2]["results"]
    assert gru["thinc"] == {"skipped": "thinc has no GRU layer"} or "thinc is not installed" in gru["thinc"]["skipped"]
    (stream,) = r["streaming"]
    assert stream["H"] == 8 and stream["results"]["rnnfast"]["median_us"] > 0
    assert "reference" in stream["speedup"] and "torch" not in stream["results"]  # torch not asked for
    json.dumps(r)  # JSON-ready


def test_table_json_and_png(tiny_result, tmp_path):
    text = report.format_table(tiny_result)
    assert "rnnfast ms" in text and "per token" in text
    measured = tiny_result["fma_ceiling_gflops"]["float32"]["1"] > 0
    assert ("FMA ceiling (GFLOP/s" in text) == measured
    assert re.search(r"lstm\s+train\s+2\s+3\s+4\s+5 float32\s+2 \|", text)
    assert re.search(r"gru\s+forward", text) and "thinc skipped: " in text
    path = tmp_path / "r.json"
    report.write_json(tiny_result, str(path))
    assert json.loads(path.read_text())["rows"][0]["label"] == tiny_result["rows"][0]["label"]
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left behind
    pytest.importorskip("matplotlib")
    png = tmp_path / "r.png"
    report.plot_png(tiny_result, str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_bench_writes_json(tmp_path, capsys):
    out = tmp_path / "b.json"
    argv = ["bench", "--sizes", "2,3,4", "--threads", "1", "--backends", "rnnfast", "reference",
            "--stream-sizes", "--blocks", "1", "--block-seconds", "0.001", "--json", str(out), "--png", "none"]
    assert main(argv) == 0
    assert "lstm train" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["rows"][0]["case"] == {"cell": "lstm", "pass": "train", "N": 2, "T": 3, "D": 4, "H": 4,
                                       "dtype": "float32", "threads": 1, "ragged": False, "peephole": False,
                                       "proj": 0, "layer_norm": False, "zoneout": False}


def test_ragged_cases_and_the_torch_modules_backend(tmp_path):
    from rnnfast.benchmarks import backends
    from rnnfast.benchmarks.cases import Case, flops, make_inputs, make_lengths

    case = Case("gru", "train", 5, 8, 4, 6, "float64", 1, ragged=True)
    lengths = make_lengths(case)
    assert lengths.shape == (5,) and lengths.min() >= 2 and lengths.max() <= 8
    assert flops(case) < flops(Case("gru", "train", 5, 8, 4, 6, "float64", 1))
    inputs = make_inputs(case)
    backends.prepare("rnnfast", case, inputs)()
    pytest.importorskip("torch")
    for name in ("torch", "rnnfast.torch"):
        backends.prepare(name, case, inputs)()


@pytest.mark.parametrize("argv, message", [
    (["bench", "--sizes", "2,3"], "size '2,3': expected N,T,D,H or N,T,H"),
    (["bench", "--json", "/nonexistent-dir/x.json"], "directory does not exist"),
    (["bench", "--cells", "gru", "--peephole"], "--peephole, --proj-size and --zoneout are LSTM variants"),
    (["bench", "--cells", "lstm", "--zoneout", "--layer-norm"], "not with peephole, proj or layer_norm"),
    (["bench", "--cells", "rnn", "--layer-norm"], "--layer-norm is an LSTM and GRU variant"),
])
def test_cli_bench_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("variant", [{"peephole": True}, {"proj": 3}, {"peephole": True, "proj": 3},
                                     {"layer_norm": True}, {"zoneout": True}])
@pytest.mark.parametrize("pass_", ["train", "forward"])
def test_lstm_variants_run_on_every_backend_that_has_them(variant, pass_):
    case = Case("lstm", pass_, 3, 4, 5, 6, "float64", 1, **variant)
    assert case.variant in ("peephole", "P3", "peephole P3", "LN", "zoneout")
    for name in ("rnnfast", "reference", "torch", "rnnfast.torch"):
        try:
            fn = backends.prepare(name, case, make_inputs(case))
        except backends.Unavailable as exc:
            assert name != "rnnfast" and name != "reference"
            assert "torch" in name and (case.variant in str(exc) or "not installed" in str(exc))
            continue
        fn()
    with pytest.raises(ValueError, match="LSTM and GRU variant" if "layer_norm" in variant else "LSTM variants"):
        Case("rnn" if "layer_norm" in variant else "gru", pass_, 3, 4, 5, 6, "float64", 1, **variant)


@pytest.mark.parametrize("pass_", ["train", "forward"])
def test_the_layer_normalized_gru_runs_on_every_backend_that_has_it(pass_):
    case = Case("gru", pass_, 3, 4, 5, 6, "float64", 1, layer_norm=True)
    assert case.variant == "LN" and backends.variant_weights(case)["layer_norm"].shape == (36,)
    for name in ("rnnfast", "reference", "torch", "rnnfast.torch"):
        try:
            fn = backends.prepare(name, case, make_inputs(case))
        except backends.Unavailable as exc:
            assert "torch" in name and "not installed" in str(exc)
            continue
        fn()


def test_projection_flops_count_the_projection():
    c = Case("lstm", "forward", 2, 3, 5, 7, "float32", 1, proj=4)
    assert flops(c) == 2 * 2 * 3 * ((5 + 4) * 28 + 7 * 4)
    with pytest.raises(ValueError, match=r"proj must be in \[0, H\)"):
        Case("lstm", "forward", 2, 3, 5, 7, "float32", 1, proj=7)


@pytest.mark.parametrize("proj", [0, 3])
def test_the_torch_peephole_baseline_computes_the_same_maths(proj):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    import rnnfast
    case = Case("lstm", "forward", 3, 4, 5, 6, "float64", 1, peephole=True, proj=proj)
    x, Wx, Wh, biases, _ = make_inputs(case)
    module = backends.torch_module(case, Wx, Wh, biases)
    want = rnnfast.lstm_forward(x, Wx, Wh, *biases, **backends.variant_weights(case))[0]
    with torch.no_grad():
        np.testing.assert_allclose(module(torch.from_numpy(x))[0].numpy(), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_torch_layer_norm_baseline_computes_the_same_maths(cell):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    import rnnfast
    case = Case(cell, "forward", 3, 4, 5, 6, "float64", 1, layer_norm=True)
    x, Wx, Wh, biases, _ = make_inputs(case)
    module = backends.torch_module(case, Wx, Wh, biases)
    want = getattr(rnnfast, f"{cell}_forward")(x, Wx, Wh, *biases, **backends.variant_weights(case))[0]
    with torch.no_grad():
        np.testing.assert_allclose(module(torch.from_numpy(x))[0].numpy(), want, rtol=1e-10, atol=1e-12)


def test_the_torch_zoneout_baseline_computes_the_same_maths_in_evaluation():
    # training draws its own masks (torch.rand); tests/test_torch_modules.py checks it on rnnfast's masks
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    import rnnfast
    from rnnfast.benchmarks.cases import ZONEOUT
    case = Case("lstm", "forward", 3, 4, 5, 6, "float64", 1, zoneout=True)
    x, Wx, Wh, biases, _ = make_inputs(case)
    module = backends.torch_module(case, Wx, Wh, biases).eval()
    want = rnnfast.lstm_forward(x, Wx, Wh, *biases, zoneout=ZONEOUT)[0]
    with torch.no_grad():
        np.testing.assert_allclose(module(torch.from_numpy(x))[0].numpy(), want, rtol=1e-10, atol=1e-12)


def test_the_fma_ceiling_is_measured_where_the_cpu_has_vector_fmas():
    from rnnfast._core.blasbench import fma_ceiling_flops_per_second
    from rnnfast._core.config import cpu_has_avx2_fma

    for dtype in (np.float32, np.float64):
        for threads in (1, 2):
            flops = fma_ceiling_flops_per_second(dtype, threads, seconds=0.001)
            assert np.isfinite(flops) and flops >= 0
            assert (flops > 0) == cpu_has_avx2_fma()  # the loop needs only the CPU and GCC


@pytest.mark.parametrize("kwargs, match", [(dict(dtype=np.int32), "dtype must be float32 or float64; got int32"),
                                           (dict(num_threads=0), "num_threads must be at least 1; got 0"),
                                           (dict(seconds=0.0), "seconds must be positive")])
def test_the_fma_ceiling_rejects_bad_arguments(kwargs, match):
    from rnnfast._core.blasbench import fma_ceiling_flops_per_second

    with pytest.raises(ValueError, match=match):
        fma_ceiling_flops_per_second(**kwargs)
