"""The default thread count leaves out the cores other processes keep busy (``rnnfast._core.busy_cores``) and
keeps to a container's CPU quota, and an explicit count is kept whatever the load."""
import subprocess
import sys
import time

import pytest

import rnnfast
from rnnfast._core import busy_cores, threads
from rnnfast._core.busy_cores import BusyCores


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_the_busy_count_is_the_smaller_of_the_last_two_samples_taken_an_interval_apart():
    samples, clock = iter([3, 0, 2, 2, None]), FakeClock()
    busy = BusyCores(sample=lambda: next(samples), clock=clock, interval=0.1)
    assert busy.count() == 0  # samples 0 (none yet) and 3: one busy sample sheds nothing
    clock.now = 0.05
    assert busy.count() == 0  # within the interval: no new sample
    clock.now = 0.25
    assert busy.count() == 0  # 3, 0
    clock.now = 0.5
    assert busy.count() == 0  # 0, 2
    clock.now = 0.75
    assert busy.count() == 2  # 2, 2: busy for two samples running
    clock.now = 1.0
    assert busy.count() == 0  # /proc unreadable (None): nothing busy


def test_free_threads_leave_out_the_busy_cores_and_keep_one():
    for busy, expected in [(0, 4), (1, 3), (3, 1), (4, 1), (9, 1)]:
        cores = BusyCores(sample=lambda b=busy: b, clock=FakeClock(), interval=0.0)
        cores.count()
        assert cores.free_threads(4, 4) == expected, busy
    assert BusyCores(sample=lambda: 0).free_threads(2, 16) == 2  # never more than wanted


@pytest.mark.skipif(not rnnfast.config_info()["openmp"], reason="without OpenMP every count is 1")
def test_only_the_default_count_follows_the_load(monkeypatch):
    for name in ("RNNFAST_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    cores = threads.available_cores()
    loaded = BusyCores(sample=lambda: busy_cores.SYSTEM_CORES, interval=0.0)
    loaded.count()  # busy in two samples running
    monkeypatch.setattr(threads, "busy_cores", loaded)
    assert threads.resolve_num_threads() == 1
    assert threads.resolve_num_threads(cores) == cores  # an explicit count is the caller's
    monkeypatch.setenv("RNNFAST_NUM_THREADS", str(cores))
    assert threads.resolve_num_threads() == cores
    monkeypatch.delenv("RNNFAST_NUM_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", str(cores))  # a process pool's share of the cores
    assert threads.resolve_num_threads() == cores
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(threads, "busy_cores", BusyCores(sample=lambda: 0, interval=0.0))
    assert threads.resolve_num_threads() == cores


def test_the_default_count_is_looked_up_once_per_sampling_interval(monkeypatch):
    looked = []
    monkeypatch.setattr(threads, "available_cores", lambda: looked.append(1) or 4)
    monkeypatch.setattr(threads, "busy_cores", BusyCores(sample=lambda: 0, interval=3600.0))
    expected = min(4, busy_cores.SYSTEM_CORES)
    assert threads.default_num_threads() == expected
    assert threads.default_num_threads() == expected
    assert len(looked) == 1  # within the interval: the count already looked up
    monkeypatch.setattr(threads, "busy_cores", BusyCores(sample=lambda: 0, interval=3600.0))
    assert threads.default_num_threads() == expected
    assert len(looked) == 2  # another sampler: looked up again


def test_the_environment_is_read_as_os_environ_has_it(monkeypatch):
    monkeypatch.delenv("RNNFAST_TEST_VALUE", raising=False)
    assert threads._getenv("RNNFAST_TEST_VALUE") is None
    for value in ("3", " 2 ", "", "d\u00e9j\u00e0"):
        monkeypatch.setenv("RNNFAST_TEST_VALUE", value)
        assert threads._getenv("RNNFAST_TEST_VALUE") == value
    monkeypatch.setattr(threads.os, "environ", {"RNNFAST_TEST_VALUE": "5"})  # a plain mapping in its place
    assert threads._getenv("RNNFAST_TEST_VALUE") == "5"


@pytest.mark.skipif(busy_cores.runnable_elsewhere() is None, reason="no /proc to read the load from")
def test_a_spinning_process_is_seen_as_busy():
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        seen = 0
        deadline = time.monotonic() + 5
        while seen < 1 and time.monotonic() < deadline:  # the child is runnable from its first instruction
            seen = busy_cores.runnable_elsewhere()
            time.sleep(0.01)
        assert seen >= 1
    finally:
        child.kill()
        child.wait()


def _cgroups(tmp_path, monkeypatch, own: str, files: dict):
    """A fake cgroup mount under tmp_path and a /proc/self/cgroup that names ``own``; ``files``: path -> text."""
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "proc_cgroup").write_text(own)
    monkeypatch.setattr(threads, "CGROUP_ROOT", str(tmp_path))
    monkeypatch.setattr(threads, "PROC_CGROUP", str(tmp_path / "proc_cgroup"))
    return threads._read_cgroup_quota()


def test_a_cgroup_cpu_quota_is_read_as_whole_cpus(tmp_path, monkeypatch):
    v2 = "0::/job\n"
    assert _cgroups(tmp_path / "a", monkeypatch, v2, {"job/cpu.max": "150000 100000\n"}) == 2
    assert _cgroups(tmp_path / "b", monkeypatch, v2, {"job/cpu.max": "max 100000\n"}) is None
    assert _cgroups(tmp_path / "c", monkeypatch, "0::/\n", {"cpu.max": "50000 100000\n"}) == 1  # a namespace's root
    v1 = "4:memory:/x\n1:cpu,cpuacct:/job\n"
    assert _cgroups(tmp_path / "d", monkeypatch, v1, {"cpu/job/cpu.cfs_quota_us": "300000\n",
                                                      "cpu/job/cpu.cfs_period_us": "100000\n"}) == 3
    assert _cgroups(tmp_path / "e", monkeypatch, v1, {"cpu/job/cpu.cfs_quota_us": "-1\n",
                                                      "cpu/job/cpu.cfs_period_us": "100000\n"}) is None
    assert _cgroups(tmp_path / "f", monkeypatch, "garbage", {"cpu.max": "a b"}) is None  # unreadable: no quota


def test_available_cores_keep_to_the_quota(monkeypatch):
    import os
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    monkeypatch.setattr(threads, "cgroup_cpu_quota", lambda: 1)
    assert threads.available_cores() == 1
    monkeypatch.setattr(threads, "cgroup_cpu_quota", lambda: 10_000)
    assert threads.available_cores() == affinity
    monkeypatch.setattr(threads, "cgroup_cpu_quota", lambda: None)
    assert threads.available_cores() == affinity
