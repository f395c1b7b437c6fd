"""The words the offline parser knows besides the catalog's attribute names and synonyms, and what they mean.

The LLM prompt states the same scale, so that both parsers give the same plan for the same request.
"""

from enum import Enum

SLIGHT, NORMAL, STRONG, EXTREME = 0.5, 1.0, 1.5, 2.0  # strengths for "slightly", no word, "a lot", "extremely"
ADJUST_STEP = 0.5  # how far "more" / "less" move a strength; an intensity word scales it ("a bit more": 0.25)
DETAILED_STEPS = 20  # T for "keep the details", "subtle", "preserve": a gentler edit that keeps more detail
DRAMATIC_STEPS = 4  # T for "a strong change", "dramatic": a stronger edit with less detail (the paper: small T)


class Word(Enum):
    NEGATE = "negate"  # the attributes after it are removed: "remove", "no", "without", "undo"
    OFF = "off"  # the attributes before it are removed: "take the glasses off"
    INTENSITY = "intensity"  # value: a strength, "slightly" .. "extremely"
    COMPARE = "compare"  # value: +1 "more", -1 "less"
    STEPS_HINT = "steps_hint"  # value: a step count T, "keep the details" .. "dramatic"
    STEPS = "steps"  # "steps", "T": a number beside it is the step count
    RESET = "reset"  # start again from the unedited face
    ACTION = "action"  # "add", "make": ends a negation once it has named an attribute
    KEEP = "keep"  # the attributes after it are not edited: "keep the glasses"
    SUBJECT = "subject"  # "the", "this": before "woman" or "old man" it names the person, not an edit
    JOIN = "join"  # value: "list" ("and", ","), "or" ("or", "nor") or "break" ("but", "then", ".")
    BINDER = "binder"  # between an attribute and its number: "smile at 0.5"
    FILLER = "filler"  # known words that mean nothing here
    ATTRIBUTE = "attribute"  # not in the lexicon: a catalog name or synonym; value: the Attribute
    NUMBER = "number"  # not in the lexicon: "0.5", "-1", "50%"; value: the number
    UNKNOWN = "unknown"  # not in the lexicon: any other word


def _phrases(kind: Word, value: object, text: str) -> dict[str, tuple[Word, object]]:
    return {phrase.strip(): (kind, value) for phrase in text.split("|")}


LEXICON: dict[str, tuple[Word, object]] = {
    **_phrases(Word.NEGATE, None,
               "no|not|without|remove|removing|take off|take away|get rid of|lose|drop|delete|erase|eliminate|"
               "shave|shave off|don't|dont|do not|doesn't|no longer|stop|no more|minus|forget|forget about|"
               "never mind|nevermind|undo|undo that|revert|go back|take that back|back|cancel|oops|nope"),
    **_phrases(Word.OFF, None, "off|away|gone|removed"),
    **_phrases(Word.INTENSITY, SLIGHT,
               "slightly|slight|a bit|a little|a little bit|a bit of|a touch|a touch of|a hint of|a tiny bit|a tad|"
               "somewhat|mildly|mild|lightly|barely|faint|faintly|small|kind of|sort of|gently"),
    **_phrases(Word.INTENSITY, STRONG,
               "a lot|a lot of|lots of|much|very|strongly|strong|heavily|big|large|clearly|way|far|intensely|"
               "really"),
    **_phrases(Word.INTENSITY, EXTREME,
               "extremely|maximum|max|super|hugely|huge|massive|massively|fully|completely|totally|"
               "as much as possible"),
    **_phrases(Word.COMPARE, +1,
               "more|stronger|bigger|greater|increase|intensify|amplify|exaggerate|boost|further|even more|"
               "not enough|higher"),
    **_phrases(Word.COMPARE, -1,
               "less|weaker|smaller|fewer|reduce|decrease|lower|tone down|tone it down|too much|so much|"
               "not so much|soften|subtler|softer|toned down|dial back|dial it back"),
    **_phrases(Word.STEPS_HINT, DETAILED_STEPS,
               "detail|details|detailed|more detail|more details|more detailed|fine details|preserve|preserving|"
               "preserved|subtle|subtly|identity|high quality|high fidelity|faithful|careful|carefully|"
               "more steps"),
    **_phrases(Word.STEPS_HINT, DRAMATIC_STEPS,
               "dramatic|dramatically|drastic|drastically|radical|radically|strong change|strong edit|"
               "strong effect|big change|major change|huge change|extreme change|ignore the details|fewer steps|"
               "less steps"),
    **_phrases(Word.STEPS, None, "steps|step|t|sampling steps|ddim steps|denoising steps"),
    **_phrases(Word.RESET, None,
               "reset|start over|start again|restart|from scratch|clear|clear all|original|the original|"
               "clean slate|remove everything|remove all edits|undo everything|undo all"),
    **_phrases(Word.ACTION, None,
               "add|adding|give|put|put on|make|turn|wear|wearing|with|apply|dye|paint|color|colour|grow|have|"
               "show|want|change|become|look|looking|get|into|like|try|set"),
    **_phrases(Word.KEEP, None, "keep|leave|retain|maintain|don't change|don't touch|do not change"),
    **_phrases(Word.SUBJECT, None, "the|this|that"),
    **_phrases(Word.JOIN, "list", "and|,|&|as well as|and also|plus"),
    **_phrases(Word.JOIN, "or", "or|nor"),
    **_phrases(Word.JOIN, "break", "but|then|also|;|.|!|?|:|while|and then|instead"),
    **_phrases(Word.BINDER, None, "by|at|to|strength|with strength|level|of"),
    **_phrases(Word.FILLER, None,
               "please|can|could|you|would|i|i'd|i'm|me|my|her|him|his|their|them|it|its|it's|a|an|some|any|in|"
               "on|for|be|is|are|just|actually|now|so|face|person|photo|picture|image|she|he|they|hair|eyes|"
               "let's|let|us|too|well|ok|okay|thanks|thank|yes|bit|little|lot|do|same|one|pair|hmm"),
}  # fmt: skip
