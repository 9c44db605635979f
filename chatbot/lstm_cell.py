"""The LSTM cell of the numpy runtimes (the dialogue tracker's and the NLU's BiLSTM).

Weights come from torch with the gates in the order (i, f, g, o); here they are reordered to
(i, f, o, g) and the sigmoid gates' rows halved (exact in floating point), so that one tanh over
all four gates gives sigmoid(z) = tanh(z / 2) / 2 + 1/2 for i, f and o. A step then updates
buffers it reuses: eight element-wise calls, no allocation.
"""

from __future__ import annotations

import numpy as np


def fused_gates(weight: np.ndarray) -> np.ndarray:
    """A torch LSTM weight (4H, in) or bias (4H,) in the order and scale ``CellBuffers`` uses."""
    h = weight.shape[0] // 4
    order = np.r_[0 : 2 * h, 3 * h : 4 * h, 2 * h : 3 * h]
    scale = np.r_[np.full(3 * h, 0.5), np.ones(h)].astype(np.float32)
    return weight[order] * (scale[:, None] if weight.ndim == 2 else scale)


class CellBuffers:
    """The gates of one step, of any leading shape (``(2, 1)`` for both directions of a BiLSTM).
    Write the pre-activations into ``gates``, then call ``step``."""

    def __init__(self, leading: tuple[int, ...], hidden: int) -> None:
        self.gates = np.empty((*leading, 4 * hidden), np.float32)
        self._scratch = np.empty((*leading, hidden), np.float32)
        self._sigmoids = self.gates[..., : 3 * hidden]
        self._i, self._f, self._o, self._g = (
            self.gates[..., k * hidden : (k + 1) * hidden] for k in range(4)
        )

    def step(self, cell: np.ndarray, out: np.ndarray) -> None:
        """Updates ``cell`` in place and writes the new hidden state into ``out``."""
        np.tanh(self.gates, out=self.gates)
        self._sigmoids *= 0.5
        self._sigmoids += 0.5
        cell *= self._f
        np.multiply(self._i, self._g, out=self._scratch)
        cell += self._scratch
        np.tanh(cell, out=self._scratch)
        np.multiply(self._o, self._scratch, out=out)
