# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The one driver of every cell: the time loop, its windows, schedules and thread team, Ctrl-C, the
products over all steps, and the streaming step.  A cell adds only its element-wise maths
(``lstm_cell.pxd``, ``gru_cell.pxd``, ``rnn_cell.pxd``), dispatched per tile in ``forward_phase``,
``backward_phase`` and ``stream_phase`` (oneDNN's split: ``ref_rnn.cpp`` drives, ``ref_postgemm_*`` add).

Layout: time-major ``(T, N, ...)``, so that at step t the rows of a row block are contiguous; ``hst``
holds T+1 states (index t: the state entering step t).  The user's batch-major ``hs`` is written by the
forward tiles, and their ``dhs`` read in place by the backward ones.

A step's (N, H) work is cut into tiles (a row block x a unit block) whose shapes are the problem's
alone; a step runs in phases (one for most cells; the reset-before GRU needs r * h of all units before
its n-product), each phase a pass over the tiles.  Schedules (``rnnfast._core.plan`` chooses, with its
reason): SERIAL, one thread; OWNED_ROWS, each thread owns whole row blocks for all the steps (looking at Ctrl-C
between its windows) and never waits for another (batch rows never read each other; on the micro-kernel a ragged
batch's rows are cut by what they cost: ``owned_parts``); SHARED_TILES, the team
shares each phase's tiles, a barrier after each (on the micro-kernel, each step's tiles re-cut to the height
that evens out the threads' work for the rows running then: ``step_tiles.balanced_step_tiling``).  Who runs a tile
never changes its arithmetic: the bits do not depend on the thread count.  Ctrl-C is looked at between windows of
STEPS_PER_WINDOW steps.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange

import numpy as np

cimport numpy as cnp
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from all_steps cimport (FAR_C_BYTES, PACKED_MIN_SIDE, RowRuns, all_steps_gemm, all_steps_gemm_sums, column_dot_sums,
                        column_sums, gather_rows, packed_product, scatter_rows, take_over_probe,
                        weight_gradients)
from finite cimport nonfinite_blocks
from gru_cell cimport (gru_backward_gates_tile, gru_backward_reset_tile, gru_forward_tile_after,
                       gru_forward_tile_candidate, gru_forward_tile_reset, gru_stream_block, gru_stream_candidate)
from interrupt cimport (STEPS_PER_WINDOW, check_interrupt, interrupt_mark, interrupted_since,
                        rnnfast_install_sigint)
from lstm_cell cimport (lstm_backward_gates_tile, lstm_cell_update, lstm_forward_tile, lstm_peephole_gradients,
                        lstm_peephole_update, lstm_stream_block)
from projection cimport ProjectedBuffers, projected_backward_step, projected_forward_step, step_columns
from layer_norm cimport (LayerNormBuffers, gru_layer_norm_backward_step, gru_layer_norm_forward_step,
                         layer_norm_backward_step, layer_norm_forward_step, layer_norm_gru_row,
                         layer_norm_input_gradients, layer_norm_inputs, layer_norm_lstm_row)
from microkernel cimport (GROUP_ROWS, KBLOCK, PANEL, PANEL_D, RNNFAST_PACKED_GEMM, SliverCache, force_sliver_rows,
                          new_sliver_cache, pack_step_panels, row_sums, select_sliver_rows, select_wide_kernel)
from rnn_cell cimport rnn_backward_gates_tile, rnn_forward_tile, rnn_stream_block
from gate_math cimport fill, sigmoid_inplace, tanh_inplace
from step_tiles cimport (StepBuffers, Tiling, backward_recurrent_product, balanced_step_tiling, block_step_weights,
                         emit_output_tile, make_tiling, owned_row_cuts, owned_tiling, running_row_blocks, tile_at,
                         tile_count)
from strips cimport STRIP_BYTES, StreamBuffers, row_product
from thread_scratch cimport scratch_done
from threads cimport team

cdef enum:
    CELL_LSTM = 0
    CELL_GRU = 1
    CELL_RNN = 2
    SERIAL = 0
    OWNED_ROWS = 1
    SHARED_TILES = 2

# Read by Python (``rnnfast._core``): the codes of the cells and schedules, and the sizes the C code is
# built with, so that no number is written twice.
CELLS = {"lstm": CELL_LSTM, "gru": CELL_GRU, "rnn": CELL_RNN}
SCHEDULES = {"serial": SERIAL, "owned_rows": OWNED_ROWS, "shared_tiles": SHARED_TILES}
CONSTANTS = {
    "microkernel": RNNFAST_PACKED_GEMM,  # 1 where this build has the micro-kernel (AVX2 + FMA)
    "panel_width": PANEL,                # columns of a micro-kernel panel (float32)
    "panel_width_f64": PANEL_D,          # ... of a float64 step kernel's panel
    "kblock": KBLOCK,                    # depth of a micro-kernel k-block
    "group_rows": GROUP_ROWS,            # rows of op(A) per group of a packed all-step product
    "microkernel_min_side": PACKED_MIN_SIDE,  # all-step products with a shorter side stay on BLAS
    "far_c_bytes": FAR_C_BYTES,          # float32 all-step products with a C this large ask for its rows ahead
    "strip_bytes": STRIP_BYTES,          # width of a stepper's column strips
    "steps_per_window": STEPS_PER_WINDOW,
}




def use_wide_microkernel(bint on):
    """Run the micro-kernel's panels two at a time in AVX-512 registers (``on``, where this build has the
    micro-kernel and the CPU AVX-512) or one at a time in AVX2 ones.  Every sum is the same sequence of FMAs
    either way: the bits do not change.  Returns whether the AVX-512 kernel is on.  ``rnnfast._core.dispatch``
    calls it at import, from ``RNNFAST_ISA``."""
    return bool(select_wide_kernel(on))


def use_sliver_rows(int rows, bint force=False):
    """Copy the micro-kernel's rows of A in slivers of ``rows`` (12, taken only with the AVX-512 kernel, or 6)
    and return the height in use.  A row's sums are the same in any sliver: the bits do not change.
    ``rnnfast._core.dispatch`` calls it at import (``dispatch.sliver_rows``).  ``force`` (tests): 12 with the
    AVX2 kernel too, so that machines without AVX-512 check the 12-row slivers' cut and copies."""
    return force_sliver_rows(rows) if force else select_sliver_rows(rows)


cnp.import_array()
rnnfast_install_sigint()  # count Ctrl-C for the kernels (src/interrupt.h)


# --- Per cell: which tile maths runs in each phase ---

cdef inline int forward_phases(const StepBuffers* b) noexcept nogil:
    return 2 if b.cell == CELL_GRU and not b.reset_after else 1


cdef inline void forward_phase(int phase, Py_ssize_t t, Py_ssize_t tile, Tiling s, const StepBuffers* b,
                               floating* act, SliverCache* slivers) noexcept nogil:
    if b.cell == CELL_LSTM:
        lstm_forward_tile(t, tile, s, b, act, slivers)
    elif b.cell == CELL_RNN:
        rnn_forward_tile(t, tile, s, b, act, slivers)
    elif b.reset_after:
        gru_forward_tile_after(t, tile, s, b, act, slivers)
    elif phase == 0:
        gru_forward_tile_reset(t, tile, s, b, act, slivers)
    else:
        gru_forward_tile_candidate(t, tile, s, b, act, slivers)


cdef inline int backward_phases(const StepBuffers* b) noexcept nogil:
    return 4 if b.cell == CELL_GRU and not b.reset_after else 2


cdef inline void backward_phase(int phase, Py_ssize_t t, Py_ssize_t tile, Tiling s, const StepBuffers* b,
                                floating* dGx, SliverCache* slivers) noexcept nogil:
    """Phase 0: the gate gradients of the tile (into dGx, dGh).  Then dL/dh_{t-1} += dGh_t @ Wh^T; the
    reset-before GRU first takes d(r * h) from the n-gate alone, then the r gradient, then the rest."""
    cdef floating zero = 0, one = 1
    cdef const floating* WhT = <const floating*>b.WhT
    cdef const floating* panels = <const floating*>b.panels
    cdef const floating* dGh = <const floating*>b.dGh
    if phase == 0:
        if b.cell == CELL_LSTM:
            lstm_backward_gates_tile(t, tile, s, b, dGx)
        elif b.cell == CELL_RNN:
            rnn_backward_gates_tile(t, tile, s, b, dGx)
        else:
            gru_backward_gates_tile(t, tile, s, b, dGx)
    elif b.cell == CELL_GRU and not b.reset_after:
        if phase == 1:
            backward_recurrent_product(t, tile, s, 2, 3, WhT, panels, dGh, zero, <floating*>b.drh, slivers)
        elif phase == 2:
            gru_backward_reset_tile(t, tile, s, b, dGx)
        else:
            backward_recurrent_product(t, tile, s, 0, 2, WhT, panels, dGh, one, <floating*>b.dh, slivers)
    else:
        backward_recurrent_product(t, tile, s, 0, s.gates, WhT, panels, dGh, one, <floating*>b.dh, slivers)


cdef inline int stream_passes(const StreamBuffers* b) noexcept nogil:
    return 2 if b.cell == CELL_GRU and not b.reset_after else 1


cdef inline void stream_phase(int phase, Py_ssize_t k, const StreamBuffers* b, floating* gates) noexcept nogil:
    if b.cell == CELL_LSTM:
        lstm_stream_block(k, b, gates)
    elif b.cell == CELL_RNN:
        rnn_stream_block(k, b, gates)
    elif phase == 0:
        gru_stream_block(k, b, gates)
    else:
        gru_stream_candidate(k, b, gates)


# --- The time loop, written once ---

cdef inline void gather_step_rows(Py_ssize_t t, Py_ssize_t n0, Py_ssize_t n1, Tiling s, const StepBuffers* b,
                                  floating* act) noexcept nogil:
    """Token input: rows n0..n1-1 of step t's block get their tokens' table rows, by the thread about to run
    them, so that they are in its cache when its tiles add the products (gathered a window at a time by
    all threads, a thread's rows had mostly been written by the other, and left its cache)."""
    cdef Py_ssize_t G = s.gates * s.H, r
    cdef const floating* table = <const floating*>b.table
    for r in range(s.offsets[t] + n0, min(s.offsets[t] + n1, s.offsets[t + 1])):
        memcpy(act + r * G, table + b.tokens[r] * G, G * sizeof(floating))


cdef void forward_steps(Py_ssize_t w0, Py_ssize_t w1, Py_ssize_t rb0, Py_ssize_t rb1, Tiling s,
                        const StepBuffers* b, floating* act) noexcept nogil:
    """Steps w0..w1-1 over row blocks rb0..rb1-1, by one thread: all of them, or its own."""
    cdef Py_ssize_t t, i, tile, rb_end
    cdef int phase, phases = forward_phases(b)
    cdef SliverCache slivers = new_sliver_cache(b.panels != NULL, s.rows, s.H, sizeof(floating))
    for t in range(w0, w1):
        if b.table != NULL:
            gather_step_rows(t, s.first_row + rb0 * s.rows, min(s.end_row, s.first_row + rb1 * s.rows), s, b, act)
        rb_end = min(rb1, running_row_blocks(s, t))  # tiles past the running rows: none
        for phase in range(phases):
            for i in range(max(rb_end - rb0, 0) * s.unit_blocks):
                tile = tile_at(s, rb0, rb_end, i)
                forward_phase(phase, t, tile, s, b, act, &slivers)
                if phase == phases - 1:
                    emit_output_tile(t, tile, s, <const floating*>b.hst, <floating*>b.hs)
    scratch_done(slivers.data)


cdef void backward_steps(Py_ssize_t w0, Py_ssize_t w1, Py_ssize_t rb0, Py_ssize_t rb1, Tiling s,
                         const StepBuffers* b, floating* dGx) noexcept nogil:
    """Steps w1-1 down to w0 over row blocks rb0..rb1-1, by one thread (see ``forward_steps``)."""
    cdef Py_ssize_t t, i, rb_end
    cdef int phase, phases = backward_phases(b)
    cdef SliverCache slivers = new_sliver_cache(b.panels != NULL, s.rows, s.gates * s.H, sizeof(floating))
    for t in range(w1 - 1, w0 - 1, -1):
        rb_end = min(rb1, running_row_blocks(s, t))
        for phase in range(phases):
            for i in range(max(rb_end - rb0, 0) * s.unit_blocks):
                backward_phase(phase, t, tile_at(s, rb0, rb_end, i), s, b, dGx, &slivers)
    scratch_done(slivers.data)


cdef void owned_steps(bint forward, Py_ssize_t T, Py_ssize_t rb0, Py_ssize_t rb1, Tiling s, const StepBuffers* b,
                      floating* a, long mark) noexcept nogil:
    """All T steps of row blocks rb0..rb1-1 by one thread (its own, or all of them), window by window (latest first
    in backward), looking at Ctrl-C between windows: owned rows never read another thread's, so the team meets only
    at the end, and a thread slowed for a while by its core is not waited for at every window.  ``a``: act (forward)
    or dGx (backward)."""
    cdef Py_ssize_t w, w0, w1
    for w in range((T + STEPS_PER_WINDOW - 1) // STEPS_PER_WINDOW):
        if interrupted_since(mark):
            return
        if forward:
            w0 = w * STEPS_PER_WINDOW
            forward_steps(w0, min(T, w0 + STEPS_PER_WINDOW), rb0, rb1, s, b, a)
        else:
            w1 = T - w * STEPS_PER_WINDOW
            backward_steps(max(0, w1 - STEPS_PER_WINDOW), w1, rb0, rb1, s, b, a)


cdef void owned_parts(bint forward, Py_ssize_t T, int nt, Tiling s, const StepBuffers* b, floating* a,
                      long mark) noexcept nogil:
    """``owned_steps`` on each of ``nt`` threads, each its own rows: an equal share of the row blocks (the plan's
    tiles divide evenly), or on the micro-kernel, where the tiles never change a bit, a ragged batch's rows cut by
    what they cost (``owned_row_cuts``: the longest sequences' thread takes fewer rows)."""
    cdef Py_ssize_t* cuts = NULL
    cdef Tiling own
    cdef int part
    if s.order != NULL and b.panels != NULL:
        cuts = <Py_ssize_t*>malloc((nt + 1) * sizeof(Py_ssize_t))
        if cuts != NULL:  # (without memory: equal row blocks, the same bits)
            owned_row_cuts(s, nt, cuts)
    for part in prange(nt, num_threads=nt, schedule="static"):
        if cuts != NULL:
            own = owned_tiling(s, cuts[part], cuts[part + 1])
            owned_steps(forward, T, 0, own.row_blocks, own, b, a, mark)
        else:
            owned_steps(forward, T, part * s.row_blocks // nt, (part + 1) * s.row_blocks // nt, s, b, a, mark)
    free(cuts)


cdef void* _data(object a, int typenum) except? NULL:
    """The data of a C-contiguous array of ``typenum`` (the call's float type, or intp), or NULL for None
    or an empty array.  The Python driver allocated every buffer; this only guards the raw pointers."""
    if a is None:
        return NULL
    if not cnp.PyArray_Check(a) or cnp.PyArray_TYPE(a) != typenum or not cnp.PyArray_IS_C_CONTIGUOUS(a):
        raise TypeError(f"a kernel buffer is {getattr(a, 'dtype', type(a).__name__)} "
                        f"{'C-contiguous' if getattr(a, 'flags', {}).get('C_CONTIGUOUS') else 'strided'}; "
                        f"expected a C-contiguous array of NumPy type number {typenum}")
    if cnp.PyArray_SIZE(a) == 0:
        return NULL
    return cnp.PyArray_DATA(a)


cdef StepBuffers _step_buffers(object buf, int ft) except *:
    """The buffers of a call as raw pointers; ``ft``: the call's float type number."""
    cdef StepBuffers b
    b.cell = buf.cell
    b.reset_after = buf.reset_after
    b.relu = buf.relu
    b.Wh = _data(buf.Wh, ft)
    b.WhT = _data(buf.WhT, ft)
    b.panels = _data(buf.panels, ft)
    b.bh = _data(buf.bias_h, ft)
    b.peep = _data(buf.peep, ft)
    b.zoneout = buf.zoneout is not None
    b.zone_train = buf.zoneout is not None and buf.zoneout_key is not None
    b.z_c, b.z_h = buf.zoneout if buf.zoneout is not None else (0.0, 0.0)
    b.zone_key = buf.zoneout_key if b.zone_train else 0
    b.act = _data(buf.act, ft)
    b.hg = _data(buf.hg, ft)
    b.hst = _data(buf.hst, ft)
    b.cst = _data(buf.cst, ft)
    b.rh = _data(buf.rh, ft)
    b.hs = _data(buf.hs, ft)
    b.dhs = _data(buf.dhs, ft)
    b.dh = _data(buf.dh, ft)
    b.dc = _data(buf.dc, ft)
    b.drh = _data(buf.drh, ft)
    b.dGx = _data(buf.dGx, ft)
    b.dGh = _data(buf.dGh, ft)
    b.table = _data(buf.table, ft)
    b.tokens = <const Py_ssize_t*>_data(buf.tokens, cnp.NPY_INTP)
    return b


cdef Tiling _tiling(object buf, object plan, Py_ssize_t N, Py_ssize_t T, Py_ssize_t H, Py_ssize_t G) except *:
    """The step tiles of a call, over the rows of each step (``buf.offsets``, ``buf.active``, ``buf.order``)."""
    if buf.offsets.shape[0] != T + 1 or buf.active.shape[0] != T or (buf.order is not None and buf.order.shape[0] != N):
        raise ValueError("kernel buffers: offsets, active and order do not match the call's T and N")
    return make_tiling(N, T, H, G // H, plan.rows, plan.units, <const Py_ssize_t*>_data(buf.offsets, cnp.NPY_INTP),
                       <const Py_ssize_t*>_data(buf.active, cnp.NPY_INTP),
                       <const Py_ssize_t*>_data(buf.order, cnp.NPY_INTP), buf.ring, plan.tile_order == "unit_major")


cdef void _zero_past_running_rows(Tiling s, floating* a, Py_ssize_t width) noexcept nogil:
    """In each step's block of a time-major array, the rows of the sequences that have ended: zero (they
    enter the all-step products, which sum over every row)."""
    cdef Py_ssize_t t, r
    for t in range(s.T):
        for r in range(s.offsets[t] + s.active[t], s.offsets[t + 1]):
            fill(a + r * width, width, 0)


cdef const RowRuns* _running_rows(Tiling s, RowRuns* runs) noexcept nogil:
    """A ragged batch's running rows as the runs of the weight gradients' sums (``all_steps.RowRuns``): each step's
    block up to its ``active`` rows.  The rest of each block is zero in dG (``_zero_past_running_rows``), so the
    micro-kernel leaves it out with no change to a bit; NULL without lengths (every row runs)."""
    if s.order == NULL:
        return NULL
    runs.start, runs.count, runs.n = s.offsets, s.active, s.T
    return runs


def rows_taken_over(int late_thread=-1, double seconds=0):
    """Internal, for tests: ``all_steps.take_over_probe`` for this module's products."""
    return take_over_probe(late_thread, seconds)


def balanced_heights(active, Py_ssize_t rows, Py_ssize_t unit_blocks, int num_threads):
    """Internal, for tests: the row-block height each step takes on the micro-kernel's shared tiles
    (``step_tiles.balanced_step_tiling``), for the running rows ``active`` (one entry a step, non-increasing),
    tiles at most ``rows`` high and ``unit_blocks`` wide, on ``num_threads`` threads."""
    steps = np.ascontiguousarray(active, dtype=np.intp)
    if steps.ndim != 1 or steps.size == 0 or steps.min() < 1 or rows < 1 or unit_blocks < 1 or num_threads < 1:
        raise ValueError(f"expected running rows >= 1 a step and rows, unit_blocks, num_threads >= 1; got "
                         f"{steps.tolist()}, {rows}, {unit_blocks}, {num_threads}")
    cdef Py_ssize_t[::1] a = steps
    cdef Tiling s = make_tiling(steps.max(), a.shape[0], unit_blocks * PANEL, 4, rows, PANEL, NULL, &a[0], NULL,
                                False, False)
    return [balanced_step_tiling(s, t, num_threads).rows for t in range(a.shape[0])]


def owned_cuts(active, Py_ssize_t unit_blocks, int num_threads):
    """Internal, for tests: where ``owned_parts`` cuts a ragged batch's sorted rows for ``num_threads`` threads
    (``step_tiles.owned_row_cuts``), for the running rows ``active`` (one entry a step, non-increasing; N = the
    first) and ``unit_blocks`` unit blocks: ``num_threads + 1`` row indices."""
    steps = np.ascontiguousarray(active, dtype=np.intp)
    if (steps.ndim != 1 or steps.size == 0 or steps.min() < 1 or np.any(np.diff(steps) > 0) or unit_blocks < 1
            or num_threads < 1):
        raise ValueError(f"expected non-increasing running rows >= 1 a step and unit_blocks, num_threads >= 1; got "
                         f"{steps.tolist()}, {unit_blocks}, {num_threads}")
    cdef Py_ssize_t[::1] a = steps
    cdef Py_ssize_t[::1] cuts = np.zeros(num_threads + 1, dtype=np.intp)
    cdef Tiling s = make_tiling(steps[0], a.shape[0], unit_blocks * PANEL, 4, steps[0], PANEL, NULL, &a[0], NULL,
                                False, False)
    owned_row_cuts(s, num_threads, &cuts[0])
    return np.asarray(cuts).tolist()


def prepare_forward(buf, plan, bint count):
    """Internal: before ``forward``, the step weights into the micro-kernel's panels (``buf.panels``), and with
    ``count`` the weights' NaN/Inf check: Wh's in the pass that packs it (each task tests the panels it has just
    written, still in its cache: Wh is read once for both), Wx's alone (each thread of the input product packs the
    panels it reads itself, so there is no one pass to fold it into).  One call for both.  Returns (Wx has one, Wh
    has one, blas): the caller raises before ``forward`` runs, and pins BLAS at one thread for it where ``blas``
    says that its products call BLAS (on the micro-kernel they never do, unless its scratch cannot be allocated:
    the products then fall back to BLAS tiles, correct but on a team of teams).  ``forward`` refuses panels that
    were not packed here."""
    if buf.Wx.dtype == np.float32:
        return _prepare_forward[float](buf.Wx, buf, plan, count)
    return _prepare_forward[double](buf.Wx, buf, plan, count)


cdef tuple _prepare_forward(const floating[:, ::1] Wx, object buf, object plan, bint count):
    cdef int ft = cnp.NPY_FLOAT if floating is float else cnp.NPY_DOUBLE
    cdef Py_ssize_t D = Wx.shape[0], H = buf.Wh.shape[0], G = buf.Wh.shape[1], rows = buf.act.shape[0]
    cdef Py_ssize_t bad_x = 0, bad_h = 0
    cdef int num_threads = plan.num_threads, units = plan.units
    cdef const floating* Wh = <const floating*>_data(buf.Wh, ft)
    cdef floating* panels = <floating*>_data(buf.panels, ft)
    if Wx.shape[1] != G or H == 0 or G % H != 0:
        raise ValueError("kernel buffers: Wx and Wh do not match (D, G) and (H, G)")
    if panels != NULL and buf.panels.size < G * H:
        raise ValueError("kernel buffers: the panels' array is too small for the step weights")
    with nogil:
        if panels != NULL:
            bad_h = pack_step_panels(True, Wh, panels, H, G // H, units, num_threads, count)
        elif count:
            bad_h = nonfinite_blocks(Wh, H * G, num_threads)
        if count and D > 0:
            bad_x = nonfinite_blocks(&Wx[0, 0], D * G, num_threads)
    buf.weights_packed = True
    return (bad_x != 0, bad_h != 0,
            panels == NULL or (buf.x_tm is not None and not packed_product(rows, G, D, plan.microkernel_products)))


def forward(buf, plan):
    """Internal: the forward pass of ``rnnfast._core.driver`` over validated, allocated buffers
    (``SequenceBuffers``: time-major arrays in blocks of rows per step) on a ``StepPlan``.  Without ``x_tm``
    (token input), the input part of a step row's pre-activations is the ``table`` row of its token."""
    if buf.Wx.dtype == np.float32:
        _forward[float](buf.Wx, buf, plan)
    else:
        _forward[double](buf.Wx, buf, plan)


cdef int _forward(const floating[:, ::1] Wx, object buf, object plan) except -1:
    cdef Py_ssize_t T = buf.active.shape[0], N = buf.hs.shape[0], D = Wx.shape[0], H = buf.Wh.shape[0]
    cdef Py_ssize_t G = buf.Wh.shape[1], rows = buf.act.shape[0], t, tile, i, part, w0, w1
    cdef Tiling s = _tiling(buf, plan, N, T, H, G), st
    cdef int ft = cnp.NPY_FLOAT if floating is float else cnp.NPY_DOUBLE
    cdef StepBuffers b = _step_buffers(buf, ft)
    cdef int num_threads = plan.num_threads, nt = plan.step_threads, schedule = plan.schedule_code
    cdef int phase, phases = forward_phases(&b)
    cdef bint microkernel = plan.microkernel_products
    cdef const floating* bias_x = <const floating*>_data(buf.bias_x, ft)
    cdef floating* blocked = <floating*>_data(buf.blocked, ft)
    cdef floating* act = <floating*>b.act
    cdef const floating* x_tm = <const floating*>_data(buf.x_tm, ft)
    cdef const floating* table = <const floating*>_data(buf.table, ft)
    cdef const Py_ssize_t* tokens = <const Py_ssize_t*>_data(buf.tokens, cnp.NPY_INTP)
    cdef long mark = interrupt_mark()
    cdef SliverCache slivers
    if N == 0:
        return 0
    if b.panels != NULL and not buf.weights_packed:
        raise ValueError("kernel buffers: the weights' panels were not packed (kernels.prepare_forward)")
    if x_tm == NULL and (table == NULL or tokens == NULL or buf.tokens.shape[0] != rows or buf.table.ndim != 2
                         or buf.table.shape[1] != G):
        raise ValueError("kernel buffers: token input needs a table of G columns and a token per row")
    with nogil:
        # The input projection of all steps at once: act = x @ Wx + bias (token input: a table row per step
        # row, copied as the steps run, ``gather_step_rows``; shared tiles a window at a time).
        if x_tm != NULL:
            all_steps_gemm(False, False, rows, G, D, x_tm, D, &Wx[0, 0], G, act, G, bias_x, num_threads,
                           mark, microkernel)
        if b.rh != NULL and not s.ring:  # r * h of ended sequences enters dWh's product
            _zero_past_running_rows(s, <floating*>b.rh, H)
        if blocked != NULL:  # (the micro-kernel's panels: packed by ``prepare_forward``)
            block_step_weights(<const floating*>b.Wh, blocked, &s, num_threads)
            b.Wh = blocked
        if schedule == OWNED_ROWS:  # each thread its share of whole row blocks
            owned_parts(True, T, nt, s, &b, act, mark)
        elif schedule == SHARED_TILES:  # one parallel region per window, a barrier per phase
            w1 = 0
            while w1 < T and not interrupted_since(mark):
                w0 = w1
                w1 = min(T, w0 + STEPS_PER_WINDOW)
                if x_tm == NULL:
                    gather_rows(s.offsets[w0], s.offsets[w1], G, table, tokens, act, num_threads)
                with parallel(num_threads=nt):
                    slivers = new_sliver_cache(b.panels != NULL, s.rows, H, sizeof(floating))  # its own
                    for t in range(w0, w1):
                        st = balanced_step_tiling(s, t, nt) if b.panels != NULL and not s.unit_major else s
                        for phase in range(phases):
                            for i in prange(tile_count(st, t), schedule="static"):
                                tile = tile_at(st, 0, running_row_blocks(st, t), i)
                                forward_phase(phase, t, tile, st, &b, act, &slivers)
                                if phase == phases - 1:
                                    emit_output_tile(t, tile, st, <const floating*>b.hst, <floating*>b.hs)
                    scratch_done(slivers.data)
        else:  # one thread owns every row
            owned_steps(True, T, 0, s.row_blocks, s, &b, act, mark)
    check_interrupt(mark)  # Ctrl-C stopped the loop early: KeyboardInterrupt
    return 0


def backward(buf, plan):
    """Internal: the backward pass of ``rnnfast._core.driver``.  ``dh`` (and ``dc``) enter holding the
    gradient at the final state and leave holding it at the initial one.  Without ``x_tm`` and ``dx_tm``
    (token input), ``dWx``, ``dx`` are left to the caller, which reads ``token_sums``."""
    if buf.Wx.dtype == np.float32:
        _backward[float](buf.Wx, buf, plan)
    else:
        _backward[double](buf.Wx, buf, plan)


cdef int _backward(const floating[:, ::1] Wx, object buf, object plan) except -1:
    cdef Py_ssize_t T = buf.active.shape[0], N = buf.dh.shape[0], D = Wx.shape[0], H = buf.Wh.shape[0]
    cdef Py_ssize_t G = buf.Wh.shape[1], rows = buf.dGx.shape[0], t, i, part, w, w0, w1
    cdef Tiling s = _tiling(buf, plan, N, T, H, G), st
    cdef int ft = cnp.NPY_FLOAT if floating is float else cnp.NPY_DOUBLE
    cdef StepBuffers b = _step_buffers(buf, ft)
    cdef int num_threads = plan.num_threads, nt = plan.step_threads, schedule = plan.schedule_code
    cdef int phase, phases = backward_phases(&b)
    cdef bint microkernel = plan.microkernel_products
    cdef floating* dGx = <floating*>b.dGx
    cdef floating* dGh = <floating*>b.dGh
    cdef const floating* hst = <const floating*>b.hst
    cdef const floating* rh = <const floating*>b.rh
    cdef const floating* x_tm = <const floating*>_data(buf.x_tm, ft)
    cdef floating* dx_tm = <floating*>_data(buf.dx_tm, ft)
    cdef floating* dWx = <floating*>_data(buf.dWx, ft)
    cdef floating* dWh = <floating*>_data(buf.dWh, ft)
    cdef floating* dbx = <floating*>_data(buf.dbx, ft)
    cdef floating* dbh = <floating*>_data(buf.dbh, ft)
    cdef floating* dpeep = <floating*>_data(buf.dpeep, ft)
    cdef floating* token_sums = <floating*>_data(buf.token_sums, ft)
    cdef long mark = interrupt_mark()
    cdef SliverCache slivers
    # the bias gradients and the token sums, made where the weight gradients pack dG (``all_steps_gemm_sums``)
    cdef row_sums sums_x, sums_h
    cdef bint summed_x = False, summed_h = False
    cdef RowRuns running
    cdef const RowRuns* runs = _running_rows(s, &running)
    if N == 0:
        return 0
    if token_sums != NULL and (b.tokens == NULL or buf.tokens.shape[0] != rows or buf.token_sums.ndim != 2
                               or buf.token_sums.shape[1] != G):
        raise ValueError("kernel buffers: token_sums needs a token per row and G columns")
    sums_x.columns, sums_x.ids, sums_x.rows, sums_x.ld = NULL, NULL, NULL, G
    sums_h = sums_x
    with nogil:
        # the ended sequences' rows: no gradient (the all-step products sum over every row)
        _zero_past_running_rows(s, dGx, G)
        if dGh != dGx:
            _zero_past_running_rows(s, dGh, G)
        if b.panels != NULL:
            pack_step_panels(False, <const floating*>b.Wh, <floating*>b.panels, H, s.gates, s.units, num_threads)
        if schedule == OWNED_ROWS:
            owned_parts(False, T, nt, s, &b, dGx, mark)
        elif schedule == SHARED_TILES:  # windows of steps, latest first
            for w in range((T + STEPS_PER_WINDOW - 1) // STEPS_PER_WINDOW):
                if interrupted_since(mark):
                    break
                w1 = T - w * STEPS_PER_WINDOW
                w0 = max(0, w1 - STEPS_PER_WINDOW)
                with parallel(num_threads=nt):
                    slivers = new_sliver_cache(b.panels != NULL, s.rows, G, sizeof(floating))  # its own
                    for t in range(w1 - 1, w0 - 1, -1):
                        st = balanced_step_tiling(s, t, nt) if b.panels != NULL and not s.unit_major else s
                        for phase in range(phases):
                            for i in prange(tile_count(st, t), schedule="static"):
                                backward_phase(phase, t, tile_at(st, 0, running_row_blocks(st, t), i), st, &b, dGx,
                                               &slivers)
                    scratch_done(slivers.data)
        else:
            owned_steps(False, T, 0, s.row_blocks, s, &b, dGx, mark)
        # The products over all steps (token input: the h side only).
        if dx_tm != NULL:
            all_steps_gemm(False, True, rows, D, G, dGx, G, &Wx[0, 0], G, dx_tm, D, NULL, num_threads, mark,
                           microkernel)
        if floating is float:
            memset(dbx, 0, G * sizeof(float))
            sums_x.columns, sums_x.ids, sums_x.rows = dbx, b.tokens if token_sums != NULL else NULL, token_sums
            if dbh != NULL:
                memset(dbh, 0, G * sizeof(float))
                sums_h.columns = dbh
        if dGh == dGx and rh == NULL and x_tm != NULL:  # one set of pre-activations: both from one product
            summed_x = weight_gradients(D, H, G, rows, x_tm, hst, dGx, dWx, dWh, &sums_x, runs, num_threads, mark,
                                        microkernel)
        else:
            if x_tm != NULL:
                summed_x = all_steps_gemm_sums(True, False, D, G, rows, x_tm, D, dGx, G, dWx, G, NULL, &sums_x,
                                               runs, num_threads, mark, microkernel)
            if rh == NULL:
                if dGh == dGx:  # token input: dGx's sums from the h side's product
                    summed_x = all_steps_gemm_sums(True, False, H, G, rows, hst, H, dGh, G, dWh, G, NULL, &sums_x,
                                                   runs, num_threads, mark, microkernel)
                else:
                    summed_h = all_steps_gemm_sums(True, False, H, G, rows, hst, H, dGh, G, dWh, G, NULL, &sums_h,
                                                   runs, num_threads, mark, microkernel)
            else:  # the last gate's recurrent input is r * h (reset-before GRU)
                all_steps_gemm_sums(True, False, H, G - H, rows, hst, H, dGh, G, dWh, G, NULL, NULL, runs,
                                    num_threads, mark, microkernel)
                all_steps_gemm_sums(True, False, H, H, rows, rh, H, dGh + G - H, G, dWh + G - H, G, NULL, NULL, runs,
                                    num_threads, mark, microkernel)
        if not summed_x:
            column_sums(rows, G, dGx, G, dbx, num_threads)
            if token_sums != NULL:
                scatter_rows(rows, G, b.tokens, dGx, token_sums, num_threads)
        if dbh != NULL and not summed_h:
            column_sums(rows, G, dGh, G, dbh, num_threads)
        if dpeep != NULL:
            lstm_peephole_gradients(s, dGx, <const floating*>b.cst, dpeep, num_threads)
    check_interrupt(mark)  # Ctrl-C stopped the loop early: KeyboardInterrupt
    return 0


# --- Whole row blocks a step: the projection LSTM (``projection.pxd``), the layer-normalized one
# (``layer_norm.pxd``) ---

cdef void _whole_row_steps(bint forward, Py_ssize_t N, Py_ssize_t T, Py_ssize_t R, int nt,
                           const Py_ssize_t* active, const ProjectedBuffers* pb, const LayerNormBuffers* lb,
                           floating* a, long mark) noexcept nogil:
    """The time loop of a whole-row-block path (``pb`` or ``lb``, the other NULL): each thread owns row blocks of
    R rows for a window of steps (rows never read each other), forward or backward; ``a`` is the activations
    (forward) or the gate gradients (backward).  Ctrl-C is looked at between windows."""
    cdef Py_ssize_t blocks = (N + R - 1) // R, blk, n0, k, t, w, w0, w1
    for w in range((T + STEPS_PER_WINDOW - 1) // STEPS_PER_WINDOW):
        if interrupted_since(mark):
            break
        w0 = w * STEPS_PER_WINDOW if forward else max(0, T - (w + 1) * STEPS_PER_WINDOW)
        w1 = min(T, w0 + STEPS_PER_WINDOW) if forward else T - w * STEPS_PER_WINDOW
        for blk in prange(blocks, num_threads=nt, schedule="static"):
            n0 = blk * R
            for k in range(w1 - w0):
                t = w0 + k if forward else w1 - 1 - k  # backward: latest first
                if min(n0 + R, active[t]) > n0:
                    _whole_row_step(forward, t, n0, min(n0 + R, active[t]), pb, lb, a)


cdef inline void _whole_row_step(bint forward, Py_ssize_t t, Py_ssize_t n0, Py_ssize_t n1, const ProjectedBuffers* pb,
                                 const LayerNormBuffers* lb, floating* a) noexcept nogil:
    if pb != NULL:
        if forward:
            projected_forward_step(t, n0, n1, pb, a)
        else:
            projected_backward_step(t, n0, n1, pb, a)
    elif lb.gru:
        if forward:
            gru_layer_norm_forward_step(t, n0, n1, lb, a)
        else:
            gru_layer_norm_backward_step(t, n0, n1, lb, a)
    elif forward:
        layer_norm_forward_step(t, n0, n1, lb, a)
    else:
        layer_norm_backward_step(t, n0, n1, lb, a)


# --- The projection LSTM ---

cdef ProjectedBuffers _projected_buffers(object buf, int ft) except *:
    cdef ProjectedBuffers b
    b.N, b.T = buf.dh.shape[0] if buf.dh is not None else buf.hs.shape[0], buf.active.shape[0]
    b.H, b.P = buf.Whr.shape[0], buf.Whr.shape[1]
    if buf.offsets.shape[0] != b.T + 1 or (buf.order is not None and buf.order.shape[0] != b.N):
        raise ValueError("kernel buffers: offsets, active and order do not match the call's T and N")
    b.offsets = <const Py_ssize_t*>_data(buf.offsets, cnp.NPY_INTP)
    b.active = <const Py_ssize_t*>_data(buf.active, cnp.NPY_INTP)
    b.order = <const Py_ssize_t*>_data(buf.order, cnp.NPY_INTP)
    b.ring = buf.ring
    b.Wh = _data(buf.Wh, ft)
    b.Whr = _data(buf.Whr, ft)
    b.WhT = _data(buf.WhT, ft)
    b.WhrT = _data(buf.WhrT, ft)
    b.peep = _data(buf.peep, ft)
    b.act = _data(buf.act, ft)
    b.hst = _data(buf.hst, ft)
    b.cst = _data(buf.cst, ft)
    b.mst = _data(buf.mst, ft)
    b.hs = _data(buf.hs, ft)
    b.dhs = _data(buf.dhs, ft)
    b.dh = _data(buf.dh, ft)
    b.dc = _data(buf.dc, ft)
    b.dhst = _data(buf.dhst, ft)
    b.dm = _data(buf.dm, ft)
    b.zeros = _data(buf.zeros, ft)
    b.dG = _data(buf.dGx, ft)
    return b


def projected_forward(buf, plan):
    """Internal: the projection LSTM's forward pass (``rnnfast._core.driver``); ``plan.rows`` rows a block."""
    if buf.x_tm.dtype == np.float32:
        _projected_forward[float](buf.x_tm, buf, plan)
    else:
        _projected_forward[double](buf.x_tm, buf, plan)


cdef int _projected_forward(const floating[:, ::1] x_tm, object buf, object plan) except -1:
    cdef int ft = cnp.NPY_FLOAT if floating is float else cnp.NPY_DOUBLE
    cdef ProjectedBuffers b = _projected_buffers(buf, ft)
    cdef const floating[:, ::1] Wx = buf.Wx
    cdef Py_ssize_t N = b.N, T = b.T, D = x_tm.shape[1], G = 4 * b.H, rows = x_tm.shape[0]
    cdef Py_ssize_t R = plan.rows, blocks = (N + R - 1) // R
    b.cols = step_columns(R, b.P, G)
    cdef int num_threads = plan.num_threads, nt = team(blocks, plan.step_threads)
    cdef bint microkernel = plan.microkernel_products
    cdef const floating* bias_x = <const floating*>_data(buf.bias_x, ft)
    cdef floating* act = <floating*>b.act
    cdef Tiling s = make_tiling(N, T, b.H, 4, N, b.H, b.offsets, b.active, b.order, b.ring, False)
    cdef long mark = interrupt_mark()
    if N == 0:
        return 0
    with nogil:
        all_steps_gemm(False, False, rows, G, D, &x_tm[0, 0], D, &Wx[0, 0], G, act, G, bias_x, num_threads,
                       mark, microkernel)
        if not b.ring:  # m of ended sequences enters dWhr's product
            _zero_past_running_rows(s, <floating*>b.mst, b.H)
        _whole_row_steps(True, N, T, R, nt, b.active, &b, NULL, act, mark)
    check_interrupt(mark)
    return 0


def projected_backward(buf, plan):
    """Internal: the projection LSTM's backward pass; ``dh``, ``dc`` enter holding the gradient at the final
    state and leave holding it at the initial one."""
    if buf.x_tm.dtype == np.float32:
        _projected_backward[float](buf.x_tm, buf, plan)
    else:
        _projected_backward[double](buf.x_tm, buf, plan)


cdef int _projected_backward(const floating[:, ::1] x_tm, object buf, object plan) except -1:
    cdef int ft = cnp.NPY_FLOAT if floating is float else cnp.NPY_DOUBLE
    cdef ProjectedBuffers b = _projected_buffers(buf, ft)
    cdef const floating[:, ::1] Wx = buf.Wx
    cdef Py_ssize_t N = b.N, T = b.T, D = x_tm.shape[1], H = b.H, P = b.P, G = 4 * b.H, rows = x_tm.shape[0]
    cdef Py_ssize_t R = plan.rows, blocks = (N + R - 1) // R
    b.cols = step_columns(R, P, G)
    cdef int num_threads = plan.num_threads, nt = team(blocks, plan.step_threads)
    cdef bint microkernel = plan.microkernel_products
    cdef floating* dG = <floating*>b.dG
    cdef floating* dx_tm = <floating*>_data(buf.dx_tm, ft)
    cdef floating* dWx = <floating*>_data(buf.dWx, ft)
    cdef floating* dWh = <floating*>_data(buf.dWh, ft)
    cdef floating* dWhr = <floating*>_data(buf.dWhr, ft)
    cdef floating* dbx = <floating*>_data(buf.dbx, ft)
    cdef floating* dpeep = <floating*>_data(buf.dpeep, ft)
    cdef Tiling s = make_tiling(N, T, H, 4, N, H, b.offsets, b.active, b.order, False, False)
    cdef long mark = interrupt_mark()
    cdef RowRuns running
    cdef const RowRuns* runs = _running_rows(s, &running)
    if N == 0:
        return 0
    with nogil:
        # the ended sequences' rows: no gradient (the all-step products sum over every row)
        _zero_past_running_rows(s, dG, G)
        _zero_past_running_rows(s, <floating*>b.dhst, P)
        _whole_row_steps(False, N, T, R, nt, b.active, &b, NULL, dG, mark)
        all_steps_gemm(False, True, rows, D, G, dG, G, &Wx[0, 0], G, dx_tm, D, NULL, num_threads, mark,
                       microkernel)
        weight_gradients(D, P, G, rows, &x_tm[0, 0], <const floating*>b.hst, dG, dWx, dWh, NULL, runs, num_threads,
                         mark, microkernel)
        all_steps_gemm_sums(True, False, H, P, rows, <const floating*>b.mst, H, <const floating*>b.dhst, P, dWhr, P,
                            NULL, NULL, runs, num_threads, mark, microkernel)
        column_sums(rows, G, dG, G, dbx, num_threads)
        if dpeep != NULL:
            lstm_peephole_gradients(s, dG, <const floating*>b.cst, dpeep, num_threads)
    check_interrupt(mark)
    return 0


# --- The layer-normalized LSTM and GRU ---

cdef LayerNormBuffers _layer_norm_buffers(object buf, int ft) except *:
    cdef LayerNormBuffers b
    b.gru = buf.cell == CELL_GRU
    b.N, b.T, b.H = buf.hs.shape[0] if buf.hs is not None else buf.dh.shape[0], buf.active.shape[0], buf.Wh.shape[0]
    if buf.offsets.shape[0] != b.T + 1 or (buf.order is not None and buf.order.shape[0] != b.N):
        raise ValueError("kernel buffers: offsets, active and order do not match the call's T and N")
    b.offsets = <const Py_ssize_t*>_data(buf.offsets, cnp.NPY_INTP)
    b.active = <const Py_ssize_t*>_data(buf.active, cnp.NPY_INTP)
    b.order = <const Py_ssize_t*>_data(buf.order, cnp.NPY_INTP)
    b.ring = buf.ring
    b.Wh = _data(buf.Wh, ft)
    b.WhT = _data(buf.WhT, ft)
    b.ln = _data(buf.ln, ft)
    b.bias_h = _data(buf.bias_h, ft) if b.gru else NULL
    b.act = _data(buf.act, ft)
    b.h_hat = _data(buf.h_hat, ft)
    b.h_rstd = _data(buf.h_rstd, ft)
    b.c_hat = _data(buf.c_hat, ft)
    b.c_rstd = _data(buf.c_rstd, ft)
    b.hst = _data(buf.hst, ft)
    b.cst = _data(buf.cst, ft)
    b.hs = _data(buf.hs, ft)
    b.dhs = _data(buf.dhs, ft)
    b.dh = _data(buf.dh, ft)
    b.dc = _data(buf.dc, ft)
    b.dG = _data(buf.dGx, ft)
    b.dR = _data(buf.dR, ft)
    b.dCN = _data(buf.dCN, ft)
    b.dAH = _data(buf.dAH, ft) if b.gru else NULL
    return b


def layer_norm_forward(buf, plan):
    """Internal: the layer-normalized LSTM's or GRU's forward pass (``rnnfast._core.driver``)."""
    if buf.x_tm.dtype == np.float32:
        _layer_norm_forward[float](buf.x_tm, buf, plan)
    else:
        _layer_norm_forward[double](buf.x_tm, buf, plan)


cdef int _layer_norm_forward(const floating[:, ::1] x_tm, object buf, object plan) except -1:
    cdef int ft = cnp.NPY_FLOAT if floating is float else cnp.NPY_DOUBLE
    cdef LayerNormBuffers b = _layer_norm_buffers(buf, ft)
    cdef const floating[:, ::1] Wx = buf.Wx
    cdef Py_ssize_t gates = 3 if b.gru else 4
    cdef Py_ssize_t N = b.N, T = b.T, D = x_tm.shape[1], H = b.H, G = gates * b.H, rows = x_tm.shape[0]
    cdef Py_ssize_t R = plan.rows, blocks = (N + R - 1) // R, blk
    b.cols = step_columns(R, H, G)
    cdef Py_ssize_t row_tasks = (rows + R - 1) // R
    cdef int num_threads = plan.num_threads, nt = team(blocks, plan.step_threads)
    cdef bint microkernel = plan.microkernel_products
    cdef floating* act = <floating*>b.act
    cdef floating* x_hat = <floating*>_data(buf.x_hat, ft)
    cdef floating* x_rstd = <floating*>_data(buf.x_rstd, ft)
    cdef const floating* bias = <const floating*>_data(buf.bias_x, ft)
    cdef Tiling s = make_tiling(N, T, H, gates, N, H, b.offsets, b.active, b.order, b.ring, False)
    cdef long mark = interrupt_mark()
    if N == 0:
        return 0
    with nogil:
        if not b.ring:  # the ended sequences' rows enter the all-step sums of the gains' gradients
            _zero_past_running_rows(s, <floating*>b.h_hat, G)
            if not b.gru:
                _zero_past_running_rows(s, <floating*>b.c_hat, H)
        all_steps_gemm(False, False, rows, G, D, &x_tm[0, 0], D, &Wx[0, 0], G, act, G, NULL, num_threads, mark,
                       microkernel)
        for blk in prange(row_tasks, num_threads=team(row_tasks, num_threads), schedule="static"):
            layer_norm_inputs(blk * R, min(rows, (blk + 1) * R), G, act, x_hat, x_rstd,
                              <const floating*>b.ln, bias)
        _whole_row_steps(True, N, T, R, nt, b.active, NULL, &b, act, mark)
    check_interrupt(mark)
    return 0


def layer_norm_backward(buf, plan):
    """Internal: the layer-normalized LSTM's or GRU's backward pass; ``dh`` (and the LSTM's ``dc``) enter
    holding the gradient at the final state and leave holding it at the initial one."""
    if buf.x_tm.dtype == np.float32:
        _layer_norm_backward[float](buf.x_tm, buf, plan)
    else:
        _layer_norm_backward[double](buf.x_tm, buf, plan)


cdef int _layer_norm_backward(const floating[:, ::1] x_tm, object buf, object plan) except -1:
    cdef int ft = cnp.NPY_FLOAT if floating is float else cnp.NPY_DOUBLE
    cdef LayerNormBuffers b = _layer_norm_buffers(buf, ft)
    cdef const floating[:, ::1] Wx = buf.Wx
    cdef Py_ssize_t gates = 3 if b.gru else 4
    cdef Py_ssize_t N = b.N, T = b.T, D = x_tm.shape[1], H = b.H, G = gates * b.H, rows = x_tm.shape[0]
    cdef Py_ssize_t R = plan.rows, blocks = (N + R - 1) // R, blk
    b.cols = step_columns(R, H, G)
    cdef Py_ssize_t row_tasks = (rows + R - 1) // R
    cdef int num_threads = plan.num_threads, nt = team(blocks, plan.step_threads)
    cdef bint microkernel = plan.microkernel_products
    cdef floating* dG = <floating*>b.dG
    cdef floating* dAH = <floating*>b.dAH
    cdef floating* dbh = <floating*>_data(buf.dbh, ft) if b.gru else NULL
    cdef floating* dR = <floating*>b.dR
    cdef floating* dCN = <floating*>b.dCN
    cdef floating* dQ = <floating*>_data(buf.dQ, ft)
    cdef const floating* x_hat = <const floating*>_data(buf.x_hat, ft)
    cdef const floating* x_rstd = <const floating*>_data(buf.x_rstd, ft)
    cdef const floating* ln = <const floating*>b.ln
    cdef floating* dx_tm = <floating*>_data(buf.dx_tm, ft)
    cdef floating* dWx = <floating*>_data(buf.dWx, ft)
    cdef floating* dWh = <floating*>_data(buf.dWh, ft)
    cdef floating* dbx = <floating*>_data(buf.dbx, ft)
    cdef floating* dln = <floating*>_data(buf.dln, ft)
    cdef Tiling s = make_tiling(N, T, H, gates, N, H, b.offsets, b.active, b.order, False, False)
    cdef long mark = interrupt_mark()
    cdef RowRuns running
    cdef const RowRuns* runs = _running_rows(s, &running)
    if N == 0:
        return 0
    with nogil:
        # the ended sequences' rows: no gradient (the all-step sums run over every row)
        _zero_past_running_rows(s, dG, G)
        _zero_past_running_rows(s, dR, G)
        if b.gru:
            _zero_past_running_rows(s, dAH, G)
        else:
            _zero_past_running_rows(s, dCN, H)
        _whole_row_steps(False, N, T, R, nt, b.active, NULL, &b, dG, mark)
        for blk in prange(row_tasks, num_threads=team(row_tasks, num_threads), schedule="static"):
            layer_norm_input_gradients(blk * R, min(rows, (blk + 1) * R), G, dG, x_hat, x_rstd, ln, dQ)
        all_steps_gemm(False, True, rows, D, G, dQ, G, &Wx[0, 0], G, dx_tm, D, NULL, num_threads, mark,
                       microkernel)
        # dQ's ended rows are +-0 too (their dG is zero, and their x normalized is 0 with a finite 1/std)
        all_steps_gemm_sums(True, False, D, G, rows, &x_tm[0, 0], D, dQ, G, dWx, G, NULL, NULL, runs, num_threads,
                            mark, microkernel)
        all_steps_gemm_sums(True, False, H, G, rows, <const floating*>b.hst, H, dR, G, dWh, G, NULL, NULL, runs,
                            num_threads, mark, microkernel)
        column_sums(rows, G, dG, G, dbx, num_threads)
        column_dot_sums(rows, G, dG, G, x_hat, G, dln, num_threads)                       # g_x
        if b.gru:  # a_h has its own gradient: the reset gate scales its n part
            column_sums(rows, G, dAH, G, dbh, num_threads)
            column_dot_sums(rows, G, dAH, G, <const floating*>b.h_hat, G, dln + G, num_threads)  # g_h
        else:
            column_dot_sums(rows, G, dG, G, <const floating*>b.h_hat, G, dln + G, num_threads)  # g_h
            column_dot_sums(rows, H, dCN, H, <const floating*>b.c_hat, H, dln + 2 * G, num_threads)  # g_c
            column_sums(rows, H, dCN, H, dln + 2 * G + H, num_threads)                        # b_c
    check_interrupt(mark)
    return 0


# --- Streaming: one step of a stepper on weights packed once (rnnfast.stepper) ---

def stream_step(buf, xh, xh_next):
    """Internal: one step of a stepper (``buf``: its packed weights and state, ``rnnfast.stepper``).
    ``xh (N, D+H)`` holds ``[x_t | h_{t-1}]``; ``h_t`` goes to ``xh_next[:, D:]``."""
    if xh.dtype == np.float32:
        _stream_step[float](buf.gates, buf, xh, xh_next)
    else:
        _stream_step[double](buf.gates, buf, xh, xh_next)


def strip_products(strips, x, out, b_strips, int num_threads):
    """Internal: ``out[k] = x @ strips[k] (+ b_strips[k])`` for every unit block k of a stepper's packed
    weights (``strips (blocks, K, n)``, ``b_strips (blocks, n)`` or None, as ``rnnfast.stepper.pack_strips``
    lays them out; ``x (N, K)``; ``out (blocks, N, n)``), the blocks shared among threads, each block's
    arithmetic the same whoever runs it.  The whole-row steppers' products: the rows' maths between them
    needs every unit (``rnnfast.stepper``)."""
    if x.dtype == np.float32:
        _strip_products[float](strips, x, out, b_strips, num_threads)
    else:
        _strip_products[double](strips, x, out, b_strips, num_threads)


cdef int _strip_products(const floating[:, :, ::1] strips, const floating[:, ::1] x, floating[:, :, ::1] out,
                         object b_strips, int num_threads) except -1:
    cdef int ft = cnp.NPY_FLOAT if floating is float else cnp.NPY_DOUBLE
    cdef Py_ssize_t blocks = strips.shape[0], K = strips.shape[1], n = strips.shape[2], N = x.shape[0]
    cdef Py_ssize_t k, i, j
    if x.shape[1] != K or out.shape[0] != blocks or out.shape[1] != N or out.shape[2] != n:
        raise ValueError(f"strip_products: x {x.shape[0], x.shape[1]}, strips {blocks, K, n} and out "
                         f"{out.shape[0], out.shape[1], out.shape[2]} do not match")
    if b_strips is not None and tuple(b_strips.shape) != (blocks, n):
        raise ValueError(f"strip_products: b_strips has shape {b_strips.shape}; expected {(blocks, n)}")
    cdef const floating* bias = <const floating*>_data(b_strips, ft)
    cdef int nt = team(blocks, num_threads)
    if N == 0 or blocks == 0:
        return 0
    with nogil:
        for k in prange(blocks, num_threads=nt, schedule="static"):
            for i in range(N):
                for j in range(n):
                    out[k, i, j] = bias[k * n + j] if bias != NULL else 0
            row_product(N, n, K, &x[0, 0], &strips[k, 0, 0], &out[k, 0, 0])
    return 0


def stream_whole_rows(str kind, a, ah, prev, c_prev, ln, bias, peep, h_out, c_out, scratch):
    """Internal: the row maths of a whole-row stepper's step, after its products (``rnnfast.stepper``), on
    (N, .) C-contiguous arrays of one dtype; row after row, the sequence kernels' own row functions.

    ``kind`` "lstm_layer_norm": ``a`` = x_t @ Wx and ``ah`` = h_{t-1} @ Wh (N, 4H), ``c_prev``, ``ln (10H,)``,
    ``bias (4H,)``; ``scratch (N, H)``.  "gru_layer_norm": ``a``, ``ah`` (N, 3H), ``prev`` = h_{t-1}, ``ln
    (6H,)``, ``bias`` = ``[b_x | b_h] (6H,)``.  "lstm": ``a`` the pre-activations with the bias (N, 4H),
    ``c_prev``, ``peep (3H,)`` or None; ``h_out`` gets m = o * tanh(c_t) (the projection's input).  ``a``
    and ``ah`` are overwritten."""
    if a.dtype == np.float32:
        _stream_whole_rows[float](kind, a, ah, prev, c_prev, ln, bias, peep, h_out, c_out, scratch)
    else:
        _stream_whole_rows[double](kind, a, ah, prev, c_prev, ln, bias, peep, h_out, c_out, scratch)


cdef int _stream_whole_rows(str kind, floating[:, ::1] a, object ah, object prev, object c_prev, object ln,
                            object bias, object peep, floating[:, ::1] h_out, object c_out,
                            object scratch) except -1:
    cdef int ft = cnp.NPY_FLOAT if floating is float else cnp.NPY_DOUBLE
    cdef Py_ssize_t N = a.shape[0], W = a.shape[1], H = h_out.shape[1], n, G
    cdef floating* ap = &a[0, 0] if N > 0 else NULL
    cdef floating* hp = &h_out[0, 0] if N > 0 else NULL
    cdef floating* ahp = <floating*>_data(ah, ft)
    cdef const floating* h_prev = <const floating*>_data(prev, ft)
    cdef const floating* cp = <const floating*>_data(c_prev, ft)
    cdef floating* co = <floating*>_data(c_out, ft)
    cdef floating* sc = <floating*>_data(scratch, ft)
    cdef const floating* lnp = <const floating*>_data(ln, ft)
    cdef const floating* bp = <const floating*>_data(bias, ft)
    cdef const floating* pp = <const floating*>_data(peep, ft)
    cdef floating rstd
    cdef int which = {"lstm_layer_norm": 0, "gru_layer_norm": 1, "lstm": 2}[kind]
    G = (3 if which == 1 else 4) * H
    if W != G:
        raise ValueError(f"stream_whole_rows: a has {W} columns; expected {G}")
    if N == 0:
        return 0
    with nogil:
        if which == 0:
            layer_norm_inputs(0, N, G, ap, <floating*>NULL, <floating*>NULL, lnp, bp)
            for n in range(N):
                layer_norm_lstm_row(ap + n * G, ahp + n * G, cp + n * H, co + n * H, sc + n * H, hp + n * H,
                                    &rstd, &rstd, lnp, H)
        elif which == 1:
            layer_norm_inputs(0, N, G, ap, <floating*>NULL, <floating*>NULL, lnp, bp)
            for n in range(N):
                layer_norm_gru_row(ap + n * G, ahp + n * G, h_prev + n * H, hp + n * H, &rstd, lnp, bp + G, H)
        else:
            for n in range(N):
                if pp != NULL:
                    lstm_peephole_update(ap + n * G, ap + n * G + H, ap + n * G + 2 * H, ap + n * G + 3 * H,
                                         pp, pp + H, pp + 2 * H, cp + n * H, co + n * H, hp + n * H, H)
                else:
                    sigmoid_inplace(ap + n * G, 2 * H)
                    tanh_inplace(ap + n * G + 2 * H, H)
                    sigmoid_inplace(ap + n * G + 3 * H, H)
                    lstm_cell_update(ap + n * G, ap + n * G + H, ap + n * G + 2 * H, ap + n * G + 3 * H,
                                     cp + n * H, co + n * H, hp + n * H, H)
    return 0


cdef int _stream_step(floating[:, :, ::1] gates, object buf, object xh, object xh_next) except -1:
    cdef int ft = cnp.NPY_FLOAT if floating is float else cnp.NPY_DOUBLE
    cdef StreamBuffers b
    cdef Py_ssize_t k, unit_blocks = buf.strips.shape[0]
    cdef int phase, nt = team(unit_blocks, buf.num_threads)
    b.cell = buf.cell
    b.reset_after = buf.reset_after
    b.relu = buf.relu
    b.N, b.K, b.H, b.width, b.groups = xh.shape[0], xh.shape[1], buf.H, buf.width, buf.groups
    b.D = b.K - b.H
    b.xh = _data(xh, ft)
    b.xh_next = _data(xh_next, ft)
    b.strips = _data(buf.strips, ft)
    b.b_strips = _data(buf.b_strips, ft)
    b.strips_n = _data(buf.strips_n, ft)
    b.c = _data(buf.c_state, ft)
    b.rh = _data(buf.rh, ft)
    b.gn = _data(buf.gn, ft)
    b.peep = _data(buf.peep, ft)
    b.zoneout = buf.zoneout is not None
    b.z_c, b.z_h = buf.zoneout if b.zoneout else (0.0, 0.0)
    cdef floating* gates_p = &gates[0, 0, 0] if b.N > 0 else NULL
    if b.N == 0:
        return 0
    with nogil:
        for phase in range(stream_passes(&b)):
            if nt > 1:
                for k in prange(unit_blocks, num_threads=nt, schedule="static"):
                    stream_phase(phase, k, &b, gates_p)
            else:
                for k in range(unit_blocks):
                    stream_phase(phase, k, &b, gates_p)
    return 0
