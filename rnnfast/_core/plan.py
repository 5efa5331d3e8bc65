"""The plan of a kernel call: how a step's work is cut into tiles, which threads run them and how, and
which code path computes the products -- each choice a named field with the reason it was taken.

**Tiles.**  A step's (N, H) work is cut into tiles of ``rows`` batch rows x ``units`` hidden units (a row
block x a unit block).  The tile shape decides every per-step product's shape, and so the bits of the
result: it is a function of the problem shape only, never of the thread count.  The thread count only
decides who runs which tile.  The sizes come from timing OpenBLAS (SkylakeX kernels) on the per-step
product ``(rows x H) @ (H x cols)`` with one thread (GF/s, hot caches)::

    H      rows x cols -> GF/s
    128    16x64: 107   32x64: 109   128x128: 86
    256    16x64: 109   32x64: 110   64x256: 74    128x256: 91
    512    16x64: 116   32x64: 67    64x256: 82    128x256: 91
    1024   16x64: 50    64x128: 81   128x128: 90   128x256: 91

Products of at most ~1e6 multiply-adds take OpenBLAS's unpacked small-matrix path and run fastest; above
that, large tiles amortize the packing.  From N = 32 on, H <= 256 takes 16-row blocks (as fast as 32
rows), so that threads can own whole row blocks and skip the per-step barriers.  Below N = 32 (below 64
for H <= 64) the batch is cut into two row blocks, so that two threads each own one, where a block has at
least H/32 rows (with fewer, each thread's pass over all the weights costs more than the barrier it
saves) and H <= 256 (the weights fit in L2).  H > 512 takes 128-unit blocks: as fast as 256 on two
threads, and twice the tiles for a many-core machine.  The float64 vanilla RNN at 256 < H <= 512 takes 32 x 128
tiles from N = 32 (``FLOAT64_RNN_*``): its 64-unit tiles are only 64 columns wide, and OpenBLAS's dgemm, unlike its
sgemm, ran them slowly.  Measurements: ``bench/RESULTS.md``.

**Many cores.**  On the micro-kernel the tiles may follow the thread count, as its sums do not depend on the cut:
unit blocks are halved (down to 32 units, one pair of 16-column panels) until there are as many tiles as threads, so
each thread keeps its own slice of the step weights hot (H=1024 on 16 cores: 64-unit blocks, each thread's slice 1
MiB of a 2 MiB L2; on 64 cores: 32-unit blocks of 0.5 MiB at N <= 128).  One thread alone takes up to 128 rows in
one block (``SERIAL_MICROKERNEL_ROWS``), reading a step's weights once for all of them.  The BLAS path's tiles stay
the shape's alone (OpenBLAS's kernel and its order of sums change with the product's shape), so a step of H <= 512
on BLAS has at most N/16 x H/64 tiles: 8 for the RNN at N=32, H=256, which leaves half of 16 cores idle (the
LSTM's and GRU's steps at H=256-512 run on the micro-kernel: 32-unit blocks give 16 tiles at N=32, H=256).
Measured on 16 cores: ``bench/RESULTS.md`` (2026-12-04, night and evening).  On cores with two 512-bit FMA units
(12-row slivers, ``TWO_FMA_UNITS``) the small step tiles take 32 rows where 32-row blocks share out evenly over the
threads (N = 64 on two threads: one block each), so a thread's rows fill its slivers.  Above H = 512 the LSTM and
GRU take one row block of all the units a thread where the batch splits into blocks of 32-128 rows
(``OWNED_MIN_ROWS``): on one to four threads at N = 128; on more, the unit split above.

**Tile order.**  A thread visits its tiles of a step unit block by unit block (``unit_major``) on the BLAS
tiles: each unit block's step weights (512 KiB at H = 512 in 64-unit blocks) are then read once a step and
reused from cache by the thread's other row blocks, where row block by row block streamed all the weights
(4 MiB at H = 512) once per row block.  That matters where L3 is slow to a core (a 16-core Xeon); the tiles of a
step are independent, so the order never changes the bits.  The micro-kernel's tiles go row block by row
block (``row_major``): each thread copies a row block's rows into slivers once for all its unit blocks.

**Schedules** (the kernels' names, ``kernels.SCHEDULES``): ``owned_rows``, each thread owns its share of
whole row blocks for all the steps, runs them step by step and never waits (batch rows never read each
other; each thread looks at Ctrl-C between its windows of steps, and the team meets only at the end), when the row
blocks share out evenly; ``shared_tiles``, the team shares each phase's tiles with a
barrier after each; ``serial``, when one thread runs, or a step has too little work to pay for a team.  On the
micro-kernel the shared tiles of each step are re-cut to the height (at most ``rows``) that evens out the
threads' work for the rows running at that step (``step_tiles.balanced_step_tiling``): a ragged batch's rows
shrink step by step, and a padded batch's row blocks may not share out (N = 40 in 16-row blocks of two unit
blocks on two threads: one thread's tiles held 1.5x the other's).  Its sums do not depend on the tile, so the
bits stay those of one thread.  A ragged batch with at least ``RAGGED_OWNED_MIN_ROWS`` rows a thread is instead
owned: each thread a run of the sorted rows for all the steps, the runs cut by what their steps cost, so that the
longest sequences' thread takes fewer rows and no thread waits at a step (on two threads from 8 rows a thread).

**Step weights.**  ``microkernel``: the step products run on the packed micro-kernel (AVX2 builds, unit blocks
of whole panels), for tiles too large for OpenBLAS's small-matrix path, and for the LSTM and GRU at H = 256-512
from N = 32 on (the LSTM from N = 16) in calls of N * T >= 512 rows, where the small path's 16 x 64 tiles become
16 x 256 (each tile copies its rows into slivers once per step, so fewer and wider tiles copy less), and on cores
with two 512-bit FMA units for the RNN at H = 512 too; every step whose panels fit where SciPy's OpenBLAS has no
small-matrix kernels (AVX2-only CPUs).  float64 takes its own kernels (``packed_gemm_f64.h``) by
the same rule, and from N = 8, N * T = 256 and H = 256 on (``FLOAT64_MICROKERNEL_*``): on every such shape measured
they ran faster than OpenBLAS's dgemm tiles (bench/RESULTS.md, stop 47);
``blocked``: the
BLAS path on a copy of the weights, each unit block's gate columns side by side (where the runs a tile
reads are short and far apart); ``as_given``.  The backward pass reads the micro-kernel's panels, or
``Wh.T``.  **All-step products** (input projection, ``dx``, weight gradients) run on the micro-kernel
(float64: its float64 kernels) where it is built and every side of the product is long enough, unless the plan
says ``blas``.  There each thread starts on its own part of the product, and a thread done with its part takes
over the far rows of the one with the most left, or of the next where that one cannot be split yet
(``all_steps._take_over``): on a shared machine one core is often
slower than the other for a while, and a fixed cut then waits for it.  The bits do not depend on who sums a row.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Tuple

import numpy as np

from . import config
from .dispatch import avx512_available, kernel_module
from .threads import blas_has_small_matrix_path, resolve_num_threads

_kernels = kernel_module("kernels")  # the AVX-512 or AVX2 twin where the CPU runs it
CONSTANTS = _kernels.CONSTANTS  # sizes the C code is built with: panel width, strip bytes, ...

# Below this many flops per step, a parallel region costs more than it saves.
MIN_PARALLEL_STEP_FLOPS = 200_000
# Below this many flops in a training step (forward + backward: a forward pass counts three times its own
# flops, as it commits the backward to its plan), a thread team costs more than it saves: LSTM, GRU and RNN
# training steps of 1-10 MFLOP ran 1.0-1.13x the one-thread time on two threads (bench/RESULTS.md).
MIN_PARALLEL_CALL_FLOPS = 10_000_000
# OpenBLAS takes its unpacked small-matrix path for products of up to this many multiply-adds; above it the
# micro-kernel is faster (N=128, H=1024).  Below it, only the LSTM's and GRU's steps at MICROKERNEL_* sizes leave it.
SMALL_GEMM_MACS = 1_000_000
# From this batch on, at these widths, the LSTM's and GRU's small step products run faster on the micro-kernel,
# on unit blocks of up to WIDE_UNITS units, than on OpenBLAS's small-matrix path, on one and two threads, in
# training and inference (bench/RESULTS.md: N >= 32, H = 256 2026-12-04 afternoon; H = 512 and the LSTM from N = 16
# 2026-12-05, stop 42; the 16-core Xeon, on whole-batch tiles, ran H = 512 faster on it at 1-4 threads).  Below
# N = 16 a thread's rows fill its 6-row slivers poorly (two threads own 8 rows each at N = 16), and the RNN's steps,
# a quarter of the LSTM's, were not faster.  The GRU at N = 16-24 gained on one thread but lost in inference on
# two: it keeps BLAS there.
MICROKERNEL_MIN_N = 32
MICROKERNEL_MIN_N_LSTM = 16
# The step weights' panels, packed once per call, pay back over its steps: from this many rows of the call, N * T,
# on.  Shorter calls ran faster on BLAS on two threads (a single step, or T = 5-8), the two were level from
# N * T = 512 (T = 16 at N = 32), and the micro-kernel won from T = 35 (bench/RESULTS.md, stop 42).
MICROKERNEL_MIN_ROWS = 512
MICROKERNEL_MIN_H = 256
MICROKERNEL_MAX_H = 512
# The rules above were measured beside OpenBLAS's small-matrix kernels, which only its SkylakeX-class cores have.
# On its other cores (Haswell's and Zen's, on CPUs without AVX-512: ``threads.blas_has_small_matrix_path``) a
# step's small products are packed on every call, and the steps (float32 and float64) take the micro-kernel
# wherever its panels fit, at any N, T and H (``packing_blas``): there it ran every shape tried faster or level
# (bench/RESULTS.md, stop 53).
MICROKERNEL_MIN_GATES = 3
# On cores with two 512-bit FMA units (Intel's AVX-512 cores, whose micro-kernel runs 12-row slivers:
# ``dispatch.sliver_rows``) the RNN's steps at H = 512 ran faster on the micro-kernel too, at N = 64 and 128, on
# one and two threads, training and inference; at H = 256 the two were level (bench/RESULTS.md, stop 43).  The
# Zen 4 keeps the rule above.  A property of the machine, not of the process's choices (``RNNFAST_ISA``,
# ``RNNFAST_SLIVER_ROWS``), so that those never change a path, nor a bit.
TWO_FMA_UNITS = config.cpu_is_intel() and avx512_available()
MICROKERNEL_MIN_H_FEW_GATES = 512
# float64 steps take their micro-kernel (``packed_gemm_f64.h``) on smaller shapes as well: OpenBLAS's dgemm runs the
# small step tiles slowly.  From N = 8 and N * T = 256 rows on, at H >= 256, every cell's calls measured ran faster
# on the kernel; a single step (the panels packed for one step's work), N = 8 at H = 128 on two threads (4-row tiles)
# and H = 128 in training did not (bench/RESULTS.md, stop 47).
FLOAT64_MICROKERNEL_MIN_N = 8
FLOAT64_MICROKERNEL_MIN_ROWS = 256
FLOAT64_MICROKERNEL_MIN_H = 256
# On such cores the micro-kernel's small step tiles take 32 rows where the batch shares out in 32-row blocks evenly
# over the threads: 12-row slivers cut 32 rows into 12 + 10 + 10, where 16 rows gave two 8-row slivers that keep
# the FMA units less busy, and a thread reads a step's weights once per 32 rows.  Every cell ran faster at N = 64
# and 128, H = 256 and 512 on two threads, training and inference (bench/RESULTS.md, stop 44).  The tiles of the
# micro-kernel never change the bits.
TWO_FMA_UNITS_ROWS = 32
WIDE_UNITS = 256
# The LSTM's and GRU's micro-kernel steps at 512 < H <= 1024 (tiles too large for OpenBLAS's small path): where the
# batch splits into one block of 32-128 rows a thread, each thread takes its block over the whole width and owns it
# (no barrier a step; its rows' slivers read once a step for all the units), instead of 128-row blocks cut by units
# and shared.  Faster at N = 64 and 128, H = 1024, on one and two threads, in training and inference; the RNN, a
# quarter of the work a step, was level (bench/RESULTS.md, stop 45).  Beyond 1024 units, or below 32 rows a thread
# (many cores), the unit split stands: it keeps a thread's slice of the step weights small.  On a 2-core Zen 3
# (512 KiB of L2, where a block's 1 MiB of gate rows leaves L2 at every k-block) the unit split ran 2-8% faster on
# two threads in one spell and 1-6% slower in another, so the whole width stays there too (bench/RESULTS.md,
# stop 61).
OWNED_MIN_ROWS = 32
OWNED_MAX_H = 1024
# A ragged batch on the micro-kernel's steps, from this many rows a thread (OWNED_MIN_ROWS above 512 units): each
# thread owns a run of the sorted rows for all the steps, in blocks of up to OWNED_MIN_ROWS rows, the runs cut by
# what their steps cost (``step_tiles.owned_row_cuts``: the longest sequences' thread takes fewer rows), where the
# team shared each step's tiles with a barrier a phase: on two threads faster for the LSTM, GRU and RNN from N = 16
# to 64, level above (32-row blocks; taller ones were slower at N = 128).  Each thread then reads all the step
# weights at every step: on two threads that costs less than the barriers from 8 rows a thread
# (RAGGED_OWNED_MIN_ROWS_TWO; with 4-6, inference lost beside a second process's calls); on more, whose streams of
# the weights share L3 (unmeasured: no such machine was lent), only from 16 rows a thread, the padded plan's owned
# block at N = 32 on two threads.  Measurements: bench/RESULTS.md, stop 60.
RAGGED_OWNED_MIN_ROWS = 16
RAGGED_OWNED_MIN_ROWS_TWO = 8
# The vanilla RNN's BLAS step tiles in float64 at 256 < H <= 512, from N = 32: 32 rows x 128 units, where the shape's
# rule gives 16 x 64.  A 64-unit tile of the RNN is 64 columns wide (the LSTM's and GRU's: 256 and 192), and
# OpenBLAS's dgemm runs such narrow products slowly: the wider tiles were faster on one and two threads, N = 32-128,
# training and inference (sgemm's small-matrix path is the other way round, and the LSTM's and GRU's float64 tiles
# were fastest at 16 x 64; bench/RESULTS.md, stop 45).  Tiles 256 units wide ran faster still on two threads, but
# leave fewer than 8 tiles a step at N = 64 for a many-core machine.
FLOAT64_RNN_ROWS = 32
FLOAT64_RNN_UNITS = 128
# One thread on the micro-kernel takes up to this many rows in one row block: a step's weights (1 MiB at H = 256)
# are then read once a step, not once per 16-row block (measured: bench/RESULTS.md, stop 37).  A block of any
# height is cut into slivers of at least 3 rows where it has 3 (``packed_gemm.h``), so no height leaves the FMA
# units idle on a last sliver of 1 or 2.
SERIAL_MICROKERNEL_ROWS = 128
# A tile reads each row of a gate block as a run of ``units`` values, the runs gates*H values apart.
# Runs of at most 8 cache lines at least 8 KiB apart defeat the hardware prefetchers (every row starts a
# new page) and collide in the L2 sets: there the blocked copy pays.
SHORT_RUN_BYTES = 512
FAR_ROWS_BYTES = 8192
# The copy costs about two steps' reads of the weights: a single step loses by it, four already gain.
MIN_STEPS_FOR_COPY = 4

SCHEDULES = tuple(_kernels.SCHEDULES)
STEP_WEIGHTS = ("microkernel", "blocked", "as_given")
TILE_ORDERS = ("row_major", "unit_major")
ALL_STEP_PRODUCTS = ("microkernel", "blas")


def step_tiling(N: int, H: int) -> Tuple[int, int]:
    """(rows, units) of a step's tiles, from the problem shape alone."""
    half = -(-N // 2)
    if H <= 64:
        return max(min(half, 32), 1), H
    if H <= 256:
        if N < 32 and 32 * half >= H:  # two row blocks, one per thread: no barriers
            return half, (H if half * 4 * H * H <= SMALL_GEMM_MACS else 64)
        return (16 if N >= 32 else max(N, 1)), 64
    if H <= 512:
        return max(min(N, 16), 1), 64
    return max(min(N, 128), 1), 128


def blas_step_weights(gates: int, T: int, H: int, units: int, itemsize: int) -> str:
    """The BLAS path's step weights for tiles ``units`` wide: ``blocked`` where a tile's runs of a gate block's
    row are short and far apart and the copy has steps enough to pay, else ``as_given``."""
    if (units < H and T >= MIN_STEPS_FOR_COPY and units * itemsize <= SHORT_RUN_BYTES
            and gates * H * itemsize >= FAR_ROWS_BYTES):
        return "blocked"
    return "as_given"


def _units_for_threads(rows: int, units: int, N: int, H: int, num_threads: int, ragged: bool = False) -> int:
    """Unit blocks of the micro-kernel's steps, halved (down to 32 units, a pair of panels) until the tiles are
    at least as many as the threads.  On the micro-kernel every product sums each element in the same fixed
    k-blocks whatever the tile, and the element-wise maths is per element: the bits do not depend on the cut,
    so it may follow the thread count.  Each thread then has work, and keeps a smaller slice of the step weights
    hot across steps (measured on 16 cores: bench/RESULTS.md).  ``ragged``: counted on one row block, as the
    last steps of a ragged batch have only the longest sequences' rows (2 threads at N=32, H=256, lengths
    uniform in [T/4, T]: 0.70 of the padded batch's time against 0.76 with whole-width tiles)."""
    row_blocks = 1 if ragged else -(-N // rows)
    while units > 32 and units % 32 == 0 and row_blocks * -(-H // units) < num_threads:
        units //= 2
    return units


def stream_unit_block(H: int) -> int:
    """Hidden units per unit block of a streaming step (the steppers): each block is one product over its
    own packed (D+H, G*width) strips, and a thread keeps the same blocks at every step, so small blocks stay
    in its cache.  Chosen from H only, so that the bits never depend on the thread count."""
    if H <= 32:
        return H
    return 32 if H <= 512 else 64


def _team(tasks: int, num_threads: int) -> int:
    """As the kernels' ``threads.team``: no more threads than tasks."""
    return max(1, min(tasks, num_threads))


@dataclass(frozen=True)
class StepPlan:
    """How one kernel call runs.  Make one with ``StepPlan.choose``; tests pick a path by naming it there."""

    rows: int
    units: int
    num_threads: int  # threads of the all-step products and the layout passes
    step_threads: int  # threads of the time loop
    schedule: str  # "serial", "owned_rows" or "shared_tiles"
    step_weights: str  # "microkernel", "blocked" or "as_given"
    all_step_products: str  # "microkernel" (where the shapes allow) or "blas"
    tile_order: str = "row_major"  # how a thread visits its tiles of a step: "row_major" or "unit_major"
    reasons: Tuple[Tuple[str, str], ...] = ()  # (field, why it was chosen)

    @property
    def schedule_code(self) -> int:
        return _kernels.SCHEDULES[self.schedule]

    @property
    def microkernel_products(self) -> bool:
        return self.all_step_products == "microkernel"

    def why(self, field: str) -> str:
        return dict(self.reasons).get(field, "")

    @classmethod
    def choose(cls, gates: int, N: int, T: int, H: int, dtype, num_threads=None, D=None, need_grad=True,
               ragged=False, whole_rows=False, **force) -> "StepPlan":
        """The plan for a call of a cell with ``gates`` gate blocks on ``(N, T, H)`` (input size ``D``,
        default H) in ``dtype``; ``need_grad``: a backward pass will follow on the same plan; ``ragged``:
        the sequences have lengths, so the rows still running shrink as they end; ``whole_rows``: the cell's
        steps run whole row blocks of ``rows`` on BLAS (the projection and layer-norm LSTMs and GRU), whose sums
        may change with a product's rows, so the weights stay as given and the tiles come from the shape alone.

        ``force`` names fields to take instead of the choice: ``rows``/``units`` (with each other),
        ``schedule``, ``step_weights`` (checked against what the build and shapes allow),
        ``all_step_products``, ``tile_order``.  The bits depend on ``rows``, ``units`` and the paths, never on
        the rest."""
        unknown = set(force) - {"rows", "units", "schedule", "step_weights", "all_step_products", "tile_order"}
        if unknown:
            raise TypeError(f"StepPlan.choose got unknown fields {sorted(unknown)}")
        nt = resolve_num_threads(num_threads)  # every call: it reads the environment
        if not force:  # a training loop repeats its shapes: the plan is made once per shape
            work = 2.0 * N * T * ((H if D is None else D) + H) * gates * H * (3 if need_grad else 1)
            return _chosen(cls, gates, N, T, H, np.dtype(dtype), nt, work < MIN_PARALLEL_CALL_FLOPS, bool(ragged),
                           bool(whole_rows))
        return cls._choose(gates, N, T, H, np.dtype(dtype), nt, force, whole_rows=whole_rows)

    @classmethod
    def _choose(cls, gates, N, T, H, dtype, nt, force, ragged=False, whole_rows=False) -> "StepPlan":
        reasons = []
        if "rows" in force or "units" in force:
            rows, units = int(force.get("rows", N)), int(force.get("units", H))
            if not (1 <= rows and 1 <= units <= H):
                raise ValueError(f"rows={rows}, units={units}: expected rows >= 1 and 1 <= units <= H = {H}")
            reasons.append(("tiles", "forced"))
        else:
            rows, units = step_tiling(N, H)
            reasons.append(("tiles", "from the problem shape alone (module docstring)"))
        tiles = -(-N // rows) * -(-H // units)
        row_blocks = -(-N // rows)

        owned_ragged = False
        micro = bool(CONSTANTS["microkernel"]) and dtype in (np.float32, np.float64)  # the all-step products
        panel = CONSTANTS["panel_width"] if dtype == np.float32 else CONSTANTS["panel_width_f64"]
        microkernel_fits = (bool(CONSTANTS["microkernel"]) and dtype in (np.float32, np.float64) and H % panel == 0
                            and units % panel == 0)
        min_n = MICROKERNEL_MIN_N_LSTM if gates == 4 else MICROKERNEL_MIN_N
        wide_batch = (N >= min_n and N * T >= MICROKERNEL_MIN_ROWS and MICROKERNEL_MIN_H <= H <= MICROKERNEL_MAX_H
                      and (gates >= MICROKERNEL_MIN_GATES or TWO_FMA_UNITS and H >= MICROKERNEL_MIN_H_FEW_GATES))
        packing_blas = not blas_has_small_matrix_path()
        float64_batch = (dtype == np.float64 and N >= FLOAT64_MICROKERNEL_MIN_N
                         and N * T >= FLOAT64_MICROKERNEL_MIN_ROWS and H >= FLOAT64_MICROKERNEL_MIN_H)
        step_weights = force.get("step_weights", "as_given" if whole_rows else None)
        itemsize = dtype.itemsize
        if step_weights is not None:
            if step_weights not in STEP_WEIGHTS:
                raise ValueError(f"step_weights must be one of {', '.join(STEP_WEIGHTS)}; got {step_weights!r}")
            if step_weights == "microkernel" and not microkernel_fits:
                raise ValueError(f"step_weights='microkernel' needs float32 or float64, a build with the micro-kernel "
                                 f"and H, units multiples of {panel}; got {dtype}, H={H}, units={units}, "
                                 f"micro-kernel {'built' if CONSTANTS['microkernel'] else 'not built'}")
            if step_weights == "blocked" and units >= H:
                raise ValueError(f"step_weights='blocked' needs more than one unit block; units={units}, H={H}")
            reasons.append(("step_weights", "forced" if "step_weights" in force else
                            "whole row blocks on BLAS: the weights as given, the tiles the shape's alone"))
        elif microkernel_fits and (rows * units * H > SMALL_GEMM_MACS or wide_batch or float64_batch or packing_blas):
            step_weights = "microkernel"
            small = rows * units * H <= SMALL_GEMM_MACS
            reasons.append(("step_weights", "tiles too large for OpenBLAS's small-matrix path" if not small else
                            f"N = {N}, N * T >= {MICROKERNEL_MIN_ROWS}, H = {H}, {gates} gates: whole slivers of "
                            "rows, the weights packed once per call" if wide_batch else
                            "SciPy's OpenBLAS has no small-matrix kernels on this CPU: it packs every step product" if packing_blas
                            else
                            f"float64, N >= {FLOAT64_MICROKERNEL_MIN_N}, N * T >= {FLOAT64_MICROKERNEL_MIN_ROWS}, "
                            f"H = {H}: dgemm runs the small step tiles slowly"))
            if "rows" not in force and "units" not in force:
                wide = units
                while small and 2 * wide <= WIDE_UNITS and H % (2 * wide) == 0:
                    wide *= 2  # each tile copies its rows into slivers once: fewer, wider tiles copy less
                blocks = N // TWO_FMA_UNITS_ROWS
                if (TWO_FMA_UNITS and small and not ragged and nt > 1 and rows < TWO_FMA_UNITS_ROWS
                        and N % TWO_FMA_UNITS_ROWS == 0 and blocks % nt == 0):
                    rows, row_blocks = TWO_FMA_UNITS_ROWS, blocks
                    reasons.append(("tiles", f"{rows}-row blocks, {blocks // nt} a thread: 12-row slivers fill them "
                                             "(cores with two 512-bit FMA units)"))
                if (not small and not ragged and gates >= MICROKERNEL_MIN_GATES and H <= OWNED_MAX_H and N % nt == 0
                        and OWNED_MIN_ROWS <= N // nt <= SERIAL_MICROKERNEL_ROWS):
                    rows, wide, row_blocks = N // nt, H, nt
                    reasons.append(("tiles", f"{rows}-row blocks of all {H} units, one a thread: no barrier, each "
                                             "thread's slivers read once a step"))
                owned_ragged = (ragged and nt > 1 and H <= OWNED_MAX_H and N >= nt * (
                    OWNED_MIN_ROWS if not small else RAGGED_OWNED_MIN_ROWS_TWO if nt == 2 else RAGGED_OWNED_MIN_ROWS))
                if owned_ragged:
                    rows, units = min(N, OWNED_MIN_ROWS), wide if small else H
                    row_blocks = -(-N // rows)
                    tiles = row_blocks * -(-H // units)
                    reasons.append(("tiles", f"each thread's own rows in blocks of up to {rows}, {units} units wide "
                                             "(the micro-kernel's sums do not depend on the tile)"))
                else:
                    split = _units_for_threads(rows, wide, N, H, nt, ragged)
                    if split != wide:
                        reasons.append(("tiles", f"{split}-unit blocks: as many tiles as threads"
                                                 f"{' in one row block (ragged)' if ragged else ''} (the "
                                                 "micro-kernel's sums do not depend on the tile)"))
                    units, tiles = split, row_blocks * -(-H // split)
        else:
            if ("rows" not in force and "units" not in force and gates == 1 and dtype == np.float64
                    and 256 < H <= 512 and N >= FLOAT64_RNN_ROWS):
                rows, units = FLOAT64_RNN_ROWS, FLOAT64_RNN_UNITS
                row_blocks = -(-N // rows)
                tiles = row_blocks * -(-H // units)
                reasons.append(("tiles", f"{rows} x {units}: the RNN's 64-column float64 tiles ran slower on dgemm"))
            step_weights = blas_step_weights(gates, T, H, units, itemsize)
            reasons.append(("step_weights", "short runs far apart: the copy pays over its steps"
                            if step_weights == "blocked" else "BLAS on the weights as given"))

        schedule = force.get("schedule")
        if schedule is not None:
            if schedule not in SCHEDULES:
                raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}; got {schedule!r}")
            step_threads = 1 if schedule == "serial" else _team(tiles, nt)
            reasons.append(("schedule", "forced"))
        elif owned_ragged:
            schedule, step_threads = "owned_rows", nt
            reasons.append(("schedule", "ragged, on the micro-kernel: each thread owns rows cut by what they cost "
                                        "(the longest sequences' thread fewer), no barrier a step"))
        elif nt == 1 or tiles == 1:
            schedule, step_threads = "serial", 1
            reasons.append(("schedule", "one thread" if nt == 1 else "one tile per step"))
        elif 2 * N * H * gates * H < MIN_PARALLEL_STEP_FLOPS:
            schedule, step_threads = "serial", 1
            reasons.append(("schedule", f"under {MIN_PARALLEL_STEP_FLOPS} flops a step: a team costs more"))
        else:
            step_threads = _team(tiles, nt)
            recut = "; re-cut per step to even out the threads' work" if step_weights == "microkernel" else ""
            if ragged:  # sorted longest first: the first row blocks run longest, owned they would idle the rest
                schedule = "shared_tiles"
                reasons.append(("schedule", "ragged: each step's running tiles shared, whichever rows they are"
                                            + recut))
            elif step_threads > 1 and row_blocks >= step_threads and row_blocks % step_threads == 0:
                schedule = "owned_rows"
                reasons.append(("schedule", f"{row_blocks} row blocks share out evenly over {step_threads} threads"))
            else:
                schedule = "shared_tiles"
                reasons.append(("schedule", f"{row_blocks} row blocks do not share out over {step_threads} threads"
                                            + recut))

        if (schedule == "serial" and step_weights == "microkernel" and "rows" not in force and "units" not in force
                and rows < min(N, SERIAL_MICROKERNEL_ROWS)):
            rows = min(N, SERIAL_MICROKERNEL_ROWS)
            row_blocks = -(-N // rows)
            reasons.append(("tiles", f"{rows}-row blocks: one thread reads a step's weights once for all its rows (the "
                                     "micro-kernel's sums do not depend on the tile)"))

        tile_order = force.get("tile_order")
        if tile_order is not None:
            if tile_order not in TILE_ORDERS:
                raise ValueError(f"tile_order must be one of {', '.join(TILE_ORDERS)}; got {tile_order!r}")
            reasons.append(("tile_order", "forced"))
        elif step_weights != "microkernel" and row_blocks > 1 and -(-H // units) > 1:
            tile_order = "unit_major"
            reasons.append(("tile_order", "BLAS tiles: a unit block's step weights read once a step by each thread, "
                                          "then from cache for its other row blocks"))
        else:
            tile_order = "row_major"
            reasons.append(("tile_order", "a row block's slivers copied once, for its unit blocks" if
                            step_weights == "microkernel" else "one row block or one unit block"))

        products = force.get("all_step_products", "microkernel" if micro else "blas")
        if products not in ALL_STEP_PRODUCTS:
            raise ValueError(f"all_step_products must be one of {', '.join(ALL_STEP_PRODUCTS)}; got {products!r}")
        reasons.append(("all_step_products", "forced" if "all_step_products" in force else
                        ("micro-kernel where every side is long enough" if micro else "BLAS tiles")))
        return cls(rows, units, nt, step_threads, schedule, step_weights, products, tile_order, tuple(reasons))

    def replace(self, **changes) -> "StepPlan":
        return dataclasses.replace(self, **changes)


@functools.lru_cache(maxsize=256)
def _chosen(cls, gates, N, T, H, dtype, nt, small, ragged, whole_rows) -> StepPlan:
    if small and nt > 1:
        plan = cls._choose(gates, N, T, H, dtype, 1, {}, whole_rows=whole_rows)
        return plan.replace(reasons=plan.reasons + (("num_threads", f"under {MIN_PARALLEL_CALL_FLOPS:.0e} flops a "
                                                                       "training step: one thread"),))
    return cls._choose(gates, N, T, H, dtype, nt, {}, ragged, whole_rows)
