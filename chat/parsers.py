"""Which parser a configuration asks for: `cfg.chat.parser` is "auto", "offline" or "llm"."""

from chat.intent import Parser
from chat.llm_parser import MODEL_ENV, LlmParser, configured_model
from chat.offline_parser import OfflineParser
from chatface.catalog import Catalog
from chatface.config import ConfigError

PARSER_CHOICES = ("auto", "offline", "llm")


def make_parser(chat_cfg, catalog: Catalog | None = None) -> Parser:
    """"auto" is the LLM when a model is set (chat.model or $CHATFACE_LLM_MODEL), else the offline parser."""
    choice = chat_cfg.parser
    if choice not in PARSER_CHOICES:
        raise ConfigError(f"chat.parser: {choice!r} is not one of {', '.join(PARSER_CHOICES)}")
    model = configured_model(chat_cfg)
    if choice == "llm" and model is None:
        raise ConfigError(f"chat.parser=llm needs a model: set chat.model=NAME or ${MODEL_ENV}")
    if choice == "offline" or model is None:
        return OfflineParser(catalog)
    return LlmParser.from_config(chat_cfg, catalog)
