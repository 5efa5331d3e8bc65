"""Nothing lost: memory does not grow over many calls, and checkpoints survive SIGKILL, truncation
and bit flips (either the old or the new file, or a clear error; never a silent corrupt load)."""
import os
import random
import signal
import time

import numpy as np
import pytest

import rnnfast
from rnnfast.train import CheckpointError, load_checkpoint, save_checkpoint


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer keeps freed memory in quarantine (.ci/sanitize)")
def test_ten_thousand_calls_and_failures_do_not_grow_memory():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 5, 6)).astype(np.float32)
    Wx = rng.standard_normal((6, 32)).astype(np.float32)
    Wh = rng.standard_normal((8, 32)).astype(np.float32)
    b = np.zeros(32, np.float32)
    bad = np.ones((8, 31), np.float32)
    dhs = np.ones((4, 5, 8), np.float32)

    def good():
        hs, _, _, cache = rnnfast.lstm_forward(x, Wx, Wh, b)
        rnnfast.lstm_backward(dhs, cache)

    def failing():
        with pytest.raises(ValueError):
            rnnfast.lstm_forward(x, Wx, bad, b)

    for fn in (good, failing):
        for _ in range(500):  # warm-up: pools, caches, allocator arenas
            fn()
        before = _rss_bytes()
        for _ in range(10_000):
            fn()
        growth = _rss_bytes() - before
        assert growth < 1 << 20, f"{fn.__name__}: RSS grew by {growth / 1024:.0f} KiB over 10,000 calls"


def _arrays(version):
    return {"w": np.full((64, 64), float(version)), "step": np.array([version])}


def _save_versions_until_killed(path, start):
    v = start
    while True:
        v += 1
        save_checkpoint(path, {"version": v}, _arrays(v))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_checkpoint_survives_sigkill_at_random_moments(tmp_path):
    trials = int(os.environ.get("RNNFAST_KILL_TRIALS", "200"))
    path = tmp_path / "ck.npz"
    save_checkpoint(path, {"version": 0}, _arrays(0))
    rand = random.Random(0)
    last = 0
    for trial in range(trials):
        pid = os.fork()
        if pid == 0:  # child: save new versions as fast as it can, until killed
            try:
                _save_versions_until_killed(path, last)
            finally:
                os._exit(1)
        time.sleep(rand.uniform(0.0005, 0.02))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        config, arrays = load_checkpoint(path)  # never a corrupt file
        v = config["version"]
        assert v >= last
        np.testing.assert_array_equal(arrays["w"], np.full((64, 64), float(v)))
        assert arrays["step"][0] == v
        last = v
    assert last > trials / 4  # the kills did land while saves were under way
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "ck.npz"]
    # A kill between creating and renaming the temporary file can leave it behind; never the target damaged.
    assert all(name.startswith(".tmp-") for name in leftovers)


def test_truncated_checkpoints_are_rejected(tmp_path):
    path = tmp_path / "ck.npz"
    save_checkpoint(path, {"v": 1}, _arrays(1))
    data = path.read_bytes()
    cut = tmp_path / "cut.npz"
    for n in list(range(0, len(data), max(1, len(data) // 300))) + [len(data) - 1]:
        cut.write_bytes(data[:n])
        with pytest.raises(CheckpointError):
            load_checkpoint(cut)


def test_bit_flips_are_rejected_or_harmless(tmp_path):
    path = tmp_path / "ck.npz"
    save_checkpoint(path, {"v": 1}, _arrays(1))
    data = bytearray(path.read_bytes())
    flipped = tmp_path / "flip.npz"
    rejected = harmless = 0
    rand = random.Random(1)
    for pos in range(0, len(data), 7):
        damaged = bytearray(data)
        damaged[pos] ^= 1 << rand.randrange(8)
        flipped.write_bytes(bytes(damaged))
        try:
            config, arrays = load_checkpoint(flipped)
        except CheckpointError:
            rejected += 1
            continue
        # Loaded: then it must be exactly the saved content (the flip hit bytes nothing reads).
        assert config == {"v": 1}
        np.testing.assert_array_equal(arrays["w"], _arrays(1)["w"])
        np.testing.assert_array_equal(arrays["step"], _arrays(1)["step"])
        harmless += 1
    assert rejected > 0.8 * (rejected + harmless)
