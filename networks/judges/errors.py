"""The one error every judge loader raises, and how it words the cause."""


class JudgeLoadError(ValueError):
    """A judge's weights file is missing, unreadable, truncated or made for another architecture."""


def short_reason(error: Exception) -> str:
    """An exception's message on one line, at most 300 characters: enough to say why a file did not load."""
    return " ".join(str(error).split())[:300]
