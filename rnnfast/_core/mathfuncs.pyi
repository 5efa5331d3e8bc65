import numpy as np

PACKED_GEMM: int

def use_wide_microkernel(on: bool) -> bool: ...
def use_sliver_rows(rows: int, force: bool = False) -> int: ...

def apply(name: str, x: np.ndarray) -> None: ...
def product(
    a: np.ndarray,
    b: np.ndarray,
    trans_a: bool = ...,
    trans_b: bool = ...,
    bias: np.ndarray | None = ...,
    num_threads: int = ...,
    path: str = ...,
    out: np.ndarray | None = ...,
) -> np.ndarray: ...
def rows_taken_over(late_thread: int = -1, seconds: float = 0) -> int: ...
