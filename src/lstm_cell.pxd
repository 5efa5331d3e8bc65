# cython: language_level=3
"""LSTM: the element-wise part of a step; the driver (``kernels.pyx``) does the rest.

NumPy twin: ``rnnfast/reference/lstm.py`` (the specification).  Gate blocks of the fused weights, in order:
i, f, g, o (PyTorch's).

    a = x_t @ Wx + b + h_{t-1} @ Wh;   i, f, o = sigmoid(a_i, a_f, a_o);   g = tanh(a_g)
    c_t = f * c_{t-1} + i * g;          h_t = o * tanh(c_t)

With peepholes (``peep`` = [p_i | p_f | p_o]): i, f = sigmoid(a_i + p_i * c_{t-1}, a_f + p_f * c_{t-1}),
o = sigmoid(a_o + p_o * c_t).  Their gradients are sums over every step, made after the time loop.

Buffers (``StepBuffers``): ``act`` (T, N, 4H) enters holding x @ Wx + b and leaves holding i, f, g, o;
``hst``, ``cst`` (T+1, N, H); backward writes ``dGx`` (= ``dGh``), carrying ``dh``, ``dc`` back.
"""
from cython cimport floating
from cython.parallel cimport prange

from gate_math cimport copy, sigmoid_inplace, tanh_, tanh_inplace
from microkernel cimport SliverCache
from step_tiles cimport (StepBuffers, Tiling, batch_row, forward_recurrent_product, row_block_key, slot, step_row,
                         tile_bounds)
from strips cimport StreamBuffers, row_product
from threads cimport team
from zoneout cimport zones_out

cdef enum:
    PEEPHOLE_UNITS = 64  # units per task of the peephole gradients (threads own whole unit blocks)


cdef inline void lstm_forward_tile(Py_ssize_t t, Py_ssize_t tile, Tiling s, const StepBuffers* b, floating* act,
                                   SliverCache* slivers) noexcept nogil:
    cdef Py_ssize_t H = s.H, G = 4 * s.H, n0, n1, j0, j1, n
    tile_bounds(s, t, tile, &n0, &n1, &j0, &j1)
    cdef floating* g_t = act + step_row(s, t) * G
    cdef floating* h_prev = <floating*>b.hst + slot(s, t) * H
    cdef floating* h_next = <floating*>b.hst + slot(s, t + 1) * H
    cdef floating* c_prev = <floating*>b.cst + slot(s, t) * H
    cdef floating* c_next = <floating*>b.cst + slot(s, t + 1) * H
    cdef floating* a
    cdef const floating* p = <const floating*>b.peep
    forward_recurrent_product(s, n0, n1, j0, j1, 0, 4, h_prev, H, <const floating*>b.Wh,
                              <const floating*>b.panels, g_t, slivers, row_block_key(s, t, tile))
    if p != NULL:
        for n in range(n0, n1):
            a = g_t + n * G + j0
            lstm_peephole_update(a, a + H, a + 2 * H, a + 3 * H, p + j0, p + H + j0, p + 2 * H + j0,
                                 c_prev + n * H + j0, c_next + n * H + j0, h_next + n * H + j0, j1 - j0)
        return
    for n in range(n0, n1):  # the rows still running (a sequence's state stays where its last step left it)
        a = g_t + n * G + j0
        sigmoid_inplace(a, j1 - j0)          # i
        sigmoid_inplace(a + H, j1 - j0)      # f
        tanh_inplace(a + 2 * H, j1 - j0)     # g
        sigmoid_inplace(a + 3 * H, j1 - j0)  # o
        if b.zoneout:
            lstm_zoneout_update(a, a + H, a + 2 * H, a + 3 * H, c_prev + n * H + j0, c_next + n * H + j0,
                                h_prev + n * H + j0, h_next + n * H + j0, j1 - j0, b, _zone_counter(s, n, t, j0))
        else:
            lstm_cell_update(a, a + H, a + 2 * H, a + 3 * H, c_prev + n * H + j0, c_next + n * H + j0,
                             h_next + n * H + j0, j1 - j0)


cdef inline unsigned long long _zone_counter(Tiling s, Py_ssize_t n, Py_ssize_t t, Py_ssize_t j) noexcept nogil:
    """Zoneout's counter of (sorted) row n's sequence, step t, unit j, state c; + 1 for h
    (``rnnfast/reference/zoneout.py``'s layout: the user's row, so the masks do not depend on the sorting)."""
    return ((<unsigned long long>(s.order[n] if s.order != NULL else n) * s.T + t) * s.H + j) * 2


cdef inline void lstm_zoneout_update(const floating* i, const floating* f, const floating* g, const floating* o,
                                     const floating* c_prev, floating* c_next, const floating* h_prev,
                                     floating* h_next, Py_ssize_t m, const StepBuffers* b,
                                     unsigned long long counter) noexcept nogil:
    """``lstm_cell_update``, then each unit of c and h keeps its previous value with weight k (zoneout's mask
    in training, its rate in evaluation); ``counter``: unit 0's.  c~ goes through ``c_next`` and ``h_next``
    first, so that its tanh runs over the whole run of units."""
    cdef Py_ssize_t j
    cdef floating k_c = <floating>b.z_c, k_h = <floating>b.z_h, one = 1
    for j in range(m):
        c_next[j] = f[j] * c_prev[j] + i[j] * g[j]
        h_next[j] = c_next[j]
    tanh_inplace(h_next, m)
    for j in range(m):
        if b.zone_train:
            k_c = zones_out(b.zone_key, counter + 2 * j, b.z_c)
            k_h = zones_out(b.zone_key, counter + 2 * j + 1, b.z_h)
        h_next[j] = k_h * h_prev[j] + (one - k_h) * (o[j] * h_next[j])
        c_next[j] = k_c * c_prev[j] + (one - k_c) * c_next[j]


cdef inline void lstm_cell_update(const floating* i, const floating* f, const floating* g, const floating* o,
                                  const floating* c_prev, floating* c_next, floating* h_next,
                                  Py_ssize_t m) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating c_
    for j in range(m):
        c_ = f[j] * c_prev[j] + i[j] * g[j]
        c_next[j] = c_
        h_next[j] = o[j] * tanh_(c_)


cdef inline void lstm_peephole_update(floating* i, floating* f, floating* g, floating* o, const floating* p_i,
                                     const floating* p_f, const floating* p_o, const floating* c_prev,
                                     floating* c_next, floating* h_next, Py_ssize_t m) noexcept nogil:
    """``lstm_cell_update`` with peepholes, from the pre-activations: o waits for the new cell state."""
    cdef Py_ssize_t j
    cdef floating c_
    for j in range(m):
        i[j] = i[j] + p_i[j] * c_prev[j]
        f[j] = f[j] + p_f[j] * c_prev[j]
    sigmoid_inplace(i, m)
    sigmoid_inplace(f, m)
    tanh_inplace(g, m)
    for j in range(m):
        c_ = f[j] * c_prev[j] + i[j] * g[j]
        c_next[j] = c_
        o[j] = o[j] + p_o[j] * c_
    sigmoid_inplace(o, m)
    for j in range(m):
        h_next[j] = o[j] * tanh_(c_next[j])


cdef inline void lstm_backward_gates_tile(Py_ssize_t t, Py_ssize_t tile, Tiling s, const StepBuffers* b,
                                          floating* dG) noexcept nogil:
    """Gate pre-activation gradients of step t for one tile; dc flows to c_{t-1}.  ``dh`` enters as
    dL/dh_t from later steps and leaves zeroed, ready for the recurrent product."""
    cdef Py_ssize_t H = s.H, G = 4 * s.H, n0, n1, j0, j1, n
    tile_bounds(s, t, tile, &n0, &n1, &j0, &j1)
    cdef const floating* a_t = <const floating*>b.act + step_row(s, t) * G
    cdef floating* d_t = dG + step_row(s, t) * G
    cdef const floating* c_prev = <const floating*>b.cst + slot(s, t) * H
    cdef const floating* c_next = <const floating*>b.cst + slot(s, t + 1) * H
    cdef const floating* dhs = <const floating*>b.dhs
    cdef floating* dh = <floating*>b.dh
    cdef floating* dc = <floating*>b.dc
    cdef const floating* a
    cdef floating* d
    cdef const floating* p = <const floating*>b.peep
    if p != NULL:
        for n in range(n0, n1):
            d = d_t + n * G + j0
            a = a_t + n * G + j0
            lstm_peephole_backward(a, a + H, a + 2 * H, a + 3 * H, p + j0, p + H + j0, p + 2 * H + j0,
                                   c_prev + n * H + j0, c_next + n * H + j0, dhs + batch_row(s, n, t, H) + j0,
                                   dh + n * H + j0, dc + n * H + j0, d, d + H, d + 2 * H, d + 3 * H, j1 - j0)
        return
    if b.zoneout:
        for n in range(n0, n1):
            d = d_t + n * G + j0
            a = a_t + n * G + j0
            lstm_zoneout_backward(a, a + H, a + 2 * H, a + 3 * H, c_prev + n * H + j0,
                                  dhs + batch_row(s, n, t, H) + j0, dh + n * H + j0, dc + n * H + j0, d, d + H,
                                  d + 2 * H, d + 3 * H, j1 - j0, b, _zone_counter(s, n, t, j0))
        return
    for n in range(n0, n1):  # the rows running at step t; the others' dh, dc pass through untouched
        d = d_t + n * G + j0
        a = a_t + n * G + j0
        lstm_cell_backward(a, a + H, a + 2 * H, a + 3 * H, c_prev + n * H + j0, c_next + n * H + j0,
                           dhs + batch_row(s, n, t, H) + j0, dh + n * H + j0, dc + n * H + j0,
                           d, d + H, d + 2 * H, d + 3 * H, j1 - j0)


cdef inline void lstm_cell_backward(const floating* i, const floating* f, const floating* g, const floating* o,
                                    const floating* c_prev, const floating* c_next, const floating* dhs,
                                    floating* dh, floating* dc,
                                    floating* di, floating* df, floating* dg, floating* do_,
                                    Py_ssize_t m) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating one = 1, tc, dh_, dc_
    for j in range(m):
        tc = tanh_(c_next[j])
        dh_ = dh[j] + dhs[j]
        dc_ = dc[j] + dh_ * o[j] * (one - tc * tc)
        di[j] = dc_ * g[j] * i[j] * (one - i[j])
        df[j] = dc_ * c_prev[j] * f[j] * (one - f[j])
        dg[j] = dc_ * i[j] * (one - g[j] * g[j])
        do_[j] = dh_ * tc * o[j] * (one - o[j])
        dc[j] = dc_ * f[j]
        dh[j] = 0


cdef inline void lstm_zoneout_backward(const floating* i, const floating* f, const floating* g, const floating* o,
                                       const floating* c_prev, const floating* dhs, floating* dh, floating* dc,
                                       floating* di, floating* df, floating* dg, floating* do_, Py_ssize_t m,
                                       const StepBuffers* b, unsigned long long counter) noexcept nogil:
    """``lstm_cell_backward`` with zoneout: the new cell state before zoneout (c~) is recomputed; dh keeps
    k_h of dL/dh_t for the recurrent product to add to, dc k_c of dL/dc_t."""
    cdef Py_ssize_t j
    cdef floating one = 1, k_c = <floating>b.z_c, k_h = <floating>b.z_h, c_, tc, dh_, dht, dc_in, dct
    for j in range(m):
        if b.zone_train:
            k_c = zones_out(b.zone_key, counter + 2 * j, b.z_c)
            k_h = zones_out(b.zone_key, counter + 2 * j + 1, b.z_h)
        c_ = f[j] * c_prev[j] + i[j] * g[j]
        tc = tanh_(c_)
        dh_ = dh[j] + dhs[j]
        dht = (one - k_h) * dh_
        dc_in = dc[j]
        dct = (one - k_c) * dc_in + dht * o[j] * (one - tc * tc)
        di[j] = dct * g[j] * i[j] * (one - i[j])
        df[j] = dct * c_prev[j] * f[j] * (one - f[j])
        dg[j] = dct * i[j] * (one - g[j] * g[j])
        do_[j] = dht * tc * o[j] * (one - o[j])
        dc[j] = dct * f[j] + k_c * dc_in
        dh[j] = k_h * dh_


cdef inline void lstm_peephole_backward(const floating* i, const floating* f, const floating* g,
                                       const floating* o, const floating* p_i, const floating* p_f,
                                       const floating* p_o, const floating* c_prev, const floating* c_next,
                                       const floating* dhs, floating* dh, floating* dc,
                                       floating* di, floating* df, floating* dg, floating* do_,
                                       Py_ssize_t m) noexcept nogil:
    """``lstm_cell_backward`` with peepholes: c_t also reaches the loss through o, c_{t-1} through i and f."""
    cdef Py_ssize_t j
    cdef floating one = 1, tc, dh_, dc_, do_j, di_j, df_j
    for j in range(m):
        tc = tanh_(c_next[j])
        dh_ = dh[j] + dhs[j]
        do_j = dh_ * tc * o[j] * (one - o[j])
        dc_ = dc[j] + dh_ * o[j] * (one - tc * tc) + do_j * p_o[j]
        di_j = dc_ * g[j] * i[j] * (one - i[j])
        df_j = dc_ * c_prev[j] * f[j] * (one - f[j])
        di[j] = di_j
        df[j] = df_j
        dg[j] = dc_ * i[j] * (one - g[j] * g[j])
        do_[j] = do_j
        dc[j] = dc_ * f[j] + di_j * p_i[j] + df_j * p_f[j]
        dh[j] = 0


cdef inline void lstm_peephole_gradients(Tiling s, const floating* dG, const floating* cst, floating* dp,
                                         int num_threads) noexcept nogil:
    """``dp = [sum di * c_{t-1} | sum df * c_{t-1} | sum do * c_t]`` over every running row of every step
    (``dG``: the gate pre-activation gradients, ``cst``: the cell-state history).  Threads own whole unit
    blocks and add the rows in step order: the same bits for any thread count."""
    cdef Py_ssize_t H = s.H, G = 4 * s.H, blocks = (s.H + PEEPHOLE_UNITS - 1) // PEEPHOLE_UNITS
    cdef Py_ssize_t blk, j0, j1, j, t, r, row
    cdef const floating* d
    cdef const floating* c_prev
    cdef const floating* c_next
    for blk in prange(blocks, nogil=True, schedule="static", num_threads=team(blocks, num_threads)):
        j0 = blk * PEEPHOLE_UNITS
        j1 = min(H, j0 + PEEPHOLE_UNITS)
        for j in range(j0, j1):
            dp[j] = 0
            dp[H + j] = 0
            dp[2 * H + j] = 0
        for t in range(s.T):
            for r in range(s.active[t]):
                row = s.offsets[t] + r
                d = dG + row * G
                c_prev = cst + row * H
                c_next = cst + (s.offsets[t + 1] + r) * H
                for j in range(j0, j1):
                    dp[j] = dp[j] + d[j] * c_prev[j]
                    dp[H + j] = dp[H + j] + d[H + j] * c_prev[j]
                    dp[2 * H + j] = dp[2 * H + j] + d[3 * H + j] * c_next[j]


cdef inline void lstm_stream_block(Py_ssize_t k, const StreamBuffers* b, floating* gates) noexcept nogil:
    """Unit block k of a streaming step: its four gate blocks sit side by side in one (K, 4*width) panel
    of strips, so one product gives all its pre-activations and no other block's results are needed."""
    cdef Py_ssize_t N = b.N, K = b.K, D = b.D, H = b.H, width = b.width, C4 = 4 * b.width
    cdef Py_ssize_t j0 = k * width, w = min(width, H - j0), n
    cdef floating* g = gates + k * N * C4
    cdef floating* c = <floating*>b.c
    cdef floating* xh_next = <floating*>b.xh_next
    cdef floating* a
    cdef const floating* p = <const floating*>b.peep
    for n in range(N):
        copy(g + n * C4, <const floating*>b.b_strips + k * C4, C4)
    row_product(N, C4, K, <const floating*>b.xh, <const floating*>b.strips + k * K * C4, g)
    for n in range(N):
        a = g + n * C4
        if p != NULL:  # c is updated in place: each unit reads its c_{t-1} before writing c_t
            lstm_peephole_update(a, a + width, a + 2 * width, a + 3 * width, p + j0, p + H + j0, p + 2 * H + j0,
                                 c + n * H + j0, c + n * H + j0, xh_next + n * K + D + j0, w)
            continue
        sigmoid_inplace(a, w)              # i
        sigmoid_inplace(a + width, w)      # f
        tanh_inplace(a + 2 * width, w)     # g
        sigmoid_inplace(a + 3 * width, w)  # o
        # c is updated in place (each unit belongs to one block); h goes to the other [x | h]
        # buffer, which no block reads during this step.
        if b.zoneout:
            _stream_zoneout_update(a, a + width, a + 2 * width, a + 3 * width, c + n * H + j0,
                                   <const floating*>b.xh + n * K + D + j0, xh_next + n * K + D + j0, w,
                                   <floating>b.z_c, <floating>b.z_h)
        else:
            lstm_cell_update(a, a + width, a + 2 * width, a + 3 * width, c + n * H + j0, c + n * H + j0,
                             xh_next + n * K + D + j0, w)


cdef inline void _stream_zoneout_update(const floating* i, const floating* f, floating* g, const floating* o,
                                        floating* c, const floating* h_prev, floating* h_next, Py_ssize_t m,
                                        floating k_c, floating k_h) noexcept nogil:
    """``lstm_zoneout_update`` in evaluation (k = the rates) with c updated in place: c~ goes to ``g``, which
    is not read again, so that c_{t-1} survives until its share of c_t is taken."""
    cdef Py_ssize_t j
    cdef floating one = 1
    for j in range(m):
        g[j] = f[j] * c[j] + i[j] * g[j]
        h_next[j] = g[j]
    tanh_inplace(h_next, m)
    for j in range(m):
        h_next[j] = k_h * h_prev[j] + (one - k_h) * (o[j] * h_next[j])
        c[j] = k_c * c[j] + (one - k_c) * g[j]
