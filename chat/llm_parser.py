"""The LLM parser: any OpenAI-compatible server (OpenAI, vLLM, llama.cpp server, Ollama) through the `openai` client.

It asks for JSON under a schema, falling back to plain JSON mode and then to free text for servers that reject
those (HTTP 400), reads the answer tolerantly, validates it, and on an invalid answer sends the error back once.
The API key is read from the environment variable that the config names; it never appears in a log record, an
error message, a repr or a file.
"""

import json
import logging
import os
import re

import openai

from chat import prompt
from chat.intent import Intent, ParseError, intent_schema, validate_intent
from chat.plan import PlanError
from chatface.catalog import Catalog, default_catalog

MODEL_ENV = "CHATFACE_LLM_MODEL"
BASE_URL_ENV = "OPENAI_BASE_URL"
NO_KEY = "no-key"  # what to send when no key is set: local servers ignore it, OpenAI answers 401
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)
_REJECTED_FORMAT = (openai.BadRequestError, openai.UnprocessableEntityError)

log = logging.getLogger(__name__)


def configured_model(chat_cfg) -> str | None:
    """The model named in the config, else in $CHATFACE_LLM_MODEL, else None."""
    return chat_cfg.model or os.environ.get(MODEL_ENV) or None


class LlmParser:
    def __init__(
        self, model: str, base_url: str | None, api_key: str | None, timeout_s: float, retries: int,
        catalog: Catalog | None = None, key_env: str = "OPENAI_API_KEY",
    ) -> None:  # fmt: skip
        self.name = f"llm:{model}"
        self.model, self.timeout_s, self.retries, self._key_env = model, timeout_s, retries, key_env
        self._catalog = catalog or default_catalog()
        self._client = openai.OpenAI(
            base_url=base_url, api_key=api_key or NO_KEY, timeout=timeout_s, max_retries=retries
        )
        schema = {"name": "chatface_intent", "strict": True, "schema": intent_schema(self._catalog)}
        # The answer formats to try, best first; those the server rejects are dropped for good.
        self._formats: list[dict | None] = [
            {"type": "json_schema", "json_schema": schema}, {"type": "json_object"}, None
        ]

    @classmethod
    def from_config(cls, chat_cfg, catalog: Catalog | None = None) -> "LlmParser":
        """Model, base URL and key from `cfg.chat`, else $CHATFACE_LLM_MODEL, $OPENAI_BASE_URL and the key variable."""
        return cls(
            model=configured_model(chat_cfg),
            base_url=chat_cfg.base_url or os.environ.get(BASE_URL_ENV) or None,
            api_key=os.environ.get(chat_cfg.api_key_env),
            timeout_s=chat_cfg.timeout_s,
            retries=chat_cfg.retries,
            catalog=catalog,
            key_env=chat_cfg.api_key_env,
        )

    @property
    def base_url(self) -> str:
        return str(self._client.base_url)

    def __repr__(self) -> str:
        return f"LlmParser(model={self.model!r}, base_url={self.base_url!r})"

    def parse(self, request: str) -> Intent:
        messages = prompt.messages(request, self._catalog)
        answer = self._ask(messages)
        try:
            intent = self._read(answer)
        except PlanError as error:
            log.info("the LLM's answer was invalid (%s); asking once more", self._redacted(str(error)))
            messages += [{"role": "assistant", "content": answer}, prompt.repair_message(str(error))]
            answer = self._ask(messages)
            try:
                intent = self._read(answer)
            except PlanError as second_error:
                raise ParseError(self._redacted(
                    f"the LLM's answer to {request!r} was invalid twice: {second_error}"
                )) from None  # fmt: skip
        if intent.is_empty():
            raise ParseError(f"the LLM found no attribute of the catalog in {request!r}")
        return intent

    def _read(self, answer: str) -> Intent:
        return validate_intent(extract_json(answer), self._catalog)

    def _ask(self, messages: list[dict]) -> str:
        """The text of the model's answer, trying the answer formats the server has not rejected yet."""
        while True:
            answer_format = self._formats[0]
            extra = {} if answer_format is None else {"response_format": answer_format}
            try:
                completion = self._client.chat.completions.create(
                    model=self.model, messages=messages, temperature=0, **extra
                )
            except _REJECTED_FORMAT as error:
                if answer_format is None:
                    raise ParseError(self._server_error(error)) from None
                self._formats.pop(0)
                log.info("the LLM server rejected response_format %s (HTTP %d); trying %s",
                         answer_format["type"], error.status_code, self._formats[0] or "free text")
            except openai.APIError as error:
                raise ParseError(self._server_error(error)) from None
            else:
                return completion.choices[0].message.content or ""

    def _server_error(self, error: openai.APIError) -> str:
        where = f"the LLM server at {self.base_url}"
        attempts = f"{self.retries + 1} attempt{'s' if self.retries else ''}"
        if isinstance(error, openai.APITimeoutError):
            message = f"{where} did not answer within {self.timeout_s} s ({attempts})"
        elif isinstance(error, openai.APIConnectionError):
            message = f"cannot reach {where} ({attempts}): {error.message}"
        elif isinstance(error, openai.AuthenticationError):
            message = f"{where} refused the API key (HTTP 401); is ${self._key_env} set?"
        elif isinstance(error, openai.APIStatusError):
            message = f"{where} answered HTTP {error.status_code} ({attempts}): {error.message}"
        else:
            message = f"{where} sent an answer that is not a chat completion: {error.message}"
        return self._redacted(message)

    def _redacted(self, text: str) -> str:
        return text.replace(self._client.api_key, "***") if self._client.api_key else text


def extract_json(answer: str) -> object:
    """The first JSON object in an answer, inside a ``` fence if there is one; raises `PlanError`."""
    fenced = _FENCE.search(answer)
    text = fenced.group(1) if fenced else answer
    start = text.find("{")
    if start < 0:
        raise PlanError(f"no JSON object in the answer {_excerpt(answer)!r}")
    try:
        return json.JSONDecoder().raw_decode(text[start:])[0]
    except json.JSONDecodeError as error:
        raise PlanError(f"broken JSON in the answer ({error.msg}): {_excerpt(text[start:])!r}") from None


def _excerpt(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
