"""How an `Intent` changes an `EditPlan`: the arithmetic of one chat turn. Undo belongs to the session's history."""

from collections.abc import Iterable

from chat.intent import Adjustment, Command, Intent
from chat.plan import DEFAULT_STEPS, Edit, EditPlan, PlanError, clamp_strength, merge_edits


def apply_intent(plan: EditPlan, intent: Intent, focus: Iterable[str] = ()) -> EditPlan:
    """The plan after `intent` (an edit or a reset).

    Edits set strengths, except that an edit against the sign the plan holds retracts the attribute ("actually no
    glasses" after "add glasses" drops glasses). Adjustments then move strengths; one without an attribute moves
    this turn's edits, else `focus` (the attributes the last change touched), else every edit in the plan.
    """
    if intent.command is Command.UNDO:
        raise ValueError("undo goes back in the session's history; apply_intent cannot do it")
    reset = intent.command is Command.RESET
    strengths = {} if reset else plan.strengths()
    for edit in intent.edits:
        _set_or_retract(strengths, edit)
    touched = [edit.attribute for edit in intent.edits] or list(focus)
    for adjustment in intent.adjust:
        for attribute in _targets(adjustment, strengths, touched):
            strengths[attribute] = _moved(strengths.get(attribute, 0.0), adjustment.amount)
    steps = intent.steps if intent.steps is not None else DEFAULT_STEPS if reset else plan.steps
    return EditPlan(merge_edits(Edit(attribute, strength) for attribute, strength in strengths.items()), steps)


def changed_attributes(before: EditPlan, after: EditPlan) -> tuple[str, ...]:
    """The attributes whose strength differs between two plans: the focus of a following "more"."""
    old, new = before.strengths(), after.strengths()
    return tuple(attribute for attribute in {**old, **new} if old.get(attribute) != new.get(attribute))


def _set_or_retract(strengths: dict[str, float], edit: Edit) -> None:
    if strengths.get(edit.attribute, 0.0) * edit.strength < 0:
        del strengths[edit.attribute]
    else:
        strengths[edit.attribute] = edit.strength


def _targets(adjustment: Adjustment, strengths: dict[str, float], touched: list[str]) -> list[str]:
    if adjustment.attribute is not None:
        return [adjustment.attribute]
    targets = [attribute for attribute in touched if strengths.get(attribute)] or list(strengths)
    if not targets:
        raise PlanError(f"nothing to make {'stronger' if adjustment.amount > 0 else 'weaker'}: the plan has no edits")
    return targets


def _moved(strength: float, amount: float) -> float:
    """`amount` further from zero (negative: towards zero, stopping there). An absent attribute starts at zero:
    "less smile" on an unedited face removes some smile."""
    if strength == 0.0:
        return clamp_strength(amount)
    moved = strength + amount if strength > 0 else strength - amount
    return clamp_strength(moved) if moved * strength > 0 else 0.0
