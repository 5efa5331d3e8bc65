import numpy as np

CONSTANTS: dict[str, int]

def dropout_keep(key: int, threshold: int, scale: float, out: np.ndarray, num_threads: int) -> None: ...
def adam_update(
    p: np.ndarray,
    g: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    beta1: float,
    beta2: float,
    step: float,
    eps: float,
    num_threads: int,
) -> None: ...
def sum_of_squares(g: np.ndarray, num_threads: int) -> float: ...
