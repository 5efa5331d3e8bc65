# Internal kernels: arguments are validated and allocated by rnnfast.lstm.
import numpy as np

PACKED_STEPS: int
STEP_STRIP_BYTES: int

def forward(x_tm: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray, hst: np.ndarray, cst: np.ndarray,
            gates: np.ndarray, hs: np.ndarray, lengths: np.ndarray, panels: np.ndarray, chunked: np.ndarray,
            block_n: int, chunk_h: int, num_threads: int, parallel_steps: bool) -> None: ...
def backward(x_tm: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, WhT: np.ndarray, hst: np.ndarray, cst: np.ndarray,
             act: np.ndarray, lengths: np.ndarray, dhs: np.ndarray, dh: np.ndarray, dc: np.ndarray,
             dG: np.ndarray, dx_tm: np.ndarray, dWx: np.ndarray, dWh: np.ndarray, db: np.ndarray,
             panels: np.ndarray, block_n: int,
             chunk_h: int, num_threads: int, parallel_steps: bool) -> None: ...
def packed_step(xh: np.ndarray, panels: np.ndarray, b_packed: np.ndarray, c: np.ndarray, xh_next: np.ndarray,
                gates: np.ndarray, chunk: int, num_threads: int) -> None: ...
