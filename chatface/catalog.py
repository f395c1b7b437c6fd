"""The attribute catalog: the text-prompt edits ChatFace knows, read and validated from configs/attributes.yaml."""

import difflib
import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "configs" / "attributes.yaml"
CATEGORIES = (
    "expression", "hair", "age", "gender", "style", "glasses", "makeup", "eyes", "skin", "beard", "accessories",
)  # fmt: skip
_SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


class CatalogError(ValueError):
    """The attribute file is malformed; the message names the file, the entry and the problem."""


class UnknownAttributeError(KeyError):
    """`Catalog[name]` was given a name the catalog does not hold.

    A KeyError, as for any failed mapping lookup; the message suggests the closest names.
    """

    def __str__(self) -> str:
        # KeyError would print the repr of its message, quotes included.
        return str(self.args[0])


@dataclass(frozen=True)
class Attribute:
    """One text-prompt edit: the direction loss moves the image from the `source` text to the `target` text."""

    name: str
    category: str
    source: str
    target: str
    synonyms: tuple[str, ...]
    synth: bool


_FIELDS = tuple(field.name for field in fields(Attribute))


def _phrase_key(phrase: str) -> str:
    """The form in which names and synonyms are compared: "Curly_Hair" and "curly  hair" are the same phrase."""
    return " ".join(phrase.lower().replace("_", " ").split())


class Catalog:
    """The attributes in file order, by name (`catalog["smile"]`) or by any name or synonym (`lookup`)."""

    def __init__(self, attributes: Iterable[Attribute]) -> None:
        self._by_name = {attribute.name: attribute for attribute in attributes}
        self._by_phrase = {
            _phrase_key(phrase): attribute
            for attribute in self._by_name.values()
            for phrase in (attribute.name, *attribute.synonyms)
        }

    def __getitem__(self, name: str) -> Attribute:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownAttributeError(self._unknown_message(name)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Attribute]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    @property
    def synth_names(self) -> tuple[str, ...]:
        """The attributes the SynthFace world renders."""
        return tuple(attribute.name for attribute in self if attribute.synth)

    def lookup(self, phrase: str) -> Attribute | None:
        """The attribute whose name or synonym is `phrase` (ignoring case, spacing and underscores), else None."""
        return self._by_phrase.get(_phrase_key(phrase))

    def _unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(_phrase_key(name), self._by_phrase.keys(), n=5)
        suggestions = dict.fromkeys(self._by_phrase[phrase].name for phrase in close)  # ordered and deduplicated
        message = f"unknown attribute {name!r}"
        if suggestions:
            message += "; did you mean " + " or ".join(map(repr, suggestions)) + "?"
        return message


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read and validate an attribute file (by default the repository's configs/attributes.yaml).

    Raises CatalogError, naming the file, the entry and the problem, for anything malformed.
    """
    path = DEFAULT_PATH if path is None else Path(path)
    try:
        entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise CatalogError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(entries, list) or not entries:
        raise CatalogError(f"{path}: expected a non-empty list of attributes")
    attributes = [_parse_entry(path, index, entry) for index, entry in enumerate(entries)]
    _check_phrases_unique(path, attributes)
    return Catalog(attributes)


@functools.lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    """The repository's catalog, read once."""
    return load_catalog()


def _parse_entry(path: Path, index: int, entry: object) -> Attribute:
    if not isinstance(entry, dict):
        raise CatalogError(f"{path}: entry {index}: expected a mapping with the fields {', '.join(_FIELDS)}")
    if problem := _entry_problem(entry):
        raise CatalogError(f"{path}: {_label(index, entry.get('name'))}: {problem}")
    return Attribute(**{**entry, "synonyms": tuple(entry["synonyms"])})


def _entry_problem(entry: dict[object, object]) -> str | None:
    """What is wrong with one entry on its own, or None."""
    if unknown := [str(field) for field in entry if field not in _FIELDS]:
        return f"unknown field(s) {', '.join(unknown)}; the fields are {', '.join(_FIELDS)}"
    if missing := [field for field in _FIELDS if field not in entry]:
        return f"missing field(s) {', '.join(missing)}"
    name, category, source, target, synonyms, synth = (entry[field] for field in _FIELDS)
    if not isinstance(name, str) or not _SNAKE_CASE.fullmatch(name):
        return f"name {name!r} is not snake_case"
    if category not in CATEGORIES:
        return f"category {category!r} is not one of {', '.join(CATEGORIES)}"
    for field, text in (("source", source), ("target", target)):
        if not isinstance(text, str) or not text.strip():
            return f"{field} text must be a non-empty string, got {text!r}"
    if _phrase_key(source) == _phrase_key(target):
        return f"source and target are the same text {source!r}, so there is no edit direction"
    if not isinstance(synonyms, list) or not all(_is_lower_case_phrase(synonym) for synonym in synonyms):
        return f"synonyms must be a list of non-empty lower-case strings, got {synonyms!r}"
    if not isinstance(synth, bool):
        return f"synth must be true or false, got {synth!r}"
    return None


def _is_lower_case_phrase(synonym: object) -> bool:
    return isinstance(synonym, str) and bool(synonym.strip()) and synonym == synonym.lower()


def _check_phrases_unique(path: Path, attributes: list[Attribute]) -> None:
    """Every name and synonym must lead `Catalog.lookup` to exactly one attribute.

    Names are registered before synonyms, so that a synonym equal to a name is reported as such.
    """
    phrases = [("name", attribute.name, index, attribute) for index, attribute in enumerate(attributes)]
    phrases += [
        ("synonym", synonym, index, attribute)
        for index, attribute in enumerate(attributes)
        for synonym in attribute.synonyms
    ]
    owners: dict[str, str] = {}
    for kind, phrase, index, attribute in phrases:
        label = _label(index, attribute.name)
        if (key := _phrase_key(phrase)) in owners:
            raise CatalogError(f"{path}: {label}: {kind} {phrase!r} is already {owners[key]}")
        owners[key] = f"the name of {label}" if kind == "name" else f"a synonym of {label}"


def _label(index: int, name: object) -> str:
    return f"entry {index} ({name if isinstance(name, str) else 'unnamed'})"
