import numpy as np

CONSTANTS: dict[str, int]

def dropout_keep(key: int, threshold: int, scale: float, out: np.ndarray, num_threads: int) -> None: ...
def dropout_apply(key: int, threshold: int, scale: float, x: np.ndarray, mask: np.ndarray, out: np.ndarray,
                  num_threads: int) -> None: ...
def times(a: np.ndarray, b: np.ndarray, out: np.ndarray, num_threads: int) -> None: ...
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
def softmax_cross_entropy(
    scores: np.ndarray, targets: np.ndarray, ignore: int, probs: np.ndarray, num_threads: int
) -> float: ...
def softmax_cross_entropy_backward(
    probs: np.ndarray, targets: np.ndarray, ignore: int, scale: float, out: np.ndarray, num_threads: int
) -> None: ...
def scatter_add_rows(out: np.ndarray, ids: np.ndarray, rows: np.ndarray, num_threads: int) -> None: ...
