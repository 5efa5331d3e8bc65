# The one cell driver (src/kernels.pyx).  Internal: rnnfast._core.driver validates and allocates the
# buffers; rnnfast.stepper owns a stepper's.
from typing import Any

import numpy as np

CELLS: dict[str, int]
SCHEDULES: dict[str, int]
CONSTANTS: dict[str, int]

def forward(buf: Any, plan: Any) -> None: ...
def backward(buf: Any, plan: Any) -> None: ...
def stream_step(buf: Any, xh: np.ndarray, xh_next: np.ndarray) -> None: ...
