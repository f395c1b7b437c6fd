"""The LLM parser against a real OpenAI-compatible HTTP server on 127.0.0.1, through the real `openai` client."""

import json
import logging
import socket
import time
import traceback

import pytest

from chat.intent import Adjustment, Command, Intent, ParseError
from chat.llm_parser import LlmParser, extract_json
from chat.offline_parser import OfflineParser
from chat.parsers import make_parser
from chat.plan import Edit, PlanError
from chatface.config import ConfigError, load_config
from llm_server import ScriptedServer, answer, failure, rejecting

SECRET = "sk-test-5f3a9c1e7b2d4f60-do-not-leak"
KEY_ENV = "CHATFACE_TEST_API_KEY"
SMILE_AND_GLASSES = {
    "command": "edit", "adjust": [], "steps": None,
    "edits": [{"attribute": "smile", "strength": 1.0}, {"attribute": "glasses", "strength": 1.0}],
}  # fmt: skip
SMILE_AND_GLASSES_INTENT = Intent(edits=(Edit("smile", 1.0), Edit("glasses", 1.0)))


@pytest.fixture
def server():
    scripted = ScriptedServer()
    yield scripted
    scripted.stop()


@pytest.fixture
def make_llm(server, monkeypatch):
    """An LLM parser for `server`, built from the config as the CLI builds it."""
    monkeypatch.setenv(KEY_ENV, SECRET)

    def make(timeout_s: float = 5.0, retries: int = 0) -> LlmParser:
        cfg = load_config([
            "chat.parser=llm", "chat.model=test-model", f"chat.base_url={server.url}", f"chat.timeout_s={timeout_s}",
            f"chat.retries={retries}", f"chat.api_key_env={KEY_ENV}",
        ])  # fmt: skip
        parser = make_parser(cfg.chat)
        assert isinstance(parser, LlmParser)
        return parser

    return make


def last_user_message(body: dict) -> str:
    return body["messages"][-1]["content"]


def test_a_good_answer_becomes_an_intent(server, make_llm):
    server.script = [answer(SMILE_AND_GLASSES)]
    assert make_llm().parse("make her smile and add glasses") == SMILE_AND_GLASSES_INTENT
    (body,) = server.bodies
    assert body["model"] == "test-model" and body["temperature"] == 0
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["required"] == ["command", "edits", "adjust", "steps"]
    system = body["messages"][0]
    assert system["role"] == "system" and "- curly_hair: curly, curls" in system["content"]
    assert last_user_message(body) == "make her smile and add glasses"
    assert server.authorizations == [f"Bearer {SECRET}"]  # the key goes to the server, and nowhere else


def test_adjustments_undo_and_reset_come_through(server, make_llm):
    server.script = [
        answer({"command": "edit", "edits": [], "adjust": [{"attribute": None, "amount": 0.25}], "steps": None}),
        answer({"command": "undo", "edits": [], "adjust": [], "steps": None}),
        answer({"command": "reset", "edits": [{"attribute": "blonde", "strength": 1}], "adjust": [], "steps": 20}),
    ]
    parser = make_llm()
    assert parser.parse("a bit more") == Intent(adjust=(Adjustment(None, 0.25),))
    assert parser.parse("undo") == Intent(Command.UNDO)
    assert parser.parse("start over, blond") == Intent(Command.RESET, (Edit("blond_hair", 1.0),), steps=20)


def test_an_answer_wrapped_in_prose_and_fences_is_read(server, make_llm):
    server.script = [answer(f"Sure! Here is the plan:\n```json\n{json.dumps(SMILE_AND_GLASSES)}\n```\nEnjoy {{:)}}")]
    assert make_llm().parse("smile and glasses") == SMILE_AND_GLASSES_INTENT


def test_broken_json_gets_one_repair_round(server, make_llm):
    server.script = [answer('{"command": "edit", "edits": [{"attribute": "smile", "strength": 1.0'),
                     answer(SMILE_AND_GLASSES)]
    assert make_llm().parse("smile and glasses") == SMILE_AND_GLASSES_INTENT
    first, repair = server.bodies
    assert repair["messages"][:-2] == first["messages"]
    assert repair["messages"][-2]["role"] == "assistant"
    assert "broken JSON" in last_user_message(repair) and "only the JSON object" in last_user_message(repair)


def test_broken_json_twice_is_a_clear_error(server, make_llm):
    server.script = [answer("I cannot do that."), answer('{"command": "edit", "edits": [')]
    with pytest.raises(ParseError, match=r"answer to 'smile' was invalid twice: broken JSON in the answer"):
        make_llm().parse("smile")
    assert len(server.bodies) == 2


def test_an_unknown_attribute_is_sent_back_with_suggestions(server, make_llm):
    unknown = {**SMILE_AND_GLASSES, "edits": [{"attribute": "smiling_face", "strength": 1.0}]}
    server.script = [answer(unknown), answer(SMILE_AND_GLASSES)]
    assert make_llm().parse("smile and glasses") == SMILE_AND_GLASSES_INTENT
    assert "unknown attribute 'smiling_face'; did you mean 'smile'" in last_user_message(server.bodies[1])


def test_an_unknown_attribute_twice_names_it(server, make_llm):
    unknown = {**SMILE_AND_GLASSES, "edits": [{"attribute": "tattoo", "strength": 1.0}]}
    server.script = [answer(unknown), answer(unknown)]
    with pytest.raises(ParseError, match=r"edits\[0\]\.attribute: unknown attribute 'tattoo'"):
        make_llm().parse("add a tattoo")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"edits": [{"attribute": "smile", "strength": 5.0}]}, r"edits\[0\]\.strength: 5\.0 is outside \[-2\.0, 2"),
        ({"edits": [{"attribute": "smile", "strength": 1.0}], "steps": 500}, r"steps: 500 is outside \[2, 50\]"),
        ({"adjust": [{"attribute": None, "amount": -9}]}, r"adjust\[0\]\.amount: -9 is outside"),
    ],
)
def test_out_of_range_values_are_repaired_once_then_refused(server, make_llm, bad, message):
    server.script = [answer(bad), answer(SMILE_AND_GLASSES)]
    assert make_llm().parse("smile and glasses") == SMILE_AND_GLASSES_INTENT
    server.script = [answer(bad), answer(bad)]
    with pytest.raises(ParseError, match=message):
        make_llm().parse("smile and glasses")


def test_an_answer_with_no_attribute_is_refused_without_a_repair_round(server, make_llm):
    server.script = [answer({"command": "edit", "edits": [], "adjust": [], "steps": None})]
    with pytest.raises(ParseError, match=r"the LLM found no attribute of the catalog in 'make it cyberpunk'"):
        make_llm().parse("make it cyberpunk")
    assert len(server.bodies) == 1


def test_a_slow_server_times_out_with_a_clear_error(server, make_llm):
    server.script = [answer(SMILE_AND_GLASSES, delay=30.0)]
    started = time.monotonic()
    with pytest.raises(ParseError, match=r"did not answer within 0\.5 s \(1 attempt\)"):
        make_llm(timeout_s=0.5, retries=0).parse("smile")
    assert time.monotonic() - started < 5.0


def test_server_errors_are_retried(server, make_llm):
    server.script = [failure(500), failure(503), answer(SMILE_AND_GLASSES)]
    assert make_llm(retries=2).parse("smile and glasses") == SMILE_AND_GLASSES_INTENT
    assert len(server.bodies) == 3


def test_server_errors_past_the_retries_are_a_clear_error(server, make_llm):
    server.script = [failure(500, "the GPU fell over")] * 3
    started = time.monotonic()
    with pytest.raises(ParseError, match=r"answered HTTP 500 \(3 attempts\): .*the GPU fell over"):
        make_llm(retries=2).parse("smile")
    assert len(server.bodies) == 3 and time.monotonic() - started < 10.0


def test_a_server_without_json_schema_falls_back_to_json_mode(server, make_llm):
    server.script = [rejecting("json_schema", then=answer(SMILE_AND_GLASSES)) for _ in range(3)]
    parser = make_llm()
    assert parser.parse("smile and glasses") == SMILE_AND_GLASSES_INTENT
    assert [body["response_format"]["type"] for body in server.bodies] == ["json_schema", "json_object"]
    assert parser.parse("smile and glasses") == SMILE_AND_GLASSES_INTENT
    assert server.bodies[-1]["response_format"]["type"] == "json_object"  # remembered: no second rejection


def test_a_server_without_any_json_mode_gets_free_text(server, make_llm):
    fenced = answer(f"```\n{json.dumps(SMILE_AND_GLASSES)}\n```")
    server.script = [rejecting("json_schema", "json_object", then=fenced) for _ in range(3)]
    assert make_llm().parse("smile and glasses") == SMILE_AND_GLASSES_INTENT
    assert "response_format" not in server.bodies[-1] and len(server.bodies) == 3


def test_an_unreachable_server_is_a_clear_error(monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends: nobody listens there
    parser = LlmParser("test-model", f"http://127.0.0.1:{port}/v1", SECRET, timeout_s=2.0, retries=0)
    with pytest.raises(ParseError, match=rf"cannot reach the LLM server at http://127\.0\.0\.1:{port}/v1/"):
        parser.parse("smile")


def test_the_api_key_never_reaches_an_error_a_log_or_a_repr(server, make_llm, caplog):
    caplog.set_level(logging.DEBUG)
    server.script = [
        failure(401, f"Incorrect API key provided: {SECRET}"),  # a server that echoes the key
        failure(500, f"internal error for key {SECRET}"),
        answer(f"no JSON here, only {SECRET}"), answer(f"still no JSON, {SECRET}"),
        answer('{"edits": [{"attribute": "' + SECRET + '", "strength": 1}]}'), answer(SMILE_AND_GLASSES),
    ]  # fmt: skip
    parser = make_llm()
    errors = []
    for _ in range(3):
        with pytest.raises(ParseError) as error:
            parser.parse("smile")
        errors.append(error.value)
    assert parser.parse("smile") == SMILE_AND_GLASSES_INTENT
    assert f"${KEY_ENV} set?" in str(errors[0])
    texts = [str(error) for error in errors] + ["".join(traceback.format_exception(error)) for error in errors]
    texts += [record.getMessage() for record in caplog.records] + [repr(parser), str(parser)]
    assert any("asking once more" in record.getMessage() for record in caplog.records)
    assert [text for text in texts if SECRET in text] == []


def test_extract_json_takes_the_first_object():
    assert extract_json('noise {"a": {"b": 1}} {"c": 2}') == {"a": {"b": 1}}
    with pytest.raises(PlanError, match="no JSON object in the answer"):
        extract_json("nothing here")


def test_auto_picks_the_llm_only_when_a_model_is_configured(monkeypatch):
    monkeypatch.delenv("CHATFACE_LLM_MODEL", raising=False)
    assert isinstance(make_parser(load_config().chat), OfflineParser)
    assert isinstance(make_parser(load_config(["chat.model=my-model"]).chat), LlmParser)
    monkeypatch.setenv("CHATFACE_LLM_MODEL", "env-model")
    parser = make_parser(load_config().chat)
    assert isinstance(parser, LlmParser) and parser.name == "llm:env-model"
    assert isinstance(make_parser(load_config(["chat.parser=offline"]).chat), OfflineParser)


def test_asking_for_the_llm_without_a_model_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("CHATFACE_LLM_MODEL", raising=False)
    with pytest.raises(ConfigError, match=r"chat\.parser=llm needs a model: set chat\.model=NAME or \$CHATFACE_LLM"):
        make_parser(load_config(["chat.parser=llm"]).chat)
    with pytest.raises(ConfigError, match=r"chat.parser: 'gpt' is not one of auto, offline, llm"):
        make_parser(load_config(["chat.parser=gpt"]).chat)


def test_base_url_and_model_come_from_the_environment_when_the_config_leaves_them_out(monkeypatch):
    monkeypatch.setenv("CHATFACE_LLM_MODEL", "env-model")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    parser = make_parser(load_config().chat)
    assert parser.model == "env-model" and parser.base_url == "http://127.0.0.1:9/v1/"
