import pytest

from chat.intent import Adjustment, Command, Intent, intent_schema, validate_intent
from chat.plan import DEFAULT_STEPS, STEPS_RANGE, STRENGTH_RANGE, Edit, EditPlan, PlanError, merge_edits, validate_plan
from chatface.catalog import default_catalog


@pytest.fixture(scope="module")
def catalog():
    return default_catalog()


def edits(*pairs):
    return [{"attribute": attribute, "strength": strength} for attribute, strength in pairs]


def assert_refused(validate, raw, catalog, message):
    with pytest.raises(PlanError) as error:
        validate(raw, catalog)
    assert message in str(error.value) and isinstance(error.value, ValueError)


def test_a_valid_plan_round_trips_through_json(catalog):
    plan = validate_plan({"edits": edits(("smile", 1), ("glasses", -1.5)), "steps": 12}, catalog)
    assert plan == EditPlan((Edit("smile", 1.0), Edit("glasses", -1.5)), 12)
    assert EditPlan.from_json(plan.to_json(), catalog) == plan
    assert plan.describe() == "smile +1.00, glasses -1.50 (T=12)"


def test_defaults_are_no_edits_at_the_papers_step_count(catalog):
    assert validate_plan({}, catalog) == EditPlan() == EditPlan((), DEFAULT_STEPS)
    assert DEFAULT_STEPS == 8 and STRENGTH_RANGE == (-2.0, 2.0) and STEPS_RANGE == (2, 50)
    assert EditPlan().describe() == "no edits (T=8)"


def test_synonyms_become_catalog_names(catalog):
    assert validate_plan({"edits": edits(("Blonde", 1))}, catalog).edits == (Edit("blond_hair", 1.0),)


@pytest.mark.parametrize("strength", [-2.0, -0.01, 0.5, 2])
def test_strengths_inside_the_range_are_kept(catalog, strength):
    assert validate_plan({"edits": edits(("smile", strength))}, catalog).edits == (Edit("smile", float(strength)),)


@pytest.mark.parametrize(("steps"), [2, 8, 50, 20.0])
def test_step_counts_inside_the_range_are_kept(catalog, steps):
    plan = validate_plan({"steps": steps}, catalog)
    assert plan.steps == steps and isinstance(plan.steps, int)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param({"edits": edits(("smlie", 1))}, "edits[0].attribute: unknown attribute 'smlie'; did you mean "
                     "'smile'", id="misspelt-attribute"),
        pytest.param({"edits": edits(("smile", 1), ("curly_hiar", 1))}, "edits[1].attribute: unknown attribute "
                     "'curly_hiar'; did you mean 'curly_hair'", id="second-edit"),
        pytest.param({"edits": edits(("unicorn horn", 1))}, "edits[0].attribute: unknown attribute 'unicorn horn'",
                     id="no-close-name"),
        pytest.param({"edits": edits(("smile", 2.5))}, "edits[0].strength: 2.5 is outside [-2.0, 2.0]", id="strong"),
        pytest.param({"edits": edits(("smile", -3))}, "edits[0].strength: -3 is outside [-2.0, 2.0]", id="negative"),
        pytest.param({"edits": edits(("smile", "0.5"))}, "edits[0].strength: expected a number, got '0.5'",
                     id="strength-string"),
        pytest.param({"edits": edits(("smile", True))}, "expected a number, got True", id="strength-bool"),
        pytest.param({"edits": edits(("smile", float("nan")))}, "expected a number, got nan", id="strength-nan"),
        pytest.param({"edits": [{"attribute": 3, "strength": 1}]}, "edits[0].attribute: expected an attribute name",
                     id="attribute-number"),
        pytest.param({"edits": [{"attribute": "smile"}]}, "edits[0]: missing field(s) strength", id="no-strength"),
        pytest.param({"edits": [{"attribute": "smile", "strength": 1, "weight": 2}]},
                     "edits[0]: unknown field(s) weight; the fields are attribute, strength", id="extra-edit-field"),
        pytest.param({"edits": "smile"}, "edits: expected a list of edits, got 'smile'", id="edits-not-a-list"),
        pytest.param({"edits": ["smile"]}, "edits[0]: expected an object", id="edit-not-an-object"),
        pytest.param({"steps": 1}, "steps: 1 is outside [2, 50]", id="too-few-steps"),
        pytest.param({"steps": 51}, "steps: 51 is outside [2, 50]", id="too-many-steps"),
        pytest.param({"steps": 8.5}, "steps: expected a whole number of sampling steps, got 8.5", id="fractional"),
        pytest.param({"steps": None}, "steps: expected a whole number", id="steps-null"),
        pytest.param({"edit": []}, "plan: unknown field(s) edit; the fields are edits, steps", id="misspelt-field"),
        pytest.param([], "plan: expected an object", id="not-an-object"),
    ],
)
def test_invalid_plans_name_the_field_and_the_value(catalog, raw, message):
    assert_refused(validate_plan, raw, catalog, message)


def test_duplicates_merge_summing_and_clamping_and_zeros_vanish():
    merged = merge_edits([Edit("smile", 1.0), Edit("glasses", 1.0), Edit("smile", 0.5), Edit("glasses", -1.0),
                          Edit("old", 1.5), Edit("old", 1.5)])
    assert merged == (Edit("smile", 1.5), Edit("old", 2.0))


def test_validation_merges_duplicates(catalog):
    plan = validate_plan({"edits": edits(("smile", 1.5), ("grin", 1.5), ("beard", -2), ("beard", -1))}, catalog)
    assert plan.edits == (Edit("smile", 2.0), Edit("beard", -2.0))


def test_an_intent_round_trips_and_defaults_missing_fields(catalog):
    intent = Intent(Command.RESET, (Edit("glasses", 1.0),), (Adjustment(None, 0.25), Adjustment("smile", -0.5)), 20)
    assert validate_intent(intent.to_json(), catalog) == intent
    assert validate_intent({"edits": edits(("smile", 1))}, catalog) == Intent(edits=(Edit("smile", 1.0),))
    assert validate_intent({}, catalog).is_empty() and not intent.is_empty()
    assert not validate_intent({"command": "undo"}, catalog).is_empty()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"command": "redo"}, "command: 'redo' is not one of edit, undo, reset"),
        ({"command": "undo", "edits": edits(("smile", 1))}, "undo takes no edits"),
        ({"adjust": [{"attribute": None, "amount": 0}]}, "adjust[0].amount: must not be 0"),
        ({"adjust": [{"attribute": "smiel", "amount": 0.5}]}, "adjust[0].attribute: unknown attribute 'smiel'; did you "
                                                               "mean 'smile'"),
        ({"adjust": [{"amount": 3}]}, "adjust[0].amount: 3 is outside [-2.0, 2.0]"),
        ({"adjust": {"amount": 1}}, "adjust: expected a list"),
        ({"steps": 0}, "steps: 0 is outside [2, 50]"),
        ({"plan": {}}, "answer: unknown field(s) plan; the fields are command, edits, adjust, steps"),
    ],
)
def test_invalid_intents_name_the_field_and_the_value(catalog, raw, message):
    assert_refused(validate_intent, raw, catalog, message)


def test_the_schema_allows_only_catalog_names_and_every_field(catalog):
    schema = intent_schema(catalog)
    assert schema["required"] == ["command", "edits", "adjust", "steps"] and not schema["additionalProperties"]
    edit_item = schema["properties"]["edits"]["items"]
    assert edit_item["properties"]["attribute"]["enum"] == list(catalog.names)
    assert edit_item["required"] == ["attribute", "strength"] and not edit_item["additionalProperties"]
