"""Training utilities: optimizers, clipping, truncated-BPTT batching, checkpoints, the LM trainer."""
from .batching import n_windows, tbptt_windows
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .clip import clip_grads_norm, clip_grads_value
from .optim import OPTIMIZERS, SGD, AdaGrad, Adam, Momentum, Optimizer, RMSprop

__all__ = [
    "SGD", "Momentum", "AdaGrad", "RMSprop", "Adam", "Optimizer", "OPTIMIZERS",
    "clip_grads_norm", "clip_grads_value", "tbptt_windows", "n_windows",
    "save_checkpoint", "load_checkpoint", "CheckpointError",
]
