"""Captions from labels, varied in wording: "a smiling person with curly red hair and glasses".

For training a CLIP judge, captions can also name absent attributes ("..., without a beard"), so that the
judge learns what "without X" means: its zero-shot test asks "a face with X" against "a face without X".
"""

import numpy as np

_EXPRESSION = {
    "smile": ["smiling", "happy", "grinning"], "surprised": ["surprised", "astonished", "open-mouthed"],
    "sad": ["sad", "unhappy", "gloomy"], "angry": ["angry", "frowning", "furious"],
}
_SKIN = {"tanned": ["tanned", "sun-tanned"], "pale": ["pale", "pale-skinned"]}
_HAIR_COLOUR = {"black_hair": "black", "brown_hair": "brown", "blond_hair": "blond", "red_hair": "red",
                "grey_hair": "grey"}
_EYES = {"blue_eyes": "blue eyes", "green_eyes": "green eyes", "brown_eyes": "brown eyes"}
_EXTRAS = {
    "glasses": ["glasses", "eyeglasses"], "sunglasses": ["sunglasses", "dark sunglasses"],
    "makeup": ["makeup", "red lipstick"], "eyeshadow": ["eyeshadow", "coloured eyeshadow"],
    "beard": ["a beard", "a full beard"], "mustache": ["a mustache", "a moustache"],
    "wrinkles": ["wrinkles", "a wrinkled face"], "earrings": ["earrings", "round earrings"],
}
_NOUNS = ["person", "face"]
# Every attribute as the object of "with" / "without".
NOUN_PHRASES = {
    "smile": "a smile", "surprised": "a surprised look", "sad": "a sad look", "angry": "an angry look",
    "glasses": "glasses", "sunglasses": "sunglasses", "black_hair": "black hair", "brown_hair": "brown hair",
    "blond_hair": "blond hair", "red_hair": "red hair", "grey_hair": "grey hair", "blue_eyes": "blue eyes",
    "green_eyes": "green eyes", "brown_eyes": "brown eyes", "tanned": "a tan", "pale": "pale skin",
    "curly_hair": "curly hair", "bangs": "bangs", "long_hair": "long hair", "makeup": "makeup",
    "eyeshadow": "eyeshadow", "beard": "a beard", "mustache": "a mustache", "wrinkles": "wrinkles",
    "earrings": "earrings",
}
_PREFIXES = ["", "a photo of ", "a portrait of "]


def caption(active: frozenset[str], rng: np.random.Generator, negatives: int = 0) -> str:
    """Describe every active attribute; wording and order are drawn from rng. With `negatives`, up to that many
    absent attributes are appended as "without X", and half the time the active ones are listed as "with X"."""
    if negatives and rng.random() < 0.5:
        present = [NOUN_PHRASES[name] for name in NOUN_PHRASES if name in active]
        rng.shuffle(present)
        return f"a {_NOUNS[rng.integers(2)]} with {_join(present)}" + _absent(active, rng, negatives)
    text = _described(active, rng)
    return text + _absent(active, rng, negatives) if negatives else text


def _absent(active: frozenset[str], rng: np.random.Generator, count: int) -> str:
    absent = [name for name in NOUN_PHRASES if name not in active]
    chosen = rng.choice(absent, size=rng.integers(count + 1), replace=False)
    return "".join(f", without {NOUN_PHRASES[name]}" for name in chosen)


def _described(active: frozenset[str], rng: np.random.Generator) -> str:
    def pick(options: list[str]) -> str:
        return options[rng.integers(len(options))]

    adjectives = [pick(words) for table in (_EXPRESSION, _SKIN) for name, words in table.items() if name in active]
    noun = pick(_NOUNS)
    subject = " ".join(adjectives + [noun])
    article = "an" if subject[0] in "aeiou" else "a"
    details = [_hair_phrase(active)] + [_EYES[n] for n in _EYES if n in active]
    extras = [pick(words) for name, words in _EXTRAS.items() if name in active]
    rng.shuffle(extras)
    return f"{pick(_PREFIXES)}{article} {subject} with {_join(details + extras)}"


def _hair_phrase(active: frozenset[str]) -> str:
    words = [w for name, w in (("long_hair", "long"), ("curly_hair", "curly")) if name in active]
    words.append(next(c for n, c in _HAIR_COLOUR.items() if n in active))
    phrase = " ".join(words) + " hair"
    return phrase + " and bangs" if "bangs" in active else phrase


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
