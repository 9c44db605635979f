"""Slot classes of a Rasa 3 project, written as Rasa's docs write them (the tests copy this file
into a package of the project's own)."""

from rasa.shared.core.slots import CategoricalSlot, Slot


class NumberOfPeopleSlot(Slot):
    """Rasa's documented example: a party of up to six, or more."""

    def feature_dimensionality(self):
        return 2

    def as_feature(self):
        r = [0.0] * self.feature_dimensionality()
        if self.value:
            if self.value <= 6:
                r[0] = 1.0
            else:
                r[1] = 1.0
        return r


class SizeSlot(CategoricalSlot):
    """A categorical slot that reads numbers as sizes (the underscore methods, Rasa 3's)."""

    type_name = "size"

    def __init__(self, name, mappings, values=None, limit=10, **kwargs):
        super().__init__(name, mappings, values=values or ["small", "big"], **kwargs)
        self.limit = limit

    def _as_feature(self):
        if isinstance(self.value, int | float):
            return [1.0, 0.0] if self.value < self.limit else [0.0, 1.0]
        return super()._as_feature()


class Broken(Slot):
    type_name = "broken"

    def _as_feature(self):
        if self.value == "boom":
            raise RuntimeError("the slot class exploded")
        return [1.0, 2.0] if self.value == "two" else [1.0 if self.value else 0.0]


class NotASlot:
    pass


class Negative(Slot):
    type_name = "negative"

    def _feature_dimensionality(self):
        return -1
