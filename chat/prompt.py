"""The LLM parser's few-shot prompt: instructions, the catalog, and our own demonstrations.

The scale it states is chat/vocabulary.py's, and a test checks that the offline parser reads every demonstration
the same way, so that both parsers agree.
"""

import json

from chat.intent import Command
from chat.plan import STEPS_RANGE, STRENGTH_RANGE
from chat.vocabulary import ADJUST_STEP, DETAILED_STEPS, DRAMATIC_STEPS, EXTREME, NORMAL, SLIGHT, STRONG
from chatface.catalog import Catalog


def _intent(command: str = "edit", edits: dict | None = None, adjust: dict | None = None, steps: int | None = None):
    return {
        "command": command,
        "edits": [{"attribute": name, "strength": strength} for name, strength in (edits or {}).items()],
        "adjust": [{"attribute": name, "amount": amount} for name, amount in (adjust or {}).items()],
        "steps": steps,
    }


DEMONSTRATIONS: tuple[tuple[str, dict], ...] = (
    ("give her a big smile and some glasses", _intent(edits={"smile": STRONG, "glasses": NORMAL})),
    ("I'd like him without the beard, and slightly older", _intent(edits={"beard": -1.0, "old": SLIGHT})),
    ("make the hair blond and very curly", _intent(edits={"blond_hair": 1.0, "curly_hair": STRONG})),
    ("a bit more", _intent(adjust={None: ADJUST_STEP * SLIGHT})),
    ("tone down the makeup", _intent(adjust={"makeup": -ADJUST_STEP})),
    ("undo that", _intent(Command.UNDO.value)),
    ("start over, just sunglasses this time", _intent(Command.RESET.value, edits={"sunglasses": 1.0})),
    ("actually no earrings", _intent(edits={"earrings": -1.0})),
    ("add freckles but keep the fine details", _intent(edits={"freckles": 1.0}, steps=DETAILED_STEPS)),
    ("a dramatic zombie transformation", _intent(edits={"zombie": 1.0}, steps=DRAMATIC_STEPS)),
    ("lipstick at 0.7 with 30 steps", _intent(edits={"lipstick": 0.7}, steps=30)),
    ("make him extremely pale, no mustache", _intent(edits={"pale": EXTREME, "mustache": -1.0})),
)


def system_prompt(catalog: Catalog) -> str:
    low, high = STRENGTH_RANGE
    attributes = "\n".join(f"- {a.name}: {', '.join(a.synonyms)}" for a in catalog)
    return f"""You turn a person's request to edit a face photo into JSON for the ChatFace editor.
Answer with one JSON object and nothing else:
{{"command": "edit" | "undo" | "reset", "edits": [{{"attribute": NAME, "strength": S}}, ...],
 "adjust": [{{"attribute": NAME or null, "amount": A}}, ...], "steps": T or null}}

- attribute: exactly one of the names listed below; map synonyms and paraphrases to the closest name.
- edits set a strength S in [{low}, {high}]: {NORMAL} normal, {SLIGHT} slightly / a bit, {STRONG} a lot / very,
  {EXTREME} extremely. Negative removes: "no beard", "remove the glasses", "without makeup" give -{NORMAL}.
- adjust moves a strength set in earlier turns: "more" {ADJUST_STEP}, "a bit more" {ADJUST_STEP * SLIGHT},
  "much more" {ADJUST_STEP * STRONG}, "less" {-ADJUST_STEP}. attribute null means "what was changed last".
- steps is the number of sampling steps T in [{STEPS_RANGE[0]}, {STEPS_RANGE[1]}], or null to keep it:
  {DETAILED_STEPS} to keep details, for a subtle change or to preserve the face; {DRAMATIC_STEPS} for a dramatic
  or strong change; else the number given.
- command: "undo" for "undo", "go back", "never mind"; "reset" for "start over" (with any edits asked for in the
  same message); "edit" for everything else, including "also ..." and "actually ...".
- If the request names nothing in the list, answer {json.dumps(_intent())}.

Attributes (name: synonyms):
{attributes}"""


def messages(request: str, catalog: Catalog) -> list[dict]:
    """The chat messages for one request: the system prompt, the demonstrations as earlier turns, the request."""
    shots = [
        message
        for demo_request, answer in DEMONSTRATIONS
        for message in ({"role": "user", "content": demo_request}, {"role": "assistant", "content": json.dumps(answer)})
    ]
    return [{"role": "system", "content": system_prompt(catalog)}, *shots, {"role": "user", "content": request}]


def repair_message(error: str) -> dict:
    """What to send back after an invalid answer."""
    return {"role": "user", "content": f"That answer is invalid: {error}. Answer again with only the JSON object."}
