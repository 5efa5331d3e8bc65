"""The backward functions' ``out``: their weight gradients written into the caller's arrays, which are then
returned in their places (``rnnfast._core.validation.check_gradient_out`` says what ``out`` may hold)."""
from __future__ import annotations

from .._core.validation import check_gradient_out


def written_into(out, grads: tuple, n_biases: int, n_states: int, reads: tuple) -> tuple:
    """``grads``, a backward function's ``(dx, dWx, dWh, *dbiases, *dstates0, *variants)``, with its weight
    gradients (all but ``dx`` and the states') copied into ``out``'s arrays where given."""
    if out is None:
        return grads
    head = 3 + n_biases
    weights = [*range(1, head), *range(head + n_states, len(grads))]
    outs = check_gradient_out(out, [grads[i].shape for i in weights], grads[1].dtype, reads)
    grads = list(grads)
    for i, o in zip(weights, outs):
        if o is not None:
            o[...] = grads[i]
            grads[i] = o
    return tuple(grads)
