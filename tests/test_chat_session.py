import json

import pytest
from PIL import Image, ImageChops, ImageDraw

from chat.apply import apply_intent
from chat.commands import parse_request, plan_request, run_chat
from chat.intent import Adjustment, Command, Intent, ParseError
from chat.offline_parser import OfflineParser
from chat.plan import Edit, EditPlan
from chat.session import ChatSession, SessionFileError, read_session_file
from chatface.config import load_config


def draw_plan(plan: EditPlan) -> Image.Image:
    """A tiny real renderer: the plan written into an image, so that each image shows what it rendered."""
    image = Image.new("RGB", (320, 16), "white")
    ImageDraw.Draw(image).text((2, 2), plan.describe(), fill="black")
    return image


class RecordingRenderer:
    def __init__(self) -> None:
        self.plans: list[EditPlan] = []

    def __call__(self, plan: EditPlan) -> Image.Image:
        self.plans.append(plan)
        return draw_plan(plan)


class FlakyParser:
    """The offline parser, except for requests it fails on as a broken LLM would."""

    name = "flaky"

    def __init__(self) -> None:
        self.offline = OfflineParser()

    def parse(self, request: str) -> Intent:
        if "garbage" in request:
            raise ParseError("the LLM's answer was invalid twice: broken JSON in the answer '{\"edits\": ['")
        return self.offline.parse(request)


@pytest.fixture
def render():
    return RecordingRenderer()


@pytest.fixture
def session(tmp_path, render):
    return ChatSession(FlakyParser(), render, tmp_path / "chat", image="face.png")


def strengths(session: ChatSession) -> dict[str, float]:
    return session.plan.strengths()


def same_image(path, plan: EditPlan) -> bool:
    with Image.open(path) as saved:
        return ImageChops.difference(saved.convert("RGB"), draw_plan(plan)).getbbox() is None


def test_a_conversation_refines_the_plan_turn_by_turn(session, render):
    conversation = [
        ("make her smile and add glasses", {"smile": 1.0, "glasses": 1.0}, 8),
        ("more", {"smile": 1.5, "glasses": 1.5}, 8),  # the last change touched both
        ("a bit less", {"smile": 1.25, "glasses": 1.25}, 8),
        ("also make her hair curly", {"smile": 1.25, "glasses": 1.25, "curly_hair": 1.0}, 8),
        ("more", {"smile": 1.25, "glasses": 1.25, "curly_hair": 1.5}, 8),  # only what changed last
        ("actually no glasses", {"smile": 1.25, "curly_hair": 1.5}, 8),  # retracts, does not add glasses -1
        ("undo", {"smile": 1.25, "glasses": 1.25, "curly_hair": 1.5}, 8),
        ("keep the details", {"smile": 1.25, "glasses": 1.25, "curly_hair": 1.5}, 20),
        ("less smile", {"smile": 0.75, "glasses": 1.25, "curly_hair": 1.5}, 20),
        ("reset", {}, 8),
        ("undo", {"smile": 0.75, "glasses": 1.25, "curly_hair": 1.5}, 20),
        ("start over with just sunglasses", {"sunglasses": 1.0}, 8),
        ("remove the beard", {"sunglasses": 1.0, "beard": -1.0}, 8),
    ]
    for index, (request, expected, steps) in enumerate(conversation, start=1):
        turn = session.send(request)
        assert turn.error is None, request
        assert (strengths(session), session.plan.steps) == (expected, steps), request
        assert turn.plan == session.plan and turn.image == f"turn_{index:03d}.png"
        assert same_image(session.folder / turn.image, session.plan)
    assert render.plans == [turn.plan for turn in session.turns]  # the whole plan each time, from the original


def test_undo_walks_back_through_the_history(session):
    for request in ("smile", "add glasses", "blond hair"):
        session.send(request)
    assert [list(plan.strengths()) for plan in session.history] == [
        [], ["smile"], ["smile", "glasses"], ["smile", "glasses", "blond_hair"]]
    for expected in (["smile", "glasses"], ["smile"], []):
        session.send("undo")
        assert list(strengths(session)) == expected
    turn = session.send("undo")
    assert turn.error == "nothing to undo" and turn.image is None and session.plan == EditPlan()


def test_a_failed_turn_keeps_the_plan_and_says_why(session, render):
    session.send("make her smile")
    before, rendered = session.plan, len(render.plans)
    for request, error in [
        ("garbage from the LLM", "invalid twice: broken JSON"),
        ("make her smlie", "did you mean 'smile'"),
        ("smile 7", "is outside [-2.0, 2.0]"),
    ]:
        turn = session.send(request)
        assert error in turn.error and turn.image is None and turn.intent is None
        assert session.plan == before and turn.plan == before
    assert len(render.plans) == rendered
    assert session.send("more").plan.strengths() == {"smile": 1.5}  # the failures did not move the focus


def test_more_on_an_empty_plan_is_an_error_not_a_crash(session):
    assert session.send("a bit more").error == "nothing to make stronger: the plan has no edits"
    assert session.send("less").error == "nothing to make weaker: the plan has no edits"
    assert session.plan == EditPlan() and len(session.turns) == 2


def test_the_session_saves_and_restores_its_json_file(session, render, tmp_path):
    for request in ("smile and glasses", "garbage", "more", "actually no glasses", "keep the details"):
        session.send(request)
    state = json.loads(session.path.read_text(encoding="utf-8"))
    assert state["image"] == "face.png" and len(state["plans"]) == 5 and len(state["turns"]) == 5
    assert state["turns"][1]["error"].startswith("the LLM's answer was invalid")
    assert read_session_file(session.path)["image"] == "face.png"

    restored = ChatSession.restore(session.path, FlakyParser(), render)
    assert (restored.plan, restored.history, restored.turns) == (session.plan, session.history, session.turns)
    assert restored.image == "face.png" and restored.folder == session.folder
    turn = restored.send("undo")
    assert turn.image == "turn_006.png" and turn.plan == EditPlan((Edit("smile", 1.5),), 8)
    assert json.loads(restored.path.read_text(encoding="utf-8"))["turns"][-1]["request"] == "undo"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot read a chat session"),
        ('{"image": null}', "not a chat session file (expected the keys image, plans, turns)"),
        ('{"image": null, "plans": [{"edits": [{"attribute": "smlie", "strength": 1}]}], "turns": []}',
         "did you mean 'smile'"),
        ('{"image": null, "plans": [], "turns": []}', "the session has no plans"),
        ('{"image": null, "plans": [{}], "turns": [{"request": "smile"}]}', "not a chat session file"),
    ],
)
def test_a_broken_session_file_is_a_clear_error(tmp_path, render, content, message):
    path = tmp_path / "session.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SessionFileError, match=str(path)) as error:
        ChatSession.restore(path, FlakyParser(), render)
    assert message in str(error.value)


def test_apply_intent_retracts_sets_and_adjusts():
    plan = EditPlan((Edit("smile", 1.0), Edit("glasses", -1.0)), 12)
    intent = Intent(edits=(Edit("glasses", 1.0), Edit("beard", -0.5)), adjust=(Adjustment("smile", -2.0),))
    assert apply_intent(plan, intent) == EditPlan((Edit("beard", -0.5),), 12)  # less never flips the sign
    assert apply_intent(plan, Intent(adjust=(Adjustment("old", -0.5),))).strengths()["old"] == -0.5
    assert apply_intent(plan, Intent(adjust=(Adjustment("smile", 2.0),))).strengths()["smile"] == 2.0  # clamped
    assert apply_intent(plan, Intent(Command.RESET, steps=30)) == EditPlan((), 30)
    with pytest.raises(ValueError, match="undo"):
        apply_intent(plan, Intent(Command.UNDO))


def test_run_chat_prints_each_plan_and_image_until_quit(session):
    lines = iter(["make her smile", "", "garbage", "more", "quit", "never read"])
    printed = []
    run_chat(session, lambda prompt: next(lines), printed.append)
    assert printed[1:] == [
        "plan: smile +1.00 (T=8)", f"image: {session.folder / 'turn_001.png'}",
        "sorry: the LLM's answer was invalid twice: broken JSON in the answer '{\"edits\": ['",
        "plan (unchanged): smile +1.00 (T=8)",
        "plan: smile +1.50 (T=8)", f"image: {session.folder / 'turn_003.png'}",
        f"session saved to {session.path}",
    ]  # fmt: skip
    assert next(lines) == "never read"


def test_run_chat_ends_at_end_of_input(session):
    def read_line(prompt):
        raise EOFError

    printed = []
    run_chat(session, read_line, printed.append)
    assert printed[-1] == f"session saved to {session.path}" and session.turns == []


@pytest.fixture
def offline_cfg(monkeypatch):
    monkeypatch.delenv("CHATFACE_LLM_MODEL", raising=False)
    return load_config()


def test_parse_request_gives_the_json_for_scripts(offline_cfg):
    result = parse_request("make her smile and add glasses, keep the details", offline_cfg)
    assert json.loads(json.dumps(result)) == {
        "request": "make her smile and add glasses, keep the details",
        "parser": "offline",
        "intent": {"command": "edit", "edits": [{"attribute": "smile", "strength": 1.0},
                                                {"attribute": "glasses", "strength": 1.0}], "adjust": [], "steps": 20},
        "plan": {"edits": [{"attribute": "smile", "strength": 1.0}, {"attribute": "glasses", "strength": 1.0}],
                 "steps": 20},
    }  # fmt: skip
    assert parse_request("undo", offline_cfg)["plan"] is None
    assert parse_request("more", offline_cfg)["plan"] is None
    assert parse_request("less smile", offline_cfg)["plan"] == {"edits": [{"attribute": "smile", "strength": -0.5}],
                                                                "steps": 8}
    with pytest.raises(ParseError, match="no edit found"):
        parse_request("make it cyberpunk", offline_cfg)


def test_plan_request_is_for_one_off_edits(offline_cfg):
    assert plan_request("remove the glasses", offline_cfg) == EditPlan((Edit("glasses", -1.0),))
    with pytest.raises(ParseError, match="'a bit more' refines an earlier edit"):
        plan_request("a bit more", offline_cfg)
