"""A linear-chain CRF over BILOU tags, for training.

``CRF`` holds the learned transition scores and gives the training loss (negative log-likelihood,
batched in torch). ``CRFDecoder`` (``crf_decoder``, numpy, no torch) decodes one message at a time:
the best tags, and each tag's marginal probability (the entity's confidence).

Transitions that BILOU forbids (``O`` -> ``I-x``) score ``FORBIDDEN`` (-1e4) in both, so they are
never learned and never decoded.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from chatbot.nlu.crf_decoder import FORBIDDEN, CRFDecoder, penalty

__all__ = ["CRF", "FORBIDDEN", "TINY", "CRFDecoder"]

# States this much less likely than the best one are floored here rather than underflowing to
# log(0): they carry nothing to the sum, and the gradient stays finite.
TINY = 1e-30


class CRF(nn.Module):
    trans_penalty: torch.Tensor
    start_penalty: torch.Tensor
    end_penalty: torch.Tensor

    def __init__(self, allowed: np.ndarray, first: np.ndarray, last: np.ndarray) -> None:
        super().__init__()
        k = len(first)
        assert allowed.shape == (k, k), f"transition mask {allowed.shape} for {k} tags"
        self.transitions = nn.Parameter(torch.zeros(k, k))  # [from, to]
        self.start = nn.Parameter(torch.zeros(k))
        self.end = nn.Parameter(torch.zeros(k))
        # Derived from the tag names, so not saved: persistent=False.
        self.register_buffer("trans_penalty", torch.from_numpy(penalty(allowed)), persistent=False)
        self.register_buffer("start_penalty", torch.from_numpy(penalty(first)), persistent=False)
        self.register_buffer("end_penalty", torch.from_numpy(penalty(last)), persistent=False)

    def scores(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (
            self.transitions + self.trans_penalty,
            self.start + self.start_penalty,
            self.end + self.end_penalty,
        )

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood per sequence. emissions (B, T, K), tags (B, T), mask (B, T)."""
        trans, start, end = self.scores()
        b, t, k = emissions.shape
        assert tags.shape == (b, t), f"tags {tuple(tags.shape)} for emissions {(b, t, k)}"
        maskf = mask.float()
        lengths = mask.sum(1)
        # Score of the gold path.
        emit = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # (B, T)
        step = trans[tags[:, :-1], tags[:, 1:]]  # (B, T-1)
        last_tag = tags.gather(1, (lengths - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
        gold = (
            start[tags[:, 0]] + (emit * maskf).sum(1) + (step * maskf[:, 1:]).sum(1) + end[last_tag]
        )
        # Log partition function by the forward algorithm, each step one matrix product:
        # logsumexp_j(alpha_j + trans_jk) = log(exp(alpha - top) @ exp(trans))_k + top.
        exp_trans = trans.exp()  # forbidden transitions are exactly 0
        alpha = start + emissions[:, 0]  # (B, K)
        for i in range(1, t):
            top = alpha.max(dim=1, keepdim=True).values
            summed = (alpha - top).exp() @ exp_trans  # (B, K)
            nxt = summed.clamp_min(TINY).log() + top + emissions[:, i]
            alpha = torch.where(mask[:, i : i + 1], nxt, alpha)
        log_z = torch.logsumexp(alpha + end, dim=1)
        return log_z - gold

    def decoder(self) -> CRFDecoder:
        with torch.no_grad():
            trans, start, end = (x.detach().double().numpy() for x in self.scores())
        return CRFDecoder(trans, start, end)
