"""Captions from labels, varied in wording: "a smiling person with curly red hair and glasses"."""

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
_PREFIXES = ["", "a photo of ", "a portrait of "]


def caption(active: frozenset[str], rng: np.random.Generator) -> str:
    """Describe every active attribute; wording and order are drawn from rng."""
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
