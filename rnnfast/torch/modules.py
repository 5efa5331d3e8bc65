"""``torch.nn.LSTM``, ``GRU`` and ``RNN`` on rnnfast's kernels: the same constructor, parameter names, shapes
and gate orders (so ``load_state_dict`` works both ways with no conversion), the same call and return values,
``PackedSequence`` included; every layer and direction runs ``rnnfast::recurrent_forward`` (``ops``)."""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from .._core.validation import check_zoneout
from ..cells import CellSpec, GRU as GRU_SPEC, LSTM as LSTM_SPEC, RNN as RNN_SPEC
from . import ops


def _reverse_padded(x: Tensor, lengths: Optional[Tensor]) -> Tensor:
    """Each sequence of batch-first ``x (N, T, F)`` reversed within its own length (padding stays put); its
    own inverse, and differentiable (a gather)."""
    if lengths is None:
        return x.flip(1)
    T = x.shape[1]
    t = torch.arange(T, device=x.device)[None, :]
    L = lengths.to(x.device)[:, None]
    idx = torch.where(t < L, L - 1 - t, t)
    return x.gather(1, idx[:, :, None].expand(-1, -1, x.shape[2]))


class _RecurrentBase(nn.Module):
    """What ``LSTM``, ``GRU`` and ``RNN`` share (PyTorch's ``nn.RNNBase``)."""

    spec: CellSpec

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None, *, proj_size: int = 0, layer_norm: bool = False, peephole: bool = False,
                 zoneout=None, num_threads: Optional[int] = None):
        super().__init__()
        for name, v in [("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)]:
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int; got {v!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
            raise ValueError(f"dropout must be a number in [0, 1]; got {dropout!r}")
        if isinstance(proj_size, bool) or not isinstance(proj_size, int) or proj_size < 0:
            raise ValueError(f"proj_size must be a non-negative int; got {proj_size!r}")
        if proj_size and self.spec.name != "lstm":
            raise ValueError(f"proj_size={proj_size}: only the LSTM has a projection")
        if proj_size and proj_size >= hidden_size:  # PyTorch's rule
            raise ValueError(f"proj_size has to be smaller than hidden_size; got {proj_size} and {hidden_size}")
        for name, flag in [("layer_norm", layer_norm), ("peephole", peephole)]:
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be True or False; got {flag!r}")
        if layer_norm and (self.spec.name == "rnn" or proj_size or peephole):
            raise ValueError("layer_norm: the LSTM (without proj_size or peephole) and the reset-after GRU have one")
        if peephole and self.spec.name != "lstm":
            raise ValueError("peephole: only the LSTM has one")
        zoneout = check_zoneout(zoneout, None)[0]
        if zoneout is not None and self.spec.name != "lstm":
            raise ValueError("zoneout: only the LSTM has it")
        if zoneout is not None and (proj_size or layer_norm or peephole):
            raise ValueError("zoneout: not with proj_size, layer_norm or peephole (one LSTM variant at a time)")
        if num_threads is not None and (isinstance(num_threads, bool) or not isinstance(num_threads, int)
                                        or num_threads < 1):
            raise ValueError(f"num_threads must be a positive int or None; got {num_threads!r}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size, self.num_threads = bidirectional, proj_size, num_threads
        self.layer_norm, self.peephole, self.zoneout = layer_norm, peephole, zoneout
        kw = {"device": device, "dtype": dtype}
        G = self.spec.gates * hidden_size
        P = proj_size or hidden_size  # the width of h
        self._flat_weights_names = []
        for k in range(num_layers):
            for sfx in self._suffixes():
                layer_in = input_size if k == 0 else P * self._directions()
                names = [f"weight_ih_l{k}{sfx}", f"weight_hh_l{k}{sfx}"]
                shapes = [(G, layer_in), (G, P)]
                if bias:
                    names += [f"bias_ih_l{k}{sfx}", f"bias_hh_l{k}{sfx}"]
                    shapes += [(G,), (G,)]
                if proj_size:
                    names.append(f"weight_hr_l{k}{sfx}")
                    shapes.append((proj_size, hidden_size))
                if layer_norm:  # rnnfast.lstm_forward's (10H,), gru_forward's (6H,)
                    names.append(f"layer_norm_l{k}{sfx}")
                    shapes.append(((10 if self.spec.name == "lstm" else 6) * hidden_size,))
                if peephole:  # rnnfast.lstm_forward's [p_i | p_f | p_o]
                    names.append(f"weight_peephole_l{k}{sfx}")
                    shapes.append((3 * hidden_size,))
                for name, shape in zip(names, shapes):
                    self.register_parameter(name, nn.Parameter(torch.empty(shape, **kw)))
                self._flat_weights_names += names
        self.reset_parameters()

    def _directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _suffixes(self):
        return ["", "_reverse"][:self._directions()]

    def reset_parameters(self) -> None:
        """PyTorch's initialization: every parameter from U(-1/sqrt(H), 1/sqrt(H)); the layer normalizations'
        gains one and (the LSTM's cell-state) bias zero."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for name, p in self.named_parameters():
            if name.startswith("layer_norm_"):
                with torch.no_grad():
                    p.fill_(1.0)
                    if self.spec.name == "lstm":
                        p[9 * self.hidden_size:].zero_()
            else:
                nn.init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        for name, default in [("bias", True), ("batch_first", False), ("dropout", 0.0), ("bidirectional", False),
                              ("proj_size", 0), ("layer_norm", False), ("peephole", False), ("zoneout", None)]:
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        return s + self._option_repr()

    def _option_repr(self) -> str:
        return ""

    def _option_code(self) -> int:
        return 0

    def _threads(self) -> int:
        """The ops' num_threads: 0 means torch.get_num_threads(), read inside the op (a traced graph keeps
        following torch's setting)."""
        return self.num_threads or 0

    def forward(self, input, hx=None, *, lengths: Optional[Tensor] = None):
        """As ``torch.nn.LSTM``/``GRU``/``RNN``: ``input (T, N, D)`` (``(N, T, D)`` with ``batch_first``,
        ``(T, D)`` unbatched) or a ``PackedSequence``; ``hx`` the initial state(s), ``(L*dirs, N, H)``.
        Returns ``(output, h_n)`` (``(output, (h_n, c_n))`` for the LSTM).

        ``lengths`` (an rnnfast extra; int tensor ``(N,)``): the valid steps of each sequence of a padded
        ``input``, as a ``PackedSequence`` would carry them, without packing (which ``torch.compile`` cannot
        trace): outputs are zero past each length and ``h_n`` is each sequence's own last state."""
        packed = isinstance(input, PackedSequence)
        if packed and lengths is not None:
            raise ValueError("lengths: a PackedSequence carries its own lengths")
        if packed:
            x, lengths = pad_packed_sequence(input, batch_first=True)  # the user's row order
            unbatched = False
        else:
            if not isinstance(input, Tensor):
                raise TypeError(f"input must be a Tensor or PackedSequence; got {type(input).__name__}")
            unbatched = input.dim() == 2
            if input.dim() not in (2, 3):
                raise ValueError(f"input must be 2-D (unbatched) or 3-D; got shape {tuple(input.shape)}")
            x = input.unsqueeze(1 if not self.batch_first else 0) if unbatched else input
            if not self.batch_first:
                x = x.transpose(0, 1)
            if lengths is not None:
                if not isinstance(lengths, Tensor) or lengths.dim() != 1 or lengths.shape[0] != x.shape[0]:
                    raise ValueError(f"lengths must be an int tensor of shape (N,) = ({x.shape[0]},)")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"input has {x.shape[-1]} features; expected input_size = {self.input_size}")
        N = x.shape[0]
        states = self._initial_states(hx, N, x, unbatched)
        out, finals = self._run_layers(x, states, lengths)
        if packed:
            sorted_out = out.index_select(0, input.sorted_indices) if input.sorted_indices is not None else out
            sorted_len = lengths.index_select(0, input.sorted_indices.cpu()) if input.sorted_indices is not None \
                else lengths
            data = pack_padded_sequence(sorted_out, sorted_len, batch_first=True, enforce_sorted=True).data
            output = PackedSequence(data, input.batch_sizes, input.sorted_indices, input.unsorted_indices)
        else:
            output = out if self.batch_first else out.transpose(0, 1)
            if unbatched:
                output = output.squeeze(0 if self.batch_first else 1)
        finals = [f.squeeze(1) if unbatched else f for f in finals]
        return output, self._pack_state(finals)

    def _pack_state(self, finals):
        return finals[0]

    def _state_tensors(self, hx):
        return [hx]

    def _initial_states(self, hx, N, x, unbatched):
        """The initial state(s), each ``(L*dirs, N, H)`` (``h``: ``(L*dirs, N, proj_size)`` with a projection);
        None where none is given (the kernels start from zeros without a tensor of them)."""
        if hx is None:
            return None
        given = self._state_tensors(hx)
        out = []
        for name, h in zip(self.spec.state_names, given):
            projected = name == "h" and self.proj_size > 0
            shape = (self.num_layers * self._directions(), N, self.proj_size if projected else self.hidden_size)
            if not isinstance(h, Tensor):
                raise TypeError(f"the initial {name} must be a Tensor; got {type(h).__name__}")
            h = h.unsqueeze(1) if unbatched else h
            if tuple(h.shape) != shape:
                raise ValueError(f"the initial {name} has shape {tuple(h.shape)}; expected {shape} = "
                                 f"(num_layers * num_directions, N, {'proj_size' if projected else 'hidden_size'})")
            if h.dtype != x.dtype:
                raise TypeError(f"the initial {name} has dtype {h.dtype}; expected {x.dtype} (the input's)")
            out.append(h)
        return out

    def _zoneout_seed(self) -> Optional[Tensor]:
        """Zoneout's masks for one layer and direction: in training, a seed drawn from PyTorch's default
        generator (so ``torch.manual_seed`` repeats them), as an int64 tensor ``(1,)``; in evaluation none
        (each unit keeps the share ``z`` of its previous value, the masks' expectation)."""
        if self.zoneout is None or not self.training:
            return None
        return torch.randint(0, 2 ** 62, (1,), dtype=torch.int64)

    def _run_layers(self, x: Tensor, states, lengths: Optional[Tensor]):
        dirs, nt = self._directions(), self._threads()
        n_states = len(self.spec.state_names)
        need_grad = torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in self.parameters())
                                                  or any(s.requires_grad for s in states or ()))
        lengths_arg = lengths.to(torch.int64) if lengths is not None else x.new_empty((0,), dtype=torch.int64)
        empty = x.new_empty((0,))
        finals = [[] for _ in range(n_states)]
        for k in range(self.num_layers):
            outs = []
            for d, sfx in enumerate(self._suffixes()):
                w = [getattr(self, f"{n}_l{k}{sfx}") for n in ("weight_ih", "weight_hh")]
                b = [getattr(self, f"{n}_l{k}{sfx}") for n in ("bias_ih", "bias_hh")] if self.bias else [empty, empty]
                s = [st[k * dirs + d] for st in states] if states is not None else [empty] * n_states
                c0 = s[1] if len(s) > 1 else empty
                inp = x if d == 0 else _reverse_padded(x, lengths)
                res = ops.run_forward(self.spec.name, inp.contiguous(), w[0], w[1], b[0], b[1],
                                      s[0].contiguous(), c0.contiguous(), lengths_arg, self._option_code(),
                                      need_grad, nt, w_hr=getattr(self, f"weight_hr_l{k}{sfx}", None),
                                      ln=getattr(self, f"layer_norm_l{k}{sfx}", None),
                                      peep=getattr(self, f"weight_peephole_l{k}{sfx}", None),
                                      zoneout=None if self.zoneout is None else list(self.zoneout),
                                      zoneout_seed=self._zoneout_seed())
                hs = res[0] if d == 0 else _reverse_padded(res[0], lengths)
                outs.append(hs)
                finals[0].append(res[1])
                if len(s) > 1:
                    finals[1].append(res[2])
            x = outs[0] if dirs == 1 else torch.cat(outs, dim=2)
            if self.dropout and self.training and k < self.num_layers - 1:
                x = nn.functional.dropout(x, self.dropout, training=True)
        return x, [f[0].unsqueeze(0) if len(f) == 1 else torch.stack(f, 0) for f in finals]


class LSTM(_RecurrentBase):
    """``torch.nn.LSTM`` on rnnfast's kernels (gates i, f, g, o).  ``num_threads`` (keyword): the kernels'
    OpenMP threads, default ``torch.get_num_threads()``.  ``proj_size > 0``: the projection LSTM, with
    PyTorch's ``weight_hr_l{k}`` of shape ``(proj_size, hidden_size)``; ``h_n`` and the output are then
    ``proj_size`` wide, ``c_n`` stays ``hidden_size`` wide.  ``layer_norm=True`` (keyword; PyTorch has none):
    the layer-normalized LSTM of ``rnnfast.lstm_forward(..., layer_norm=...)``, its parameters
    ``layer_norm_l{k}`` of shape ``(10 * hidden_size,)`` = ``[g_x | g_h | g_c | b_c]``.  ``peephole=True``
    (keyword; PyTorch has none, pytorch#630): the peephole LSTM, its diagonal weights ``weight_peephole_l{k}`` of
    shape ``(3 * hidden_size,)`` = ``[p_i | p_f | p_o]``; it combines with ``proj_size``.  ``zoneout=(z_c, z_h)``
    (keyword; PyTorch has none, pytorch#561): zoneout on the cell state and h (``rnnfast.lstm_forward(...,
    zoneout=...)``): in training each unit keeps its previous value with probability ``z``, from masks drawn
    afresh at every call (a seed per layer and direction from PyTorch's default generator, so
    ``torch.manual_seed`` repeats them); in evaluation (``module.eval()``) it keeps the share ``z``."""

    spec = LSTM_SPEC

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device=None, dtype=None, *, layer_norm: bool = False, peephole: bool = False, zoneout=None,
                 num_threads: Optional[int] = None):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device,
                         dtype, proj_size=proj_size, layer_norm=layer_norm, peephole=peephole, zoneout=zoneout,
                         num_threads=num_threads)

    def _pack_state(self, finals):
        return finals[0], finals[1]

    def _state_tensors(self, hx):
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError("hx must be a tuple (h_0, c_0) for an LSTM")
        return list(hx)


class GRU(_RecurrentBase):
    """``torch.nn.GRU`` on rnnfast's kernels (gates r, z, n).  ``reset_after=False`` (keyword) is the GRU of
    Cho et al. and of the textbooks, which PyTorch has not; its weights load the same way.  ``layer_norm=True``
    (keyword, reset-after only): the layer-normalized GRU of ``rnnfast.gru_forward(..., layer_norm=...)``, its
    gains ``layer_norm_l{k}`` of shape ``(6 * hidden_size,)`` = ``[g_x | g_h]``."""

    spec = GRU_SPEC

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None, *, reset_after: bool = True, layer_norm: bool = False,
                 num_threads: Optional[int] = None):
        self.reset_after = GRU_SPEC.check_option(reset_after)
        if layer_norm is True and not self.reset_after:
            raise ValueError("layer_norm: the layer-normalized GRU is the reset-after one; got reset_after=False")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device,
                         dtype, layer_norm=layer_norm, num_threads=num_threads)

    def _option_code(self) -> int:
        return int(self.reset_after)

    def _option_repr(self) -> str:
        return "" if self.reset_after else ", reset_after=False"


class RNN(_RecurrentBase):
    """``torch.nn.RNN`` on rnnfast's kernels: ``nonlinearity`` ``"tanh"`` or ``"relu"``."""

    spec = RNN_SPEC

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, *, num_threads: Optional[int] = None):
        self.nonlinearity = RNN_SPEC.check_option(nonlinearity)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device,
                         dtype, num_threads=num_threads)

    def _option_code(self) -> int:
        return int(self.nonlinearity == "relu")

    def _option_repr(self) -> str:
        return "" if self.nonlinearity == "tanh" else ", nonlinearity='relu'"
