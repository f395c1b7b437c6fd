from pathlib import Path

import pytest
import yaml

from chat.intent import Command, ParseError
from chat.offline_parser import OfflineParser
from chat.prompt import DEMONSTRATIONS
from chat.vocabulary import LEXICON
from chatface.catalog import default_catalog

TABLE = yaml.safe_load((Path(__file__).parent / "data" / "chat_requests.yaml").read_text(encoding="utf-8"))
LAST = "last"  # in the table, the adjustment of "what changed last" (attribute null)


@pytest.fixture(scope="module")
def parser():
    return OfflineParser()


def read(intent) -> dict:
    """An intent in the table's terms, left-out keys omitted."""
    row = {
        "command": intent.command.value,
        "edits": {edit.attribute: edit.strength for edit in intent.edits},
        "adjust": {adjustment.attribute or LAST: adjustment.amount for adjustment in intent.adjust},
        "steps": intent.steps,
    }
    defaults = {"command": Command.EDIT.value, "edits": {}, "adjust": {}, "steps": None}
    return {key: value for key, value in row.items() if value != defaults[key]}


def test_the_table_has_at_least_100_requests():
    assert len(TABLE) >= 100
    assert len({row["request"] for row in TABLE}) == len(TABLE)


@pytest.mark.parametrize("row", [row for row in TABLE if "error" not in row], ids=lambda row: row["request"])
def test_requests_read_as_the_table_says(parser, row):
    expected = {key: value for key, value in row.items() if key != "request"}
    assert read(parser.parse(row["request"])) == expected


@pytest.mark.parametrize("row", [row for row in TABLE if "error" in row], ids=lambda row: row["request"] or "empty")
def test_requests_outside_the_catalog_or_the_bounds_are_refused_with_a_reason(parser, row):
    with pytest.raises(ParseError) as error:
        parser.parse(row["request"])
    assert row["error"] in str(error.value)


@pytest.mark.parametrize(("request_text", "answer"), DEMONSTRATIONS, ids=[text for text, _ in DEMONSTRATIONS])
def test_the_llm_demonstrations_read_the_same_offline(parser, request_text, answer):
    assert parser.parse(request_text).to_json() == answer


def test_no_vocabulary_word_hides_an_attribute_phrase():
    catalog = default_catalog()
    assert [phrase for phrase in LEXICON if catalog.lookup(phrase) is not None] == []


def test_parsing_is_deterministic(parser):
    request = "make her smile a bit and remove the glasses, keep the details"
    assert {parser.parse(request) for _ in range(3)} == {parser.parse(request)}
