"""What the `chatface parse`, `edit` and `chat` commands do with words; the CLI wires them to arguments and images.

    parse_request("make her smile and add glasses", cfg)   # the JSON `chatface parse --json` prints
    run_chat(session, input, print)                         # the terminal chat
"""

from collections.abc import Callable

from chat.apply import apply_intent
from chat.intent import Command, Intent, ParseError
from chat.parsers import make_parser
from chat.plan import EditPlan, PlanError
from chat.session import ChatSession, Turn

QUIT_WORDS = ("quit", "exit", "q", "bye")
GREETING = (
    "Describe an edit, e.g. 'make her smile and add glasses'. Then refine it: 'more', 'a bit less', "
    "'also make her hair curly', 'actually no glasses', 'undo', 'reset'. 'quit' ends."
)


def parse_request(text: str, cfg) -> dict:
    """The parsed request as JSON: the parser's name, the intent, and the plan it makes on an unedited face (null
    for "undo" or a bare "more", which need an earlier turn). Raises `ParseError`."""
    parser = make_parser(cfg.chat)
    intent = parser.parse(text)
    plan = standalone_plan(intent)
    return {"request": text, "parser": parser.name, "intent": intent.to_json(),
            "plan": None if plan is None else plan.to_json()}


def plan_request(text: str, cfg) -> EditPlan:
    """The plan for a one-off request (`chatface edit`); raises `ParseError` if it needs an earlier turn."""
    plan = standalone_plan(make_parser(cfg.chat).parse(text))
    if plan is None:
        raise ParseError(f"{text!r} refines an earlier edit; ask for an edit, or use the chat")
    return plan


def standalone_plan(intent: Intent) -> EditPlan | None:
    """The plan `intent` makes on an unedited face, or None when it needs an earlier turn."""
    if intent.command is Command.UNDO:
        return None
    try:
        return apply_intent(EditPlan(), intent)
    except PlanError:
        return None


def run_chat(session: ChatSession, read_line: Callable[[str], str], write_line: Callable[[str], None]) -> None:
    """The terminal chat: each turn prints the plan and where its image went. "quit" or end of input ends it."""
    write_line(GREETING)
    while True:
        try:
            request = read_line("you> ").strip()
        except EOFError:
            break
        if request.lower() in QUIT_WORDS:
            break
        if request:
            for line in describe_turn(session, session.send(request)):
                write_line(line)
    write_line(f"session saved to {session.path}")


def describe_turn(session: ChatSession, turn: Turn) -> list[str]:
    if turn.error is not None:
        return [f"sorry: {turn.error}", f"plan (unchanged): {turn.plan.describe()}"]
    return [f"plan: {turn.plan.describe()}", f"image: {session.folder / turn.image}"]
