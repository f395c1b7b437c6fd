"""Edit plans: the validated (attribute A, strength S) list and sampling step count T that a request turns into.

    validate_plan({"edits": [{"attribute": "smile", "strength": 1.0}], "steps": 8}, catalog)

Anything outside the catalog or the bounds raises a `PlanError` that names the field, the value and, for an
unknown attribute, the closest catalog names.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass

from chatface.catalog import Catalog, UnknownAttributeError

STRENGTH_RANGE = (-2.0, 2.0)  # negative strengths remove the attribute
STEPS_RANGE = (2, 50)  # DDIM steps T; fewer steps give a stronger edit with less detail
DEFAULT_STEPS = 8  # the paper's T
PLAN_FIELDS = ("edits", "steps")
EDIT_FIELDS = ("attribute", "strength")


class PlanError(ValueError):
    """A plan (or a part of one) is invalid; the message names the field and the value."""


@dataclass(frozen=True)
class Edit:
    attribute: str
    strength: float

    def to_json(self) -> dict:
        return {"attribute": self.attribute, "strength": self.strength}


@dataclass(frozen=True)
class EditPlan:
    edits: tuple[Edit, ...] = ()
    steps: int = DEFAULT_STEPS

    def to_json(self) -> dict:
        return {"edits": [edit.to_json() for edit in self.edits], "steps": self.steps}

    @classmethod
    def from_json(cls, raw: object, catalog: Catalog) -> "EditPlan":
        return validate_plan(raw, catalog)

    def strengths(self) -> dict[str, float]:
        return {edit.attribute: edit.strength for edit in self.edits}

    def describe(self) -> str:
        """One line for people: "smile +1.00, glasses -1.00 (T=8)"."""
        edits = ", ".join(f"{edit.attribute} {edit.strength:+.2f}" for edit in self.edits) or "no edits"
        return f"{edits} (T={self.steps})"


def validate_plan(raw: object, catalog: Catalog) -> EditPlan:
    """An `EditPlan` from its JSON form; `steps` may be left out (DEFAULT_STEPS)."""
    check_fields(raw, "plan", PLAN_FIELDS)
    steps = raw.get("steps", DEFAULT_STEPS)
    return EditPlan(validate_edits(raw.get("edits", []), catalog), validate_steps(steps, "steps"))


def validate_edits(raw: object, catalog: Catalog) -> tuple[Edit, ...]:
    """A JSON list of edits, each checked, then merged (see `merge_edits`)."""
    if not isinstance(raw, list):
        raise PlanError(f"edits: expected a list of edits, got {raw!r}")
    return merge_edits(validate_edit(item, catalog, f"edits[{index}]") for index, item in enumerate(raw))


def validate_edit(raw: object, catalog: Catalog, field: str) -> Edit:
    check_fields(raw, field, EDIT_FIELDS, required=EDIT_FIELDS)
    attribute = validate_attribute(raw["attribute"], catalog, f"{field}.attribute")
    return Edit(attribute, validate_strength(raw["strength"], f"{field}.strength"))


def validate_attribute(raw: object, catalog: Catalog, field: str) -> str:
    """The catalog name of `raw`, which may be a name or a synonym ("blonde" -> "blond_hair")."""
    if not isinstance(raw, str):
        raise PlanError(f"{field}: expected an attribute name, got {raw!r}")
    attribute = catalog.lookup(raw)
    if attribute is None:
        try:
            catalog[raw]  # raises, naming the closest attributes
        except UnknownAttributeError as error:
            raise PlanError(f"{field}: {error}") from None
    return attribute.name


def validate_strength(raw: object, field: str) -> float:
    if not _is_number(raw):
        raise PlanError(f"{field}: expected a number, got {raw!r}")
    return float(_within(raw, STRENGTH_RANGE, field))


def validate_steps(raw: object, field: str) -> int:
    if not _is_number(raw) or raw != int(raw):
        raise PlanError(f"{field}: expected a whole number of sampling steps, got {raw!r}")
    return int(_within(raw, STEPS_RANGE, field))


def _within(raw: float, bounds: tuple[float, float], field: str) -> float:
    low, high = bounds
    if not low <= raw <= high:
        raise PlanError(f"{field}: {raw!r} is outside [{low}, {high}]")
    return raw


def check_fields(raw: object, field: str, known: tuple[str, ...], required: tuple[str, ...] = ()) -> None:
    """`raw` is a JSON object with no fields but `known` and all of `required`."""
    if not isinstance(raw, dict):
        raise PlanError(f"{field}: expected an object with the fields {', '.join(known)}, got {raw!r}")
    if unknown := [str(key) for key in raw if key not in known]:
        raise PlanError(f"{field}: unknown field(s) {', '.join(unknown)}; the fields are {', '.join(known)}")
    if missing := [key for key in required if key not in raw]:
        raise PlanError(f"{field}: missing field(s) {', '.join(missing)}")


def merge_edits(edits: Iterable[Edit]) -> tuple[Edit, ...]:
    """One edit per attribute, in order of first appearance: strengths of repeats add up, clamped to the range.

    Edits that end at strength 0 are no edits and are left out.
    """
    strengths: dict[str, float] = {}
    for edit in edits:
        strengths[edit.attribute] = clamp_strength(strengths.get(edit.attribute, 0.0) + edit.strength)
    return tuple(Edit(attribute, strength) for attribute, strength in strengths.items() if strength != 0.0)


def clamp_strength(strength: float) -> float:
    low, high = STRENGTH_RANGE
    return min(max(strength, low), high)


def _is_number(raw: object) -> bool:
    return isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw)
