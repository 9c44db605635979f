"""Decoding a linear-chain CRF over BILOU tags, one message at a time, in numpy (no torch).

``CRFDecoder`` gives the best tags and each tag's marginal probability (the entity's confidence).
Its scores are the learned ones plus fixed penalties: transitions that BILOU forbids (``O`` ->
``I-x``) score ``FORBIDDEN``, so they are never decoded. ``crf.CRF`` learns the scores (torch,
training); the penalties are derived from the tag names, not saved.
"""

from __future__ import annotations

import numpy as np

FORBIDDEN = -1e4


def penalty(mask: np.ndarray) -> np.ndarray:
    """0 where ``mask`` allows, ``FORBIDDEN`` where it does not (float32, as the CRF adds it)."""
    return np.where(mask, 0.0, FORBIDDEN).astype(np.float32)


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

    @classmethod
    def from_learned(
        cls,
        learned: tuple[np.ndarray, np.ndarray, np.ndarray],
        allowed: tuple[np.ndarray, np.ndarray, np.ndarray],
    ) -> CRFDecoder:
        """The decoder of learned (transitions (K, K), start (K,), end (K,)) scores and the
        allowed (transitions, first tags, last tags) masks: summed in float32 as the CRF sums
        them in training, then decoded in float64."""
        k = len(learned[1])
        for name, score, mask in zip(
            ("transitions", "start", "end"), learned, allowed, strict=True
        ):
            if score.shape != mask.shape or mask.shape[0] != k:
                raise ValueError(f"CRF {name}: scores {score.shape}, allowed mask {mask.shape}")
        trans, start, end = (
            (np.asarray(score, np.float32) + penalty(mask)).astype(np.float64)
            for score, mask in zip(learned, allowed, strict=True)
        )
        return cls(trans, start, end)

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


class MeanMarginalsDecoder:
    """An ensemble's tags from its members' own CRFs: each member's tag marginals (forward-
    backward on its emissions and scores), their mean, and the path of the highest summed log
    mean marginal that the tag scheme allows (posterior decoding). ``decode`` takes the members'
    emissions stacked, (members, T, K)."""

    def __init__(self, members: list[CRFDecoder]) -> None:
        if len(members) < 2:
            raise ValueError("mean marginals need at least two members' CRFs")
        self.members = members
        first = members[0]
        # What the tag scheme forbids is where every member's learned score carries the penalty.
        self.constraints = CRFDecoder(
            *(
                np.where(np.asarray(score) > FORBIDDEN / 2, 0.0, FORBIDDEN)
                for score in (first.trans, first.start, first.end)
            )
        )

    def decode(self, emissions: np.ndarray) -> tuple[list[int], np.ndarray]:
        """(best path, the members' mean marginals (T, K)) for emissions (members, T, K)."""
        if emissions.shape[0] != len(self.members):
            raise ValueError(f"{len(self.members)} members, emissions {emissions.shape}")
        mean = sum(d.marginals(e)[0] for d, e in zip(self.members, emissions, strict=True))
        mean = np.asarray(mean) / len(self.members)
        return self.constraints.viterbi(np.log(np.maximum(mean, 1e-300))), mean
