# cython: language_level=3
"""The layer-normalized LSTM (Ba et al. 2016, haste's ``LayerNormLSTM``) and GRU (reset-after): one row block's
step.  NumPy twin: ``rnnfast/reference/layer_norm.py`` (the equations, the parameters' layout and EPS).

    LSTM:  a = LN(x_t @ Wx; g_x) + LN(h_{t-1} @ Wh; g_h) + b;   c_t = f * c_{t-1} + i * g;
           h_t = o * tanh(LN(c_t; g_c, b_c))
    GRU:   a_x = LN(x_t @ Wx; g_x) + b_x;   a_h = LN(h_{t-1} @ Wh; g_h) + b_h;   r, z = sigmoid(a_x + a_h);
           n = tanh(a_x,n + r * a_h,n);   h_t = (1 - z) * n + z * h_{t-1}

The normalizations need a whole row of the step's products, so, as the projection LSTM's, a step's tiles are
whole row blocks and a thread owns its row blocks for all steps.  ``LN(x_t @ Wx)`` does not depend on the
state: it is made for all steps before the loop.  The means and variances are summed in double, in order.
"""
from cython cimport floating
from libc.math cimport sqrt

from gate_math cimport sigmoid_inplace, tanh_, tanh_inplace
from projection cimport column_block_product, column_block_transposed_product


cdef struct LayerNormBuffers:
    # Arrays are float* or double* (the call's dtype).  G = 4H (LSTM) or 3H (GRU).  Time-major arrays have a
    # block of rows per step (the staircase: offsets, active, order); in inference the per-step ones are N rows,
    # reused.  The GRU has no cell state: cst, c_hat, c_rstd, dc and dCN are NULL.
    bint gru
    Py_ssize_t N, T, H
    const Py_ssize_t* offsets
    const Py_ssize_t* active
    const Py_ssize_t* order
    bint ring
    Py_ssize_t cols           # gate columns per step product (``projection.step_columns``)
    const void* Wh            # (H, G)
    const void* WhT           # backward: (G, H) Wh transposed: the step products in the NN form, which OpenBLAS
                              # keeps on its small-matrix kernel (the NT form repacks Wh at every step)
    const void* ln            # (10H,) [g_x | g_h | g_c | b_c], the GRU's (6H,) [g_x | g_h]
    const void* bias_h        # (G,) the GRU's recurrent bias b_h
    void* act                 # (rows, G) LN(x @ Wx) * g_x + b, then the gate activations
    void* h_hat               # (rows, G) the normalized h_{t-1} @ Wh ...
    void* h_rstd              # (rows,) ... and its 1 / std
    void* c_hat               # (rows, H) the normalized c_t ...
    void* c_rstd              # (rows,) ... and its 1 / std
    void* hst                 # histories of h and c (the LSTM's)
    void* cst
    void* hs                  # (N, T, H) the user's output
    const void* dhs           # (N, T, H) its gradient, read in place
    void* dh                  # (N, H) in: dL/dh_T, out: dL/dh_0 (rows sorted)
    void* dc
    void* dG                  # (rows, G) at the gate pre-activations a
    void* dR                  # (rows, G) at h_{t-1} @ Wh
    void* dCN                 # (rows, H) at LN(c_t)
    void* dAH                 # (rows, G) the GRU's gradient at a_h


cdef inline Py_ssize_t _slot(const LayerNormBuffers* b, Py_ssize_t t) noexcept nogil:
    return (t % 2) * b.N if b.ring else b.offsets[t]


cdef inline Py_ssize_t _row(const LayerNormBuffers* b, Py_ssize_t t) noexcept nogil:
    """First row of step t in the per-step arrays (h_hat, c_hat, their rstd)."""
    return 0 if b.ring else b.offsets[t]


cdef inline floating normalize(const floating* v, floating* v_hat, Py_ssize_t n) noexcept nogil:
    """``v_hat = (v - mean) / sqrt(var + EPS)`` (``v_hat`` may be ``v``); returns ``1 / sqrt(var + EPS)``."""
    cdef Py_ssize_t j
    cdef double mean = 0, var = 0, d
    for j in range(n):
        mean += v[j]
    mean /= n
    for j in range(n):
        d = v[j] - mean
        var += d * d
    cdef floating rstd = <floating>(1.0 / sqrt(var / n + 1e-5))  # EPS, the reference's
    cdef floating m = <floating>mean
    for j in range(n):
        v_hat[j] = (v[j] - m) * rstd
    return rstd


cdef inline void normalize_backward(const floating* dy, const floating* v_hat, floating rstd, const floating* gain,
                                    floating* dv, Py_ssize_t n) noexcept nogil:
    """``dv``: the gradient at ``v`` of ``v_hat * gain + bias``, from ``dy`` at its output."""
    cdef Py_ssize_t j
    cdef double m1 = 0, m2 = 0, d
    for j in range(n):
        d = dy[j] * gain[j]
        m1 += d
        m2 += d * v_hat[j]
    cdef floating a = <floating>(m1 / n), c = <floating>(m2 / n)
    for j in range(n):
        dv[j] = rstd * (dy[j] * gain[j] - a - v_hat[j] * c)


cdef inline void layer_norm_inputs(Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t G, floating* act, floating* x_hat,
                                   floating* x_rstd, const floating* ln, const floating* bias) noexcept nogil:
    """Rows r0..r1-1 of the input part (G pre-activations a row): ``act`` enters holding x @ Wx and leaves
    holding LN(x @ Wx) * g_x + b; the normalized rows go to ``x_hat`` (training), their 1/std to ``x_rstd``."""
    cdef Py_ssize_t r, j
    cdef floating* a
    cdef floating* xh
    cdef floating rstd
    for r in range(r0, r1):
        a = act + r * G
        xh = x_hat + r * G if x_hat != NULL else a
        rstd = normalize(a, xh, G)
        if x_rstd != NULL:
            x_rstd[r] = rstd
        for j in range(G):
            a[j] = xh[j] * ln[j] + bias[j]


cdef inline void layer_norm_lstm_row(floating* a, floating* hh, const floating* c_prev, floating* c_next,
                                     floating* ch, floating* h_next, floating* h_rstd, floating* c_rstd,
                                     const floating* ln, Py_ssize_t H) noexcept nogil:
    """One row of a step of the layer-normalized LSTM: ``a`` (4H) enters holding LN(x_t @ Wx) * g_x + b and
    ``hh`` (4H) h_{t-1} @ Wh, normalized in place; the new cell state goes to ``c_next``, its normalized form
    to ``ch``, h_t to ``h_next``, the two 1/std to ``h_rstd[0]``, ``c_rstd[0]``.  The sequence kernel's
    step and the stepper's (``stream_layer_norm_rows``) both run it."""
    cdef Py_ssize_t G = 4 * H, j
    cdef const floating* g_h = ln + G
    cdef const floating* g_c = ln + 2 * G
    cdef const floating* b_c = ln + 2 * G + H
    cdef floating c_
    h_rstd[0] = normalize(hh, hh, G)
    for j in range(G):
        a[j] = a[j] + hh[j] * g_h[j]
    sigmoid_inplace(a, H)          # i
    sigmoid_inplace(a + H, H)      # f
    tanh_inplace(a + 2 * H, H)     # g
    sigmoid_inplace(a + 3 * H, H)  # o
    for j in range(H):
        c_ = a[H + j] * c_prev[j] + a[j] * a[2 * H + j]
        c_next[j] = c_
    c_rstd[0] = normalize(c_next, ch, H)
    for j in range(H):
        h_next[j] = a[3 * H + j] * tanh_(ch[j] * g_c[j] + b_c[j])


cdef inline void layer_norm_gru_row(floating* a, floating* hh, const floating* h_prev, floating* h_next,
                                    floating* h_rstd, const floating* ln, const floating* b_h,
                                    Py_ssize_t H) noexcept nogil:
    """One row of a step of the layer-normalized GRU: ``a`` (3H) enters holding LN(x_t @ Wx) * g_x + b_x and
    leaves holding r, z, n; ``hh`` (3H) enters holding h_{t-1} @ Wh, normalized in place; h_t goes to
    ``h_next``, the 1/std to ``h_rstd[0]``.  The sequence kernel's step and the stepper's both run it."""
    cdef Py_ssize_t G = 3 * H, j
    cdef const floating* g_h = ln + G
    cdef floating one = 1, z
    h_rstd[0] = normalize(hh, hh, G)
    for j in range(2 * H):
        a[j] = a[j] + (hh[j] * g_h[j] + b_h[j])
    sigmoid_inplace(a, 2 * H)      # r, z
    for j in range(2 * H, G):
        a[j] = a[j] + a[j - 2 * H] * (hh[j] * g_h[j] + b_h[j])
    tanh_inplace(a + 2 * H, H)     # n
    for j in range(H):
        z = a[H + j]
        h_next[j] = (one - z) * a[2 * H + j] + z * h_prev[j]


cdef inline void layer_norm_forward_step(Py_ssize_t t, Py_ssize_t n0, Py_ssize_t n1, const LayerNormBuffers* b,
                                         floating* act) noexcept nogil:
    """Step t of the running rows n0..n1-1 of one row block."""
    cdef Py_ssize_t H = b.H, G = 4 * b.H, n, j
    cdef const floating* ln = <const floating*>b.ln
    cdef floating* a_t = act + b.offsets[t] * G
    cdef floating* h_hat = <floating*>b.h_hat + _row(b, t) * G
    cdef floating* h_rstd = <floating*>b.h_rstd + _row(b, t)
    cdef floating* c_hat = <floating*>b.c_hat + _row(b, t) * H
    cdef floating* c_rstd = <floating*>b.c_rstd + _row(b, t)
    cdef const floating* h_prev = <const floating*>b.hst + _slot(b, t) * H
    cdef floating* h_next = <floating*>b.hst + _slot(b, t + 1) * H
    cdef const floating* c_prev = <const floating*>b.cst + _slot(b, t) * H
    cdef floating* c_next = <floating*>b.cst + _slot(b, t + 1) * H
    cdef floating* hs = <floating*>b.hs
    column_block_product(n1 - n0, G, H, b.cols, h_prev + n0 * H, <const floating*>b.Wh, False, h_hat + n0 * G)
    for n in range(n0, n1):
        layer_norm_lstm_row(a_t + n * G, h_hat + n * G, c_prev + n * H, c_next + n * H, c_hat + n * H,
                            h_next + n * H, h_rstd + n, c_rstd + n, ln, H)
        for j in range(H):
            hs[((b.order[n] if b.order != NULL else n) * b.T + t) * H + j] = h_next[n * H + j]


cdef inline void layer_norm_backward_step(Py_ssize_t t, Py_ssize_t n0, Py_ssize_t n1, const LayerNormBuffers* b,
                                          floating* dG) noexcept nogil:
    """Step t's gradients for the running rows n0..n1-1 of one row block: ``dh``, ``dc`` go from step t+1's to
    step t's; the step's gradients at the gates, at h_{t-1} @ Wh and at LN(c_t) stay for the all-step sums."""
    cdef Py_ssize_t H = b.H, G = 4 * b.H, n, j, row
    cdef const floating* ln = <const floating*>b.ln
    cdef const floating* g_h = ln + G
    cdef const floating* g_c = ln + 2 * G
    cdef const floating* b_c = ln + 2 * G + H
    cdef const floating* a_t = <const floating*>b.act + b.offsets[t] * G
    cdef const floating* h_hat = <const floating*>b.h_hat + b.offsets[t] * G
    cdef const floating* h_rstd = <const floating*>b.h_rstd + b.offsets[t]
    cdef const floating* c_hat = <const floating*>b.c_hat + b.offsets[t] * H
    cdef const floating* c_rstd = <const floating*>b.c_rstd + b.offsets[t]
    cdef const floating* c_prev = <const floating*>b.cst + b.offsets[t] * H
    cdef const floating* dhs = <const floating*>b.dhs
    cdef floating* dh = <floating*>b.dh
    cdef floating* dc = <floating*>b.dc
    cdef floating* d_t = dG + b.offsets[t] * G
    cdef floating* dr_t = <floating*>b.dR + b.offsets[t] * G
    cdef floating* dcn_t = <floating*>b.dCN + b.offsets[t] * H
    cdef const floating* a
    cdef const floating* ch
    cdef floating* d
    cdef floating* dcn
    cdef floating* tmp
    cdef floating one = 1, dh_, tc, dc_
    for n in range(n0, n1):
        a = a_t + n * G
        d = d_t + n * G
        ch = c_hat + n * H
        dcn = dcn_t + n * H
        tmp = dr_t + n * G  # scratch for the cell-state normalization's gradient, until dr is written there
        row = ((b.order[n] if b.order != NULL else n) * b.T + t) * H
        for j in range(H):
            dh_ = dh[n * H + j] + dhs[row + j]
            tc = tanh_(ch[j] * g_c[j] + b_c[j])
            d[3 * H + j] = dh_ * tc * a[3 * H + j] * (one - a[3 * H + j])      # o
            dcn[j] = dh_ * a[3 * H + j] * (one - tc * tc)
        normalize_backward(dcn, ch, c_rstd[n], g_c, tmp, H)
        for j in range(H):
            dc_ = dc[n * H + j] + tmp[j]
            d[j] = dc_ * a[2 * H + j] * a[j] * (one - a[j])                      # i
            d[H + j] = dc_ * c_prev[n * H + j] * a[H + j] * (one - a[H + j])     # f
            d[2 * H + j] = dc_ * a[j] * (one - a[2 * H + j] * a[2 * H + j])      # g
            dc[n * H + j] = dc_ * a[H + j]
        normalize_backward(d, h_hat + n * G, h_rstd[n], g_h, dr_t + n * G, G)
    # dL/dh_{t-1} = dr @ Wh^T
    column_block_transposed_product(n1 - n0, G, H, b.cols, dr_t + n0 * G, <const floating*>b.WhT, False,
                                    dh + n0 * H)


cdef inline void layer_norm_input_gradients(Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t G, const floating* dG,
                                            const floating* x_hat, const floating* x_rstd, const floating* ln,
                                            floating* dQ) noexcept nogil:
    """Rows r0..r1-1 (G pre-activations a row): the gradient at x @ Wx from the one at LN(x @ Wx) * g_x."""
    cdef Py_ssize_t r
    for r in range(r0, r1):
        normalize_backward(dG + r * G, x_hat + r * G, x_rstd[r], ln, dQ + r * G, G)


cdef inline void gru_layer_norm_forward_step(Py_ssize_t t, Py_ssize_t n0, Py_ssize_t n1, const LayerNormBuffers* b,
                                             floating* act) noexcept nogil:
    """The GRU's step t of the running rows n0..n1-1 of one row block; ``act`` enters holding a_x and leaves
    holding r, z, n."""
    cdef Py_ssize_t H = b.H, G = 3 * b.H, n, j
    cdef const floating* b_h = <const floating*>b.bias_h
    cdef floating* a_t = act + b.offsets[t] * G
    cdef floating* h_hat = <floating*>b.h_hat + _row(b, t) * G
    cdef floating* h_rstd = <floating*>b.h_rstd + _row(b, t)
    cdef const floating* h_prev = <const floating*>b.hst + _slot(b, t) * H
    cdef floating* h_next = <floating*>b.hst + _slot(b, t + 1) * H
    cdef floating* hs = <floating*>b.hs
    column_block_product(n1 - n0, G, H, b.cols, h_prev + n0 * H, <const floating*>b.Wh, False, h_hat + n0 * G)
    for n in range(n0, n1):
        layer_norm_gru_row(a_t + n * G, h_hat + n * G, h_prev + n * H, h_next + n * H, h_rstd + n,
                           <const floating*>b.ln, b_h, H)
        for j in range(H):
            hs[((b.order[n] if b.order != NULL else n) * b.T + t) * H + j] = h_next[n * H + j]


cdef inline void gru_layer_norm_backward_step(Py_ssize_t t, Py_ssize_t n0, Py_ssize_t n1, const LayerNormBuffers* b,
                                              floating* dG) noexcept nogil:
    """The GRU's step t gradients for the running rows n0..n1-1 of one row block: ``dh`` goes from step t+1's to
    step t's; the gradients at a_x (``dG``), at a_h (``dAH``) and at h_{t-1} @ Wh (``dR``) stay for the all-step
    sums."""
    cdef Py_ssize_t H = b.H, G = 3 * b.H, n, j, row
    cdef const floating* g_h = <const floating*>b.ln + G
    cdef const floating* b_h = <const floating*>b.bias_h
    cdef const floating* a_t = <const floating*>b.act + b.offsets[t] * G
    cdef const floating* h_hat = <const floating*>b.h_hat + b.offsets[t] * G
    cdef const floating* h_rstd = <const floating*>b.h_rstd + b.offsets[t]
    cdef const floating* h_prev = <const floating*>b.hst + b.offsets[t] * H
    cdef const floating* dhs = <const floating*>b.dhs
    cdef floating* dh = <floating*>b.dh
    cdef floating* d_t = dG + b.offsets[t] * G
    cdef floating* dah_t = <floating*>b.dAH + b.offsets[t] * G
    cdef floating* dr_t = <floating*>b.dR + b.offsets[t] * G
    cdef const floating* a
    cdef const floating* hh
    cdef floating* d
    cdef floating* dah
    cdef floating one = 1, dh_, r, z, nn, dan, dar
    for n in range(n0, n1):
        a = a_t + n * G
        hh = h_hat + n * G
        d = d_t + n * G
        dah = dah_t + n * G
        row = ((b.order[n] if b.order != NULL else n) * b.T + t) * H
        for j in range(H):
            dh_ = dh[n * H + j] + dhs[row + j]
            r, z, nn = a[j], a[H + j], a[2 * H + j]
            dan = dh_ * (one - z) * (one - nn * nn)
            dar = dan * (hh[2 * H + j] * g_h[2 * H + j] + b_h[2 * H + j]) * r * (one - r)
            d[j] = dar                                                    # r
            d[H + j] = dh_ * (h_prev[n * H + j] - nn) * z * (one - z)     # z
            d[2 * H + j] = dan                                            # n
            dah[j] = dar
            dah[H + j] = d[H + j]
            dah[2 * H + j] = dan * r
            dh[n * H + j] = dh_ * z
        normalize_backward(dah, hh, h_rstd[n], g_h, dr_t + n * G, G)
    # dL/dh_{t-1} = dh * z + dr @ Wh^T
    column_block_transposed_product(n1 - n0, G, H, b.cols, dr_t + n0 * G, <const floating*>b.WhT, True,
                                    dh + n0 * H)
