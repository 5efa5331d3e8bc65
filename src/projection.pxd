# cython: language_level=3
"""The projection LSTM (LSTMP, Sak et al. 2014): one row block's step.  NumPy twin:
``rnnfast/reference/lstm.py`` (``projection``).

    a = x_t @ Wx + b + h_{t-1} @ Wh        (Wh: (P, 4H), h: P wide)
    i, f, g, o, c_t as the LSTM's;  m_t = o * tanh(c_t);  h_t = m_t @ Whr   (Whr: (H, P))

The projection needs every unit of ``m_t``, so a step's tiles are whole row blocks: a row block's step runs
the recurrent product, the gates and the projection back to back, and a thread owns whole row blocks for
all steps (no barriers).  The blocks' shape comes from the problem alone, so the bits do not depend on the
thread count.  The products are BLAS calls on the weights as given (BLAS single-threaded, by the driver).
"""
from cython cimport floating

from blas cimport gemm
from gate_math cimport copy, sigmoid_inplace, tanh_inplace
from lstm_cell cimport lstm_cell_backward, lstm_cell_update, lstm_peephole_backward, lstm_peephole_update


cdef enum:
    # OpenBLAS's unpacked small-matrix path takes products of up to about this many multiply-adds (as
    # rnnfast._core.plan.SMALL_GEMM_MACS); past it, it packs all of Wh at every step.
    SMALL_GEMM_MACS = 1000000


cdef inline Py_ssize_t step_columns(Py_ssize_t rows, Py_ssize_t width, Py_ssize_t G) noexcept nogil:
    """Gate columns per step product of a row block of ``rows`` rows with a ``width``-wide state: the widest
    multiple of 64 (at least 64) that keeps ``rows x columns x width`` on the small-matrix path.  A function
    of the shapes alone, so the bits do not depend on the thread count."""
    cdef Py_ssize_t c = (SMALL_GEMM_MACS // max(1, rows * width)) // 64 * 64
    return max(64, min(c, G))


cdef inline void column_block_product(Py_ssize_t rows, Py_ssize_t G, Py_ssize_t K, Py_ssize_t cols,
                                      const floating* a, const floating* W, bint add, floating* out) noexcept nogil:
    """``out (rows, G) = a (rows, K) @ W (K, G)`` (``add``: ``+=``) in column blocks of ``cols`` (``step_columns``),
    each on OpenBLAS's small-matrix path."""
    cdef Py_ssize_t j0 = 0
    while j0 < G:
        gemm(False, False, rows, min(cols, G - j0), K, 1, a, K, W + j0, G, 1 if add else 0, out + j0, G)
        j0 += cols


cdef inline void column_block_transposed_product(Py_ssize_t rows, Py_ssize_t G, Py_ssize_t K, Py_ssize_t cols,
                                                 const floating* d, const floating* WT, bint add,
                                                 floating* out) noexcept nogil:
    """``out (rows, K) = d (rows, G) @ W^T`` (``add``: ``+=``) from ``WT (G, K)``, the column blocks' products
    summed in order.  The NN form on a transposed copy: OpenBLAS took its packing path for the NT one."""
    cdef Py_ssize_t j0 = 0
    while j0 < G:
        gemm(False, False, rows, K, min(cols, G - j0), 1, d + j0, G, WT + j0 * K, K, 1 if add or j0 > 0 else 0,
             out, K)
        j0 += cols


cdef struct ProjectedBuffers:
    # Arrays are float* or double* (the call's dtype), NULL where the path has none.  G = 4H.
    Py_ssize_t N, T, H, P
    # the staircase (``rnnfast._core.buffers.Staircase``): step t's block starts at row offsets[t], its first
    # active[t] rows running; order[i] the user's row of sorted row i (NULL: unsorted)
    const Py_ssize_t* offsets
    const Py_ssize_t* active
    const Py_ssize_t* order
    bint ring                 # inference: histories in a ring of two N-row slots
    Py_ssize_t cols           # gate columns per step product (``step_columns``)
    const void* Wh            # (P, G)
    const void* Whr           # (H, P)
    const void* WhT           # backward: (G, P) Wh transposed ...
    const void* WhrT          # ... and (P, H) Whr: the step products in the NN form, which OpenBLAS keeps on
                              # its small-matrix kernel (the NT form repacks the weights at every step)
    const void* peep          # (3H,) peepholes, or NULL
    void* act                 # (rows, G) input pre-activations, then the gate activations
    void* hst                 # history of (., P): the projected state entering each step
    void* cst                 # history of (., H): the cell state
    void* mst                 # (rows, H) m_t of every step (ring: (N, H), this step's)
    void* hs                  # (N, T, P) the user's output
    const void* dhs           # (N, T, P) its gradient, read in place
    void* dh                  # (N, P) in: dL/dh_T, out: dL/dh_0 (rows sorted)
    void* dc                  # (N, H) likewise for c
    void* dhst                # (rows, P) dL/dh_t of every step (for dWhr)
    void* dm                  # (N, H) dL/dm_t of one step
    const void* zeros         # (H,) zeros
    void* dG                  # (rows, G) gate pre-activation gradients


cdef inline Py_ssize_t _slot(const ProjectedBuffers* b, Py_ssize_t t) noexcept nogil:
    return (t % 2) * b.N if b.ring else b.offsets[t]


cdef inline Py_ssize_t _user_offset(const ProjectedBuffers* b, Py_ssize_t n, Py_ssize_t t) noexcept nogil:
    """Offset of (sorted) row n, step t in the user's (N, T, P) arrays."""
    return ((b.order[n] if b.order != NULL else n) * b.T + t) * b.P


cdef inline void projected_forward_step(Py_ssize_t t, Py_ssize_t n0, Py_ssize_t n1, const ProjectedBuffers* b,
                                        floating* act) noexcept nogil:
    """Step t of the running rows n0..n1-1 of one row block."""
    cdef Py_ssize_t H = b.H, P = b.P, G = 4 * b.H, n
    cdef floating* g_t = act + b.offsets[t] * G
    cdef const floating* h_prev = <const floating*>b.hst + _slot(b, t) * P
    cdef floating* h_next = <floating*>b.hst + _slot(b, t + 1) * P
    cdef const floating* c_prev = <const floating*>b.cst + _slot(b, t) * H
    cdef floating* c_next = <floating*>b.cst + _slot(b, t + 1) * H
    cdef floating* m_t = <floating*>b.mst + (0 if b.ring else b.offsets[t]) * H
    cdef const floating* p = <const floating*>b.peep
    cdef floating* a
    column_block_product(n1 - n0, G, P, b.cols, h_prev + n0 * P, <const floating*>b.Wh, True, g_t + n0 * G)
    for n in range(n0, n1):
        a = g_t + n * G
        if p != NULL:
            lstm_peephole_update(a, a + H, a + 2 * H, a + 3 * H, p, p + H, p + 2 * H, c_prev + n * H, c_next + n * H,
                                 m_t + n * H, H)
        else:
            sigmoid_inplace(a, H)          # i
            sigmoid_inplace(a + H, H)      # f
            tanh_inplace(a + 2 * H, H)     # g
            sigmoid_inplace(a + 3 * H, H)  # o
            lstm_cell_update(a, a + H, a + 2 * H, a + 3 * H, c_prev + n * H, c_next + n * H, m_t + n * H, H)
    gemm(False, False, n1 - n0, P, H, 1, m_t + n0 * H, H, <const floating*>b.Whr, P, 0, h_next + n0 * P, P)
    for n in range(n0, n1):
        copy(<floating*>b.hs + _user_offset(b, n, t), h_next + n * P, P)


cdef inline void projected_backward_step(Py_ssize_t t, Py_ssize_t n0, Py_ssize_t n1, const ProjectedBuffers* b,
                                         floating* dG) noexcept nogil:
    """Step t's gradients for the running rows n0..n1-1 of one row block: ``dh``, ``dc`` go from step t+1's
    to step t's; the step's dL/dh_t stays in ``dhst`` (for dWhr), its gate gradients in ``dG``."""
    cdef Py_ssize_t H = b.H, P = b.P, G = 4 * b.H, n, j
    cdef const floating* a_t = <const floating*>b.act + b.offsets[t] * G
    cdef floating* d_t = dG + b.offsets[t] * G
    cdef const floating* c_prev = <const floating*>b.cst + b.offsets[t] * H
    cdef const floating* c_next = <const floating*>b.cst + b.offsets[t + 1] * H
    cdef floating* dh_t = <floating*>b.dhst + b.offsets[t] * P
    cdef floating* dh = <floating*>b.dh
    cdef floating* dm = <floating*>b.dm
    cdef floating* dc = <floating*>b.dc
    cdef const floating* dhs = <const floating*>b.dhs
    cdef const floating* zeros = <const floating*>b.zeros
    cdef const floating* p = <const floating*>b.peep
    cdef const floating* a
    cdef floating* d
    for n in range(n0, n1):
        for j in range(P):
            dh_t[n * P + j] = dh[n * P + j] + dhs[_user_offset(b, n, t) + j]
    # dL/dm_t = dL/dh_t @ Whr^T
    gemm(False, False, n1 - n0, H, P, 1, dh_t + n0 * P, P, <const floating*>b.WhrT, H, 0, dm + n0 * H, H)
    for n in range(n0, n1):  # the LSTM's gate gradients, with dL/dm_t where the LSTM has dL/dh_t
        a = a_t + n * G
        d = d_t + n * G
        if p != NULL:
            lstm_peephole_backward(a, a + H, a + 2 * H, a + 3 * H, p, p + H, p + 2 * H, c_prev + n * H,
                                   c_next + n * H, zeros, dm + n * H, dc + n * H, d, d + H, d + 2 * H, d + 3 * H, H)
        else:
            lstm_cell_backward(a, a + H, a + 2 * H, a + 3 * H, c_prev + n * H, c_next + n * H, zeros, dm + n * H,
                               dc + n * H, d, d + H, d + 2 * H, d + 3 * H, H)
    # dL/dh_{t-1} = dG_t @ Wh^T
    column_block_transposed_product(n1 - n0, G, P, b.cols, d_t + n0 * G, <const floating*>b.WhT, False,
                                    dh + n0 * P)
