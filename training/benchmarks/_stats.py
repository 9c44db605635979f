"""Summary statistics of the benchmarks' measured times."""

from __future__ import annotations


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (the value at rank ``int(q * n)``), 0.0 when empty."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0
