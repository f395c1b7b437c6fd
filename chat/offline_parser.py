"""The offline parser: deterministic rules over the catalog's names and synonyms and chat/vocabulary.py.

A request is read as terms, longest phrase first ("dark glasses" before "glasses"), and split into clauses at
"and", ",", "but" and the like. Within a clause, negators, intensity words, comparatives and numbers shape the
attributes beside them; a clause that is only a list item ("remove the glasses and the beard") continues the one
before it.
"""

import re
from dataclasses import dataclass, field, replace

from chat.intent import Command, Intent, ParseError, validate_intent
from chat.plan import PlanError
from chat.vocabulary import ADJUST_STEP, LEXICON, NORMAL, Word
from chatface.catalog import Catalog, UnknownAttributeError, default_catalog

_TOKEN = re.compile(r"-?\d+(?:\.\d+)?%?|[a-z]+(?:['-][a-z]+)*|[,;.!?:&]")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?%?")
_SWAPPABLE = ("hair", "eyes")  # "make her hair red" reads "red hair"
_SWAP_SKIPPED = ("color", "colour", "to", "into")  # "change the hair colour to red"
_SUBJECT_CATEGORIES = ("gender", "age")  # after "the" / "this": "the woman", "this old man" name the person
_SUBJECT_ADJECTIVES = ("age",)  # "this old man": the subject goes on after an age word, ends at "man"
_VERB_CATEGORIES = ("expression",)  # "remove the glasses and smile": a new verb, not another item to remove
_MODIFIERS = (Word.NEGATE, Word.OFF, Word.INTENSITY, Word.COMPARE, Word.ACTION, Word.KEEP, Word.NUMBER)


@dataclass
class Term:
    kind: Word
    value: object
    text: str
    number: float | None = None  # the number beside an attribute or a step word


@dataclass
class Clause:
    join: str  # how it joins the clause before: "start", or a Word.JOIN value ("list", "or", "break")
    joined_by: str  # the joining word: "and", ",", "or", "but" ...
    terms: list[Term] = field(default_factory=list)

    def is_list_item(self) -> bool:
        """True when the clause has no word of its own that shapes its attributes."""
        return not any(term.kind in _MODIFIERS or term.number is not None for term in self.terms)

    def attributes(self) -> list:
        return [term.value for term in self.terms if term.kind is Word.ATTRIBUTE]


@dataclass(frozen=True)
class Mood:
    """What shapes the next attribute in a clause."""

    negated: bool = False
    intensity: float | None = None
    compare: int | None = None  # +1 "more", -1 "less"


@dataclass
class Mention:
    attribute: str
    negated: bool
    intensity: float | None
    number: float | None


class OfflineParser:
    """Deterministic, no network; the default when no LLM is configured."""

    name = "offline"

    def __init__(self, catalog: Catalog | None = None) -> None:
        self._catalog = catalog or default_catalog()
        phrases = [*LEXICON, *(phrase for attribute in self._catalog for phrase in _phrases_of(attribute))]
        self._longest = max(len(_tokens(phrase)) for phrase in phrases)

    def parse(self, request: str) -> Intent:
        terms = _bind_numbers(self._terms(request))
        raw = {"command": _command(terms).value, "edits": [], "adjust": [], "steps": _steps(terms)}
        if raw["command"] != Command.UNDO.value:
            _read_clauses(_clauses(terms), raw)
        try:
            intent = validate_intent(raw, self._catalog)
        except PlanError as error:
            raise ParseError(f"in {request!r}: {error}") from None
        if intent.is_empty():
            raise ParseError(self._nothing_found(request, terms))
        return intent

    def _terms(self, request: str) -> list[Term]:
        tokens = self._split_hyphens(_tokens(request))
        terms, start = [], 0
        while start < len(tokens):
            term, start = self._term_at(tokens, start)
            terms.append(term)
        return terms

    def _split_hyphens(self, tokens: list[str]) -> list[str]:
        """"blue-eyed" -> "blue eyed", unless the hyphenated word is known as it is ("make-up")."""
        return [
            part
            for token in tokens
            for part in (token.split("-") if self._is_unknown_hyphenated(token) else [token])
        ]

    def _is_unknown_hyphenated(self, token: str) -> bool:
        known = token in LEXICON or self._catalog.lookup(token) is not None
        return "-" in token[1:] and not _NUMBER.fullmatch(token) and not known

    def _term_at(self, tokens: list[str], start: int) -> tuple[Term, int]:
        """The longest known phrase at `start`, and where the next term starts."""
        if tokens[start] in _SWAPPABLE and (swapped := self._swapped_attribute(tokens, start)):
            return swapped
        for end in range(min(len(tokens), start + self._longest), start, -1):
            phrase = " ".join(tokens[start:end])
            if (attribute := self._catalog.lookup(phrase)) is not None:
                return Term(Word.ATTRIBUTE, attribute, phrase), end
            if phrase in LEXICON:
                return Term(*LEXICON[phrase], phrase), end
        token = tokens[start]
        if _NUMBER.fullmatch(token):
            return Term(Word.NUMBER, _number(token), token), start + 1
        return Term(Word.UNKNOWN, None, token), start + 1

    def _swapped_attribute(self, tokens: list[str], start: int) -> tuple[Term, int] | None:
        """"hair red" and "hair colour to red" as the attribute "red hair"."""
        end = start + 1
        while end < len(tokens) and tokens[end] in _SWAP_SKIPPED:
            end += 1
        if end == len(tokens):
            return None
        phrase = f"{tokens[end]} {tokens[start]}"
        attribute = self._catalog.lookup(phrase)
        return None if attribute is None else (Term(Word.ATTRIBUTE, attribute, phrase), end + 1)

    def _nothing_found(self, request: str, terms: list[Term]) -> str:
        message = f"no edit found in {request!r}"
        for term in terms:
            if term.kind is Word.UNKNOWN and "did you mean" in (explained := _explain_unknown(self._catalog, term)):
                return f"{message}: {explained}"
        return f"{message}; the attributes are: {', '.join(sorted(self._catalog.names))}"


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower().replace("\u2019", "'"))


def _phrases_of(attribute) -> tuple[str, ...]:
    return (attribute.name.replace("_", " "), *attribute.synonyms)


def _number(token: str) -> int | float:
    if token.endswith("%"):
        return float(token[:-1]) / 100
    return float(token) if "." in token else int(token)


def _bind_numbers(terms: list[Term]) -> list[Term]:
    """Numbers beside a step word or an attribute become its number: "20 steps", "T=20", "smile 0.5", "0.5 smile".

    Step words take whole numbers, from their left first; attributes take any number, from their right first.
    """
    used: set[int] = set()

    def is_free_number(index: int, whole: bool) -> bool:
        ok = 0 <= index < len(terms) and index not in used and terms[index].kind is Word.NUMBER
        return ok and (not whole or float(terms[index].value).is_integer())

    def right_of(index: int) -> int:
        index += 1
        while index < len(terms) and terms[index].kind is Word.BINDER:
            index += 1
        return index

    for kind, whole, sides in ((Word.STEPS, True, (-1, +1)), (Word.ATTRIBUTE, False, (+1, -1))):
        for index, term in enumerate(terms):
            if term.kind is not kind:
                continue
            neighbours = [right_of(index) if side > 0 else index - 1 for side in sides]
            if (found := next((n for n in neighbours if is_free_number(n, whole)), None)) is not None:
                term.number = terms[found].value
                used.add(found)
    return [term for index, term in enumerate(terms) if index not in used]


def _command(terms: list[Term]) -> Command:
    """reset when asked; undo for a bare "no", "undo that", "never mind"; else edit."""
    kinds = {term.kind for term in terms}
    if Word.RESET in kinds:
        return Command.RESET
    asks_for_something = kinds & {Word.ATTRIBUTE, Word.COMPARE, Word.STEPS_HINT} or _steps(terms) is not None
    return Command.UNDO if Word.NEGATE in kinds and not asks_for_something else Command.EDIT


def _steps(terms: list[Term]) -> int | float | None:
    """The step count T: a number beside "steps"/"T", else the last hint ("keep the details", "dramatic")."""
    explicit = [term.number for term in terms if term.kind is Word.STEPS and term.number is not None]
    hints = [term.value for term in terms if term.kind is Word.STEPS_HINT]
    return (explicit or hints or [None])[-1]


def _clauses(terms: list[Term]) -> list[Clause]:
    clauses = [Clause("start", "")]
    for term in terms:
        if term.kind is Word.JOIN:
            clauses.append(Clause(term.value, term.text))
        else:
            clauses[-1].terms.append(term)
    return [clause for clause in clauses if clause.terms]


def _read_clauses(clauses: list[Clause], raw: dict) -> None:
    """Add each clause's edits and adjustments to `raw`. A list item takes the negation and comparison of the
    clause it continues, not its intensity ("a big smile and glasses")."""
    mood = Mood()
    for index, clause in enumerate(clauses):
        start = replace(mood, intensity=None) if _continues(clauses, index) else Mood()
        mood = _read_clause(clause, start, raw)


def _continues(clauses: list[Clause], index: int) -> bool:
    """Does clause `index` continue the previous clause's list ("no glasses or beard", "remove the glasses, the
    earrings and the hat")? Not when it names an expression, which reads as a new verb ("... and smile"), nor
    after a comma that no "and"/"or" closes ("no glasses, blond hair")."""
    clause = clauses[index]
    if index == 0 or not clause.is_list_item():
        return False
    if clause.join == "or":
        return True
    if clause.join != "list" or any(a.category in _VERB_CATEGORIES for a in clause.attributes()):
        return False
    return any(later.joined_by != "," for later in _run_of_items(clauses, index))


def _run_of_items(clauses: list[Clause], index: int) -> list[Clause]:
    """Clause `index` and the list items that follow it."""
    run = [clauses[index]]
    for later in clauses[index + 1:]:
        if not later.is_list_item() or later.join not in ("list", "or"):
            break
        run.append(later)
    return run


def _read_clause(clause: Clause, start: Mood, raw: dict) -> Mood:
    """Add the clause's edits and adjustments to `raw`; return the mood it ends in, for a list that continues it."""
    mood, mentions, pending = start, [], None
    keep = naming_subject = negation_used = False
    for term in clause.terms:
        if term.kind is Word.NEGATE:
            mood, negation_used = replace(mood, negated=True), False
        elif term.kind is Word.OFF:
            for mention in mentions:
                mention.negated = True
        elif term.kind is Word.ACTION and negation_used:
            mood = replace(mood, negated=False)
        elif term.kind is Word.KEEP:
            keep = True
        elif term.kind is Word.INTENSITY:
            mood, pending = replace(mood, intensity=term.value), term.value
        elif term.kind is Word.COMPARE:
            mood = replace(mood, compare=term.value)
        elif term.kind is Word.ATTRIBUTE and not keep and not (naming_subject and _names_subject(term)):
            mentions.append(Mention(term.value.name, mood.negated, pending, term.number))
            pending, negation_used = None, mood.negated
        naming_subject = term.kind is Word.SUBJECT or (naming_subject and _names_subject(term, _SUBJECT_ADJECTIVES))
    if pending is not None and mentions and mentions[-1].intensity is None:
        mentions[-1].intensity = pending  # "smile a lot"
    _add_changes(mentions, mood, _leftover_number(clause), keep, raw)
    return mood


def _names_subject(term: Term, categories: tuple[str, ...] = _SUBJECT_CATEGORIES) -> bool:
    return term.kind is Word.ATTRIBUTE and term.value.category in categories


def _leftover_number(clause: Clause) -> float | None:
    return next((term.value for term in clause.terms if term.kind is Word.NUMBER), None)


def _add_changes(mentions: list[Mention], mood: Mood, number: float | None, keep: bool, raw: dict) -> None:
    """Edits for a plain clause; adjustments for a comparative one ("more", "a bit less smile")."""
    if mood.compare is None:
        for mention in mentions:
            strength = mention.number if mention.number is not None else mention.intensity or NORMAL
            raw["edits"].append({"attribute": mention.attribute, "strength": -abs(strength) if mention.negated
                                 else strength})
        return
    for mention in mentions:
        amount = _first_given(mention.number, number, ADJUST_STEP * (mention.intensity or mood.intensity or NORMAL))
        raw["adjust"].append({"attribute": mention.attribute, "amount": mood.compare * abs(amount)})
    if not mentions and not keep:
        amount = _first_given(number, ADJUST_STEP * (mood.intensity or NORMAL))
        raw["adjust"].append({"attribute": None, "amount": mood.compare * abs(amount)})


def _first_given(*values: float | None) -> float:
    return next(value for value in values if value is not None)


def _explain_unknown(catalog: Catalog, term: Term) -> str:
    try:
        catalog[term.text]
    except UnknownAttributeError as error:
        return str(error)
    return ""
