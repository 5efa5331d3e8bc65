"""What one benchmark row measures, and how much arithmetic it is."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..cells import CELLS

PASSES = ("train", "forward")
DTYPES = ("float32", "float64")

# (N, T, D, H): the core grid of the speed targets, from streaming-sized to GEMM-sized.
CORE_SIZES = [(1, 100, 64, 64), (16, 35, 128, 128), (32, 35, 256, 256), (64, 35, 512, 512),
              (128, 35, 1024, 1024)]
QUICK_SIZES = CORE_SIZES[:3]
# Zoneout's rates (z_c, z_h) in the benchmarks: Krueger et al.'s for character-level language models
ZONEOUT = (0.5, 0.05)


@dataclass(frozen=True)
class Case:
    cell: str  # "lstm", "gru", "rnn"
    pass_: str  # "train" (forward + backward) or "forward"
    N: int
    T: int
    D: int
    H: int
    dtype: str  # "float32" or "float64"
    threads: int
    ragged: bool = False  # lengths uniform in [T/4, T] (a padded batch of variable-length sequences)
    peephole: bool = False  # LSTM variants: peepholes (3H,)
    proj: int = 0  # ... a projection to this many units (PyTorch's proj_size; 0: none)
    layer_norm: bool = False  # ... layer normalization, LSTM or GRU (rnnfast/reference/layer_norm.py)
    zoneout: bool = False  # ... zoneout at ZONEOUT's rates (training masks; their expectation in "forward")

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}; got {self.cell!r}")
        if self.pass_ not in PASSES:
            raise ValueError(f"pass must be one of {', '.join(PASSES)}; got {self.pass_!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; got {self.dtype!r}")
        for name in ("N", "T", "D", "H", "threads"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        if (self.peephole or self.proj) and self.cell != "lstm":
            raise ValueError(f"peephole and proj are LSTM variants; got cell {self.cell!r}")
        if self.layer_norm and self.cell not in ("lstm", "gru"):
            raise ValueError(f"layer_norm is an LSTM and GRU variant; got cell {self.cell!r}")
        if self.layer_norm and (self.peephole or self.proj):
            raise ValueError("layer_norm: not with peephole or proj (one LSTM variant at a time)")
        if self.zoneout and (self.cell != "lstm" or self.peephole or self.proj or self.layer_norm):
            raise ValueError(f"zoneout is one of the LSTM variants (not with peephole, proj or layer_norm); got cell "
                             f"{self.cell!r}{' with ' + self.variant if self.variant != 'zoneout' else ''}")
        if not 0 <= self.proj < self.H:
            raise ValueError(f"proj must be in [0, H) = [0, {self.H}); got {self.proj}")

    @property
    def variant(self) -> str:
        """The LSTM variant's name in reports: ``""``, ``"peephole"``, ``"P128"``, ``"peephole P128"``, ``"LN"``,
        ``"zoneout"``."""
        return " ".join(v for v in ("peephole" if self.peephole else "", f"P{self.proj}" if self.proj else "",
                                    "LN" if self.layer_norm else "", "zoneout" if self.zoneout else "") if v)

    @property
    def state_size(self) -> int:
        """The width of h and the outputs: P for a projection LSTM, else H."""
        return self.proj or self.H

    @property
    def label(self) -> str:
        return (f"{self.cell}{' ' + self.variant if self.variant else ''} {self.pass_} N={self.N} T={self.T} "
                f"D={self.D} H={self.H} {self.dtype} threads={self.threads}" + (" ragged" if self.ragged else ""))

    def as_dict(self) -> dict:
        d = asdict(self)
        d["pass"] = d.pop("pass_")
        return d


def flops(case: Case) -> float:
    """Multiply-add flops of the products (``CellSpec.flops``), over the valid steps of a ragged case."""
    steps = case.T if not case.ragged else make_lengths(case).mean()
    if case.proj:  # the recurrent product reads P units, and the projection adds (N, H) @ (H, P)
        forward = 2.0 * case.N * steps * ((case.D + case.proj) * 4 * case.H + case.H * case.proj)
        return forward * (3 if case.pass_ == "train" else 1)
    return CELLS[case.cell].flops(case.N, steps, case.D, case.H, train=case.pass_ == "train")


def make_lengths(case: Case, seed: int = 0):
    """The lengths of a ragged case (uniform in [T/4, T], int64), or None."""
    if not case.ragged:
        return None
    return np.random.default_rng(seed + 1).integers(max(1, case.T // 4), case.T + 1, size=case.N).astype(np.int64)


def make_inputs(case: Case, seed: int = 0):
    """The same arrays for every backend: ``x (N, T, D)``, ``Wx``, ``Wh``, the biases, ``dhs``."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(case.dtype)
    spec = CELLS[case.cell]
    G = spec.gates * case.H
    x = rng.standard_normal((case.N, case.T, case.D)).astype(dtype)
    Wx = (rng.standard_normal((case.D, G)) / np.sqrt(case.D)).astype(dtype)
    Wh = (rng.standard_normal((case.state_size, G)) / np.sqrt(case.state_size)).astype(dtype)
    biases = [(rng.standard_normal(G) * 0.1).astype(dtype) for _ in spec.bias_names]
    dhs = rng.standard_normal((case.N, case.T, case.state_size)).astype(dtype)
    return x, Wx, Wh, biases, dhs


def variant_weights(case: Case, seed: int = 0) -> dict:
    """The variant's own weights, the same for every backend: ``peephole (3H,)``, ``projection (H, P)``,
    ``layer_norm (10H,)`` (the keywords of ``rnnfast.lstm_forward``), the GRU's ``layer_norm (6H,)``."""
    rng = np.random.default_rng(seed + 2)
    dtype = np.dtype(case.dtype)
    out = {}
    if case.peephole:
        out["peephole"] = (rng.standard_normal(3 * case.H) * 0.1).astype(dtype)
    if case.proj:
        out["projection"] = (rng.standard_normal((case.H, case.proj)) / np.sqrt(case.H)).astype(dtype)
    if case.layer_norm and case.cell == "gru":
        out["layer_norm"] = (1 + rng.standard_normal(6 * case.H) * 0.1).astype(dtype)
    elif case.layer_norm:
        out["layer_norm"] = np.concatenate([1 + rng.standard_normal(9 * case.H) * 0.1,
                                            rng.standard_normal(case.H) * 0.1]).astype(dtype)
    return out


def parse_size(text: str):
    """``"N,T,D,H"`` (or ``"N,T,H"`` with D = H) -> (N, T, D, H)."""
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        raise ValueError(f"size {text!r}: expected N,T,D,H or N,T,H of positive integers") from None
    if len(parts) == 3:
        parts = [parts[0], parts[1], parts[2], parts[2]]
    if len(parts) != 4 or min(parts) < 1:
        raise ValueError(f"size {text!r}: expected N,T,D,H or N,T,H of positive integers")
    return tuple(parts)
