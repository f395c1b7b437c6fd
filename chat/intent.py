"""What one chat turn asks for: the common answer of the offline and the LLM parser.

    {"command": "edit", "edits": [{"attribute": "glasses", "strength": -1.0}],
     "adjust": [{"attribute": null, "amount": 0.5}], "steps": 20}

`edit` sets the strengths of `edits` in the plan, then moves each `adjust` attribute's strength by `amount` away
from zero (negative: towards zero; `attribute` null: the attributes the last change touched), then sets the step
count T when `steps` is not null. `reset` does the same starting from the unedited face; `undo` goes back one change.
"""

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from chat.plan import (
    STRENGTH_RANGE, Edit, PlanError, check_fields, validate_attribute, validate_edits, validate_steps,
    validate_strength,
)  # fmt: skip
from chatface.catalog import Catalog

INTENT_FIELDS = ("command", "edits", "adjust", "steps")
ADJUSTMENT_FIELDS = ("attribute", "amount")


class Command(str, Enum):
    EDIT = "edit"
    UNDO = "undo"
    RESET = "reset"


class ParseError(ValueError):
    """A request could not be turned into an `Intent`; the message says why, for the person who typed it."""


@dataclass(frozen=True)
class Adjustment:
    """"More" (amount > 0) or "less" (amount < 0) of an attribute, or of the last change's (attribute None)."""

    attribute: str | None
    amount: float

    def to_json(self) -> dict:
        return {"attribute": self.attribute, "amount": self.amount}


@dataclass(frozen=True)
class Intent:
    command: Command = Command.EDIT
    edits: tuple[Edit, ...] = ()
    adjust: tuple[Adjustment, ...] = ()
    steps: int | None = None

    def is_empty(self) -> bool:
        """True when the turn asks for nothing at all."""
        return self.command is Command.EDIT and not (self.edits or self.adjust or self.steps is not None)

    def to_json(self) -> dict:
        return {
            "command": self.command.value,
            "edits": [edit.to_json() for edit in self.edits],
            "adjust": [adjustment.to_json() for adjustment in self.adjust],
            "steps": self.steps,
        }


class Parser(Protocol):
    """Turns one chat message into an `Intent`, or raises `ParseError`."""

    name: str

    def parse(self, request: str) -> Intent: ...


def validate_intent(raw: object, catalog: Catalog) -> Intent:
    """An `Intent` from its JSON form; fields left out take their defaults. Raises `PlanError`."""
    check_fields(raw, "answer", INTENT_FIELDS)
    command = raw.get("command", Command.EDIT.value)
    if command not in {member.value for member in Command}:
        raise PlanError(f"command: {command!r} is not one of {', '.join(member.value for member in Command)}")
    raw_steps = raw.get("steps")
    intent = Intent(
        command=Command(command),
        edits=validate_edits(raw.get("edits", []), catalog),
        adjust=_validate_adjustments(raw.get("adjust", []), catalog),
        steps=None if raw_steps is None else validate_steps(raw_steps, "steps"),
    )
    if intent.command is Command.UNDO and (intent.edits or intent.adjust or intent.steps is not None):
        raise PlanError("command: undo takes no edits, adjustments or steps")
    return intent


def _validate_adjustments(raw: object, catalog: Catalog) -> tuple[Adjustment, ...]:
    if not isinstance(raw, list):
        raise PlanError(f"adjust: expected a list of adjustments, got {raw!r}")
    return tuple(_validate_adjustment(item, catalog, f"adjust[{index}]") for index, item in enumerate(raw))


def _validate_adjustment(raw: object, catalog: Catalog, field: str) -> Adjustment:
    check_fields(raw, field, ADJUSTMENT_FIELDS, required=("amount",))
    attribute = raw.get("attribute")
    if attribute is not None:
        attribute = validate_attribute(attribute, catalog, f"{field}.attribute")
    amount = validate_strength(raw["amount"], f"{field}.amount")
    if amount == 0.0:
        raise PlanError(f"{field}.amount: must not be 0 (positive: more, negative: less)")
    return Adjustment(attribute, amount)


def intent_schema(catalog: Catalog) -> dict:
    """The JSON schema of an intent, for servers that constrain their output to one (strict mode)."""
    number = {"type": "number", "minimum": STRENGTH_RANGE[0], "maximum": STRENGTH_RANGE[1]}

    def array_of(properties: dict) -> dict:
        item = {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}
        return {"type": "array", "items": item}

    return {
        "type": "object",
        "properties": {
            "command": {"type": "string", "enum": [member.value for member in Command]},
            "edits": array_of({"attribute": {"type": "string", "enum": list(catalog.names)}, "strength": number}),
            "adjust": array_of({"attribute": {"type": ["string", "null"], "enum": [*catalog.names, None]},
                                "amount": number}),
            "steps": {"type": ["integer", "null"]},
        },
        "required": list(INTENT_FIELDS),
        "additionalProperties": False,
    }
