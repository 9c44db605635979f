"""A linear-chain CRF over BILOU tags.

``CRF`` holds the learned transition scores and gives the training loss (negative log-likelihood,
batched in torch). ``CRFDecoder`` decodes one message at a time in numpy, whose per-call overhead is
a fraction of torch's on arrays this small: the best tags, and each tag's marginal probability (the
entity's confidence).

Transitions that BILOU forbids (``O`` -> ``I-x``) score ``-1e4`` in both, so they are never learned
and never decoded.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

FORBIDDEN = -1e4
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
        penalty = lambda mask: torch.from_numpy(np.where(mask, 0.0, FORBIDDEN)).float()  # noqa: E731
        # Derived from the tag names, so not saved: persistent=False.
        self.register_buffer("trans_penalty", penalty(allowed), persistent=False)
        self.register_buffer("start_penalty", penalty(first), persistent=False)
        self.register_buffer("end_penalty", penalty(last), persistent=False)

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


class CRFDecoder:
    """The best tag sequence and each tag's marginal probability for one sequence, in numpy.

    ``decode`` runs forward-backward (two matrix-vector products a token) for the marginals, then
    checks the path of the most probable tag at each position: if that path has probability above
    1/2, no other path can beat it, so it is the Viterbi path. Only uncertain messages pay for
    Viterbi proper (K x K scores a token).
    """

    def __init__(self, trans: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
        self.trans, self.start, self.end = trans, start, end
        self.exp_trans = np.exp(trans)
        self.exp_start = np.exp(start - start.max())
        self.exp_end = np.exp(end - end.max())

    def decode(self, emissions: np.ndarray) -> tuple[list[int], np.ndarray]:
        """(best path, marginals (T, K)) for emissions (T, K)."""
        marginals, log_z = self.marginals(emissions)
        path = marginals.argmax(axis=1)
        if self.score(emissions, path) - log_z > np.log(0.5):
            return [int(k) for k in path], marginals
        return self.viterbi(emissions), marginals

    def score(self, emissions: np.ndarray, path: np.ndarray) -> float:
        """The unnormalised log score of one tag path."""
        steps = self.trans[path[:-1], path[1:]].sum()
        emitted = emissions[np.arange(len(path)), path].sum()
        return float(self.start[path[0]] + emitted + steps + self.end[path[-1]])

    def viterbi(self, emissions: np.ndarray) -> list[int]:
        """The best tag sequence for emissions (T, K)."""
        t = emissions.shape[0]
        score = self.start + emissions[0]
        back = np.empty((t, emissions.shape[1]), np.int64)
        for i in range(1, t):
            total = score[:, None] + self.trans  # (K from, K to)
            back[i] = total.argmax(axis=0)
            score = total.max(axis=0) + emissions[i]
        best = [int((score + self.end).argmax())]
        for i in range(t - 1, 0, -1):
            best.append(int(back[i, best[-1]]))
        return best[::-1]

    def marginals(self, emissions: np.ndarray) -> tuple[np.ndarray, float]:
        """P(tag k at position i) (T, K) and log Z, by forward-backward with scaling."""
        t = emissions.shape[0]
        top = emissions.max(axis=1, keepdims=True)
        local = np.exp(emissions - top)  # (T, K), each row scaled by its own maximum
        alpha = np.empty_like(local)
        beta = np.empty_like(local)
        log_z = float(top.sum() + self.start.max() + self.end.max())
        alpha[0] = self.exp_start * local[0]
        for i in range(t):
            if i:
                alpha[i] = (alpha[i - 1] @ self.exp_trans) * local[i]
            norm = alpha[i].sum()
            alpha[i] /= norm
            log_z += np.log(norm)
        log_z += float(np.log(alpha[-1] @ self.exp_end))
        beta[-1] = self.exp_end / self.exp_end.sum()
        for i in range(t - 2, -1, -1):
            beta[i] = self.exp_trans @ (local[i + 1] * beta[i + 1])
            beta[i] /= beta[i].sum()
        joint = alpha * beta
        return joint / joint.sum(axis=1, keepdims=True), log_z
