"""How a model file names an ensemble's members' tensors, read back."""

from __future__ import annotations

import re

import numpy as np
import pytest

from chatbot.ensemble import join_members, split_members
from chatbot.errors import ModelFileError


def test_split_is_the_inverse_of_join() -> None:
    members = [{"a.weight": np.full(2, i), "b": np.arange(3) + i} for i in range(3)]
    joined = join_members(members)
    assert sorted(joined) == sorted(
        f"ensemble.{i}.{k}" for i in range(3) for k in ("a.weight", "b")
    )
    back = split_members(joined, 3, "NLU")
    for i, (got, want) in enumerate(zip(back, members, strict=True)):
        assert got.keys() == want.keys()
        for key in want:
            assert got[key] is joined[f"ensemble.{i}.{key}"]
            np.testing.assert_array_equal(got[key], want[key])


@pytest.mark.parametrize(
    "stray",
    [
        "weight",
        "ensemble.3.weight",
        "ensemble.x.weight",
        "ensemble.0.",
        "ensemble.-1.weight",
        "ensemble.\u00b2.weight",  # "²".isdigit(), but int("²") is a ValueError
        "ensemble." + "9" * 5000 + ".weight",  # int() refuses more than 4,300 digits
    ],
)
def test_a_tensor_outside_every_member_is_named(stray: str) -> None:
    tensors = join_members([{"weight": np.zeros(1)}] * 3) | {stray: np.zeros(1)}
    with pytest.raises(
        ModelFileError,
        match=re.escape(
            f"LSTM tracker ensemble of 3 members: tensors outside every member: {stray}"
        ),
    ):
        split_members(tensors, 3, "LSTM tracker")


def test_many_strays_are_counted_not_all_listed() -> None:
    tensors = {f"stray{i}": np.zeros(1) for i in range(8)}
    with pytest.raises(ModelFileError, match=r"stray0, stray1, stray2, stray3, stray4 and 3 more$"):
        split_members(tensors, 2, "NLU")
