"""A chat session: the edit plan across turns, its undo history, one rendered image per turn, a JSON file.

    session = ChatSession(parser, render, Path("runs/chat/face"), image="face.png")
    turn = session.send("make her smile and add glasses")   # renders, saves turn_001.png and session.json

Every turn renders its whole plan through `render`, which edits the original image's cached latents, so edits
never drift through re-encoded images. The session knows nothing of networks.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from chat.apply import apply_intent, changed_attributes
from chat.intent import Command, Intent, ParseError, Parser, validate_intent
from chat.plan import EditPlan, PlanError, validate_plan
from chatface.catalog import Catalog, default_catalog

Render = Callable[[EditPlan], Image.Image]
SESSION_FILE = "session.json"


class SessionFileError(ValueError):
    """A session file cannot be restored; the message names the file and the problem."""


@dataclass(frozen=True)
class Turn:
    request: str
    plan: EditPlan  # the plan after the turn; unchanged when the turn failed
    intent: Intent | None = None  # None when the request was not understood
    image: str | None = None  # the rendered image, a file name in the session folder
    error: str | None = None  # what to tell the person when the turn failed

    def to_json(self) -> dict:
        intent = None if self.intent is None else self.intent.to_json()
        return {"request": self.request, "intent": intent, "plan": self.plan.to_json(), "image": self.image,
                "error": self.error}

    @classmethod
    def from_json(cls, raw: dict, catalog: Catalog) -> "Turn":
        intent = None if raw["intent"] is None else validate_intent(raw["intent"], catalog)
        return cls(raw["request"], validate_plan(raw["plan"], catalog), intent, raw["image"], raw["error"])


class ChatSession:
    def __init__(
        self, parser: Parser, render: Render, folder: Path, image: str | None = None, catalog: Catalog | None = None
    ) -> None:
        self.parser, self.render, self.folder, self.image = parser, render, Path(folder), image
        self.catalog = catalog or default_catalog()
        self.turns: list[Turn] = []
        self._plans = [EditPlan()]  # the undo history; the last is the current plan

    @property
    def plan(self) -> EditPlan:
        return self._plans[-1]

    @property
    def history(self) -> tuple[EditPlan, ...]:
        """The plans that undo walks back through, oldest (the unedited face) first."""
        return tuple(self._plans)

    @property
    def path(self) -> Path:
        return self.folder / SESSION_FILE

    def send(self, request: str) -> Turn:
        """One turn: parse, change the plan, render, save. A request that fails leaves the plan as it was and
        returns a turn whose `error` says why."""
        try:
            intent = self.parser.parse(request)
            plans = self._plans_after(intent)
            rendered = self.render(plans[-1])  # a PlanError here (say, an attribute with no mapper) is shown too
        except (ParseError, PlanError) as error:
            turn = Turn(request, self.plan, error=str(error))
        else:
            image = f"turn_{len(self.turns) + 1:03d}.png"
            self.folder.mkdir(parents=True, exist_ok=True)
            rendered.save(self.folder / image)
            self._plans = plans
            turn = Turn(request, self.plan, intent, image)
        self.turns.append(turn)
        self.save()
        return turn

    def _plans_after(self, intent: Intent) -> list[EditPlan]:
        if intent.command is Command.UNDO:
            if len(self._plans) == 1:
                raise PlanError("nothing to undo")
            return self._plans[:-1]
        focus = changed_attributes(self._plans[-2], self.plan) if len(self._plans) > 1 else ()
        return [*self._plans, apply_intent(self.plan, intent, focus)]

    def save(self) -> Path:
        """Write the session (source image, undo history, turns) to `folder/session.json`."""
        self.folder.mkdir(parents=True, exist_ok=True)
        state = {"image": self.image, "plans": [plan.to_json() for plan in self._plans],
                 "turns": [turn.to_json() for turn in self.turns]}
        self.path.write_text(json.dumps(state, indent=1), encoding="utf-8")
        return self.path

    @classmethod
    def restore(cls, path: Path, parser: Parser, render: Render, catalog: Catalog | None = None) -> "ChatSession":
        """The session saved at `path` (a session.json), to go on with; images are not rendered again."""
        path = Path(path)
        state = read_session_file(path)
        session = cls(parser, render, path.parent, state["image"], catalog)
        try:
            plans = [validate_plan(plan, session.catalog) for plan in state["plans"]]
            session.turns = [Turn.from_json(turn, session.catalog) for turn in state["turns"]]
        except (PlanError, KeyError, TypeError) as error:
            raise SessionFileError(f"{path}: not a chat session file: {error}") from None
        if not plans:
            raise SessionFileError(f"{path}: the session has no plans")
        session._plans = plans
        return session


def read_session_file(path: Path) -> dict:
    """The raw content of a session file; its "image" names the source image to load before `restore`."""
    try:
        state = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise SessionFileError(f"{path}: cannot read a chat session: {error}") from None
    if not isinstance(state, dict) or not {"image", "plans", "turns"} <= state.keys():
        raise SessionFileError(f"{path}: not a chat session file (expected the keys image, plans, turns)")
    return state
