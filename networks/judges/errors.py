"""The one error every judge loader raises."""


class JudgeLoadError(ValueError):
    """A judge's weights file is missing, unreadable, truncated or made for another architecture."""
