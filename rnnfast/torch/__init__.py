"""rnnfast inside PyTorch: ``LSTM``, ``GRU`` and ``RNN`` modules with ``torch.nn``'s constructor, parameters,
gate orders, calls and return values (``PackedSequence`` included), on rnnfast's kernels through custom
operators (``rnnfast::recurrent_forward``/``recurrent_backward``): autograd, ``torch.compile(fullgraph=True)``
and ``DistributedDataParallel`` work on them.  Needs PyTorch (``pip install rnnfast[torch]``).

    from rnnfast.torch import LSTM
    lstm = LSTM(64, 256, num_layers=2, batch_first=True)
    lstm.load_state_dict(torch_lstm.state_dict())   # same names, shapes and gate orders
    output, (h_n, c_n) = lstm(x)
"""
try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("rnnfast.torch needs PyTorch: pip install torch (or rnnfast[torch])") from exc

from .modules import GRU, LSTM, RNN

__all__ = ["LSTM", "GRU", "RNN"]
