# cython: language_level=3
"""The tiles of one time step, shared by every cell: how a step's (N, H) work is cut (``Tiling``), the
buffers a tile reads and writes (``StepBuffers``), where it finds its step weights, and its recurrent
products over a run of gates.  A cell adds only its element-wise maths (``*_cell.pxd``)."""
from cython cimport floating
from cython.parallel cimport prange

from blas cimport gemm
from gate_math cimport copy, fill
from microkernel cimport PANEL, PANEL_D, SLIVER, SliverCache, packed_gemm_tile
from threads cimport team


cdef struct Tiling:
    # A step's work: tiles of ``rows`` batch rows x ``units`` hidden units (a row block x a unit block),
    # for a cell of ``gates`` gate blocks (T: the steps).  The shapes are the problem's alone
    # (``rnnfast._core.plan``), so every product has a thread-independent shape.
    Py_ssize_t N, T, H, gates, rows, units, row_blocks, unit_blocks
    # The rows of each step (the staircase layout, ``rnnfast._core.buffers.Staircase``): step t's block of a
    # time-major array starts at row offsets[t] (T+1 entries), its first active[t] rows are the sequences
    # still running (sorted longest first: order[i] is the user's row of row i, NULL when unsorted), and no
    # tile reaches past them.  Without lengths: offsets[t] = t*N, active[t] = N.
    const Py_ssize_t* offsets
    const Py_ssize_t* active
    const Py_ssize_t* order
    # Inference keeps the per-step histories (states, the GRU's recurrent scratch) in a ring of two N-row
    # slots, step t reading slot t and writing slot t+1 (``slot``); training keeps every step's block.
    bint ring
    # Where the BLAS path finds a tile's step weights (``weight_block``): gate q's columns of the unit
    # block at unit j0 start at (j0 // units) * w_block + q * w_gate, rows w_ld apart.
    Py_ssize_t w_ld, w_block, w_gate
    # The order in which a thread visits its tiles of a step (``tile_at``): unit block by unit block, so
    # that the block's step weights are read once and reused by its row blocks from cache (the plan's
    # ``tile_order``), or row block by row block.  Tiles of a step are independent: the bits do not change.
    bint unit_major
    # The rows the tiles cover: first_row .. end_row-1, row block 0 starting at first_row (0 .. N, or one thread's
    # own rows of a ragged batch: ``owned_tiling``).
    Py_ssize_t first_row, end_row


cdef struct StepBuffers:
    # What the tiles of any cell read and write.  The arrays are float* or double* (the dtype of the
    # call; a tile casts them), NULL where the cell or the path has none.  G below is gates * H.
    int cell                   # kernels.pyx's CELL_LSTM, CELL_GRU, CELL_RNN
    bint reset_after           # GRU: reset gate after the recurrent product (PyTorch) or before (textbook)
    bint relu                  # RNN: relu, else tanh
    const void* Wh             # (H, G) step weights as given, or their blocked copy (BLAS path)
    const void* WhT            # (G, H) Wh transposed (BLAS path, backward)
    const void* panels         # Wh in the micro-kernel's panels (forward: gate columns; backward: rows, transposed)
    const void* bh             # (G,) GRU's recurrent bias
    const void* peep           # (3H,) the peephole LSTM's diagonal weights [p_i | p_f | p_o]
    bint zoneout               # the LSTM with zoneout: rates z_c, z_h; masks from zone_key (training) or
    bint zone_train            # ... the rates themselves (evaluation)
    double z_c, z_h
    unsigned long long zone_key
    # Time-major arrays: a block of rows per step (``Tiling.offsets``); per-step histories: a block per step,
    # or a ring of two N-row slots in inference (``slot``).
    void* act                  # (rows, G) input pre-activations, then the gate activations
    void* hg                   # history of (., G) GRU's recurrent pre-activations
    void* hst                  # history of (., H) the state entering each step (block 0: the initial state)
    void* cst                  # history of (., H) LSTM's cell state, likewise
    void* rh                   # history of (., H) reset-before GRU: r * h_{t-1}
    void* hs                   # (N, T, H) the user's output, batch-major
    const void* dhs            # (N, T, H) the user's output gradient, batch-major, read in place
    void* dh                   # (N, H) dL/dh flowing back (rows sorted): in dL/dh_T, out dL/dh_0
    void* dc                   # (N, H) LSTM's dL/dc, likewise
    void* drh                  # (N, H) reset-before GRU: dL/d(r * h) of one step
    void* dGx                  # (rows, G) gradient at the input pre-activations
    void* dGh                  # (rows, G) ... at the recurrent ones (the same array where they coincide)
    # Token input (no x): a step row's input pre-activations are the ``table`` row of its token (``tokens``:
    # one per time-major row); NULL with x.
    const void* table          # (V, G)
    const Py_ssize_t* tokens   # (rows,)


cdef inline Tiling make_tiling(Py_ssize_t N, Py_ssize_t T, Py_ssize_t H, Py_ssize_t gates, Py_ssize_t rows,
                               Py_ssize_t units, const Py_ssize_t* offsets, const Py_ssize_t* active,
                               const Py_ssize_t* order, bint ring, bint unit_major) noexcept nogil:
    """Tiles of the (N, H) state; the step weights are read as given, (H, gates*H) row-major."""
    cdef Tiling s
    s.offsets = offsets
    s.active = active
    s.order = order
    s.ring = ring
    s.N = N
    s.T = T
    s.H = H
    s.gates = gates
    s.rows = rows
    s.units = units
    s.row_blocks = (N + rows - 1) // rows
    s.unit_blocks = (H + units - 1) // units
    s.w_ld = gates * H
    s.w_block = units
    s.w_gate = H
    s.unit_major = unit_major
    s.first_row = 0
    s.end_row = N
    return s


cdef inline Py_ssize_t step_row(Tiling s, Py_ssize_t t) noexcept nogil:
    """The first row of step t's block in a time-major array (``act``, ``dGx``, ...)."""
    return s.offsets[t]


cdef inline Py_ssize_t slot(Tiling s, Py_ssize_t t) noexcept nogil:
    """The first row of step t's block in a per-step history (``hst``, ``cst``, the GRU's ``hg``, ``rh``):
    its own block when the history keeps every step, else its slot in the ring of two."""
    return (t % 2) * s.N if s.ring else s.offsets[t]


cdef inline Py_ssize_t batch_row(Tiling s, Py_ssize_t n, Py_ssize_t t, Py_ssize_t width) noexcept nogil:
    """Offset of (sorted) row n, step t in the user's batch-major (N, T, width) arrays (``hs``, ``dhs``)."""
    return ((s.order[n] if s.order != NULL else n) * s.T + t) * width


cdef inline Py_ssize_t weight_block(Tiling s, Py_ssize_t j0, Py_ssize_t q) noexcept nogil:
    """Offset of gate q's step-weight columns for the unit block starting at unit j0 (BLAS path)."""
    return (j0 // s.units) * s.w_block + q * s.w_gate


cdef inline void block_step_weights(const floating* W, floating* out, Tiling* s, int num_threads) noexcept nogil:
    """Copy the (H, gates*H) step weights block by block of units for the BLAS path, and point ``s``
    at the copy: unit block c is an (H, gates*units) block with its gate blocks side by side.  As
    given, a gate block's rows are gates*H values apart (8 KiB at H=512 in an LSTM: every row a new
    page, which the hardware prefetchers do not cross); in the copy, gates*units.  The products keep
    their shapes, so the bits do not change."""
    cdef Py_ssize_t H = s.H, units = s.units, gates = s.gates, ld = gates * s.units
    cdef Py_ssize_t c, k, q, j0, w
    for c in prange(s.unit_blocks, nogil=True, num_threads=team(s.unit_blocks, num_threads), schedule="static"):
        j0 = c * units
        w = min(units, H - j0)
        for k in range(H):
            for q in range(gates):
                copy(out + c * H * ld + k * ld + q * units, W + k * gates * H + q * H + j0, w)
    s.w_ld = ld
    s.w_block = H * ld
    s.w_gate = units


cdef inline Py_ssize_t running_row_blocks(Tiling s, Py_ssize_t t) noexcept nogil:
    """The row blocks of step t that hold running rows."""
    return (max(0, min(s.active[t], s.end_row) - s.first_row) + s.rows - 1) // s.rows


cdef inline Py_ssize_t tile_count(Tiling s, Py_ssize_t t) noexcept nogil:
    """The tiles of step t: its active rows' row blocks x the unit blocks (row-block-major)."""
    return running_row_blocks(s, t) * s.unit_blocks


cdef inline Py_ssize_t tile_at(Tiling s, Py_ssize_t rb0, Py_ssize_t rb1, Py_ssize_t i) noexcept nogil:
    """The i-th tile, in ``s.unit_major`` order, of row blocks rb0..rb1-1 (the running ones: a thread's own,
    or all of a step's)."""
    if s.unit_major:
        return (rb0 + i % (rb1 - rb0)) * s.unit_blocks + i // (rb1 - rb0)
    return rb0 * s.unit_blocks + i


cdef inline Py_ssize_t _rows_cost(Py_ssize_t m) noexcept nogil:
    """What m rows of a tile cost, in thirds of a row: each of its slivers at least two thirds of SLIVER rows (a
    short sliver's few accumulators leave the FMA units waiting on their latency)."""
    return max(3 * m, ((m + SLIVER - 1) // SLIVER) * 2 * SLIVER)


cdef inline Py_ssize_t _tile_cost(Py_ssize_t m) noexcept nogil:
    """What a tile of m rows costs its thread, in thirds of a row: its rows (``_rows_cost``), and two rows for the
    tile itself (its panels read once from far caches, its rows copied into slivers: LSTM steps of 4 to 16 rows on
    two threads, one tile each, cost about two rows more than their rows)."""
    return _rows_cost(m) + 6


cdef inline Tiling balanced_step_tiling(Tiling s, Py_ssize_t t, Py_ssize_t num_threads) noexcept nogil:
    """Step t's tiles for a team of ``num_threads`` sharing them statically, on the micro-kernel: row blocks of
    the height (at most ``s.rows``, the slivers' room) whose tiles cost the busiest thread least, the tallest of
    those.  With the plan's own height, a ragged batch's running rows (N = 64, 16-row blocks: 49 rows run
    as 16, 16, 16, 1) left one thread of two with twice the other's work.  The micro-kernel sums every element
    in the same k-blocks in any tile, and the cells' maths is per element: the bits do not change.  A key names
    a (step, row block) pair for any height (``row_block_key``)."""
    cdef Py_ssize_t a = s.active[t], r, i, k, q, extra, lo, hi, load, worst, best = -1, best_r = s.rows, tiles
    for r in range(1, min(s.rows, a) + 1):
        tiles = ((a + r - 1) // r) * s.unit_blocks
        q = tiles // num_threads
        extra = tiles % num_threads
        worst = 0
        for k in range(min(num_threads, tiles)):  # as OpenMP's static schedule: the first ``extra`` get one more
            lo = k * q + min(k, extra)
            hi = lo + q + (1 if k < extra else 0)
            load = 0
            for i in range(lo, hi):
                load = load + _tile_cost(min(r, a - (i // s.unit_blocks) * r))
            worst = max(worst, load)
        if best < 0 or worst <= best:
            best, best_r = worst, r
    s.rows = best_r
    s.row_blocks = s.N  # keys t * N + block: one pair of (step, rows) each, whatever a step's height
    return s


cdef inline Py_ssize_t _owned_rows_cost(Tiling s, Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """What rows r0 .. r1-1 of a ragged batch (sorted longest first) cost the thread that owns them, over all the
    steps: each step's running rows of them, per unit block (``_rows_cost``).  Nothing for the tile itself, unlike a
    shared step's (``_tile_cost``): a thread that runs its rows step after step without a barrier reads the next
    step's panels while it computes (the cut this gives, one row later than with the tile's two rows, was the faster
    one: bench/RESULTS.md, stop 60)."""
    cdef Py_ssize_t t, m, cost = 0
    for t in range(s.T):
        m = min(s.active[t], r1) - r0
        if m <= 0:  # the running rows only shrink
            break
        cost = cost + _rows_cost(m) * s.unit_blocks
    return cost


cdef inline Py_ssize_t _owned_rows_end(Tiling s, Py_ssize_t r0, Py_ssize_t budget) noexcept nogil:
    """The end of the most rows from r0 on that cost at most ``budget`` (r0: not even one)."""
    cdef Py_ssize_t r1 = r0
    while r1 < s.N and _owned_rows_cost(s, r0, r1 + 1) <= budget:
        r1 = r1 + 1
    return r1


cdef inline void owned_row_cuts(Tiling s, Py_ssize_t num_threads, Py_ssize_t* cuts) noexcept nogil:
    """A ragged batch's rows (sorted longest first) cut into ``num_threads`` runs, thread p's rows cuts[p] ..
    cuts[p+1]-1, so that the costliest run (``_owned_rows_cost``) costs least: the least budget within which runs
    taken greedily from row 0 cover every row, by bisection.  The longest sequences' thread gets the fewest rows.
    Each thread then runs all the steps of its rows and never waits for another; on the micro-kernel the cut never
    changes a bit."""
    cdef Py_ssize_t lo = 0, hi = _owned_rows_cost(s, 0, s.N), mid, r, p
    while lo < hi:
        mid = (lo + hi) // 2
        r = 0
        for p in range(num_threads):
            r = _owned_rows_end(s, r, mid)
        if r >= s.N:
            hi = mid
        else:
            lo = mid + 1
    cuts[0] = 0
    for p in range(num_threads):
        cuts[p + 1] = _owned_rows_end(s, cuts[p], lo) if p < num_threads - 1 else s.N


cdef inline Tiling owned_tiling(Tiling s, Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """The tiles of one thread's own rows r0 .. r1-1 (``owned_row_cuts``): row blocks of at most ``s.rows`` rows, as
    even as they go."""
    cdef Py_ssize_t blocks = (r1 - r0 + s.rows - 1) // s.rows
    s.first_row, s.end_row, s.row_blocks = r0, r1, blocks
    s.rows = (r1 - r0 + blocks - 1) // blocks if blocks > 0 else 1
    return s


cdef inline void tile_bounds(Tiling s, Py_ssize_t t, Py_ssize_t tile, Py_ssize_t* n0, Py_ssize_t* n1,
                             Py_ssize_t* j0, Py_ssize_t* j1) noexcept nogil:
    n0[0] = s.first_row + (tile // s.unit_blocks) * s.rows
    n1[0] = min(s.active[t], s.end_row, n0[0] + s.rows)
    j0[0] = (tile % s.unit_blocks) * s.units
    j1[0] = min(s.H, j0[0] + s.units)


cdef inline Py_ssize_t row_block_key(Tiling s, Py_ssize_t t, Py_ssize_t tile) noexcept nogil:
    """Names the rows a tile of step t reads (for a thread's sliver copy): its step and row block."""
    return t * s.row_blocks + tile // s.unit_blocks


cdef inline void forward_recurrent_product(Tiling s, Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t j0, Py_ssize_t j1,
                                           Py_ssize_t q0, Py_ssize_t q1, const floating* A, Py_ssize_t lda,
                                           const floating* Wh, const floating* panels, floating* g_t,
                                           SliverCache* slivers, Py_ssize_t key) noexcept nogil:
    """``g_t[rows n0:n1, gates q0..q1-1 of units j0:j1] += A[rows] @ Wh[:, those columns]``, where
    ``A`` is the previous state (or, for the reset-before GRU's n gate, r * h).  ``Wh``: as given, or
    its blocked copy; ``panels``: the micro-kernel's (float32 or float64), whose unit block holds its gate
    columns side by side.  ``key`` names A's rows for the thread's sliver copy."""
    cdef Py_ssize_t H = s.H, G = s.gates * s.H, q, w = j1 - j0
    cdef Py_ssize_t panel = PANEL if floating is float else PANEL_D
    cdef floating one = 1
    if panels != NULL:
        packed_gemm_tile(slivers, key, n1 - n0, H, A + n0 * lda, lda, panels + s.gates * j0 * H + q0 * w * H,
                         H * panel, (q1 - q0) * w // panel, w // panel, H, g_t + n0 * G + q0 * H + j0, G)
    elif j0 == 0 and j1 == H:  # one unit block, weights as given: whole gate blocks are contiguous, one GEMM
        gemm(False, False, n1 - n0, (q1 - q0) * H, H, one, A + n0 * lda, lda, Wh + q0 * H, G, one,
             g_t + n0 * G + q0 * H, G)
    else:
        for q in range(q0, q1):
            gemm(False, False, n1 - n0, w, H, one, A + n0 * lda, lda, Wh + weight_block(s, j0, q), s.w_ld, one,
                 g_t + n0 * G + q * H + j0, G)


cdef inline void backward_recurrent_product(Py_ssize_t t, Py_ssize_t tile, Tiling s, Py_ssize_t q0, Py_ssize_t q1,
                                            const floating* WhT, const floating* panels, const floating* dGh,
                                            floating beta, floating* out, SliverCache* slivers) noexcept nogil:
    """``out[rows, units j0:j1] = beta * out + dGh_t[rows, gates q0..q1-1] @ Wh^T[those gates' rows, j0:j1]``
    (padded rows have dGh = 0).  On BLAS one product per gate block with untransposed operands (OpenBLAS
    ran the transposed form at a third of the speed on these sizes), accumulated in gate order; on the
    micro-kernel, the K-slice of gates q0..q1-1 of Wh's rows j0:j1, transposed and packed."""
    cdef Py_ssize_t H = s.H, G = s.gates * s.H, n0, n1, j0, j1, n, q
    cdef Py_ssize_t panel = PANEL if floating is float else PANEL_D
    tile_bounds(s, t, tile, &n0, &n1, &j0, &j1)
    cdef const floating* dG_t = dGh + step_row(s, t) * G
    cdef floating one = 1, zero = 0
    if panels != NULL:
        if beta == 0:  # the micro-kernel accumulates
            for n in range(n0, n1):
                fill(out + n * H + j0, j1 - j0, zero)
        packed_gemm_tile(slivers, 16 * row_block_key(s, t, tile) + 4 * q0 + q1, n1 - n0, (q1 - q0) * H,
                         dG_t + n0 * G + q0 * H, G, panels + j0 * G + q0 * H * panel, G * panel,
                         (j1 - j0) // panel, (j1 - j0) // panel, 0, out + n0 * H + j0, H)
        return
    if j0 == 0 and j1 == H:  # the tile spans all units: one GEMM over the gates
        gemm(False, False, n1 - n0, H, (q1 - q0) * H, one, dG_t + n0 * G + q0 * H, G,
             WhT + q0 * H * H, H, beta, out + n0 * H, H)
        return
    for q in range(q0, q1):
        gemm(False, False, n1 - n0, j1 - j0, H, one, dG_t + n0 * G + q * H, G,
             WhT + q * H * H + j0, H, beta if q == q0 else one, out + n0 * H + j0, H)


cdef inline void emit_output_tile(Py_ssize_t t, Py_ssize_t tile, Tiling s, const floating* hst,
                                  floating* hs) noexcept nogil:
    """The user's batch-major output ``hs[n, t]`` for one tile of step t, written while the tile's
    new state is still in cache (a separate transposing pass over hs cost as much as a step at N=32).
    Padded steps are not visited: there ``hs`` was allocated zero."""
    cdef Py_ssize_t n0, n1, j0, j1, n
    tile_bounds(s, t, tile, &n0, &n1, &j0, &j1)
    cdef const floating* h_next = hst + slot(s, t + 1) * s.H
    for n in range(n0, n1):
        copy(hs + batch_row(s, n, t, s.H) + j0, h_next + n * s.H + j0, j1 - j0)
