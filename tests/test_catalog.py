from pathlib import Path

import pytest
import yaml

from chatface.catalog import CATEGORIES, CatalogError, UnknownAttributeError, default_catalog, load_catalog

SYNTHFACE_ATTRIBUTES = {
    "smile", "surprised", "sad", "angry", "glasses", "sunglasses", "black_hair", "brown_hair", "blond_hair",
    "red_hair", "grey_hair", "curly_hair", "bangs", "long_hair", "blue_eyes", "green_eyes", "brown_eyes", "makeup",
    "eyeshadow", "beard", "mustache", "wrinkles", "tanned", "pale", "earrings",
}  # fmt: skip
DIFFUSIONCLIP_PAIRS = {
    "smile": ("face", "smiling face"),
    "makeup": ("person", "person with makeup"),
    "curly_hair": ("person", "person with curly hair"),
    "tanned": ("face", "tanned face"),
}
VALID_ENTRIES = [
    dict(name="smile", category="expression", source="face", target="smiling face", synonyms=["grin"], synth=True),
    dict(name="glasses", category="glasses", source="face", target="face with glasses", synonyms=["specs"], synth=True),
]
MISSING = object()


@pytest.fixture(scope="module")
def catalog():
    return default_catalog()


def write_catalog(directory: Path, entries: object) -> Path:
    path = directory / "attributes.yaml"
    path.write_text(yaml.safe_dump(entries), encoding="utf-8")
    return path


def test_catalog_holds_the_papers_54_attributes_in_every_category(catalog):
    assert len(catalog) == len(set(catalog.names)) == 54
    assert {attribute.category for attribute in catalog} == set(CATEGORIES)


def test_synth_flags_exactly_the_attributes_synthface_renders(catalog):
    assert set(catalog.synth_names) == SYNTHFACE_ATTRIBUTES


@pytest.mark.parametrize("name", DIFFUSIONCLIP_PAIRS)
def test_diffusionclip_pairs_are_copied_exactly(catalog, name):
    assert (catalog[name].source, catalog[name].target) == DIFFUSIONCLIP_PAIRS[name]


def test_every_attribute_has_two_to_six_synonyms(catalog):
    assert all(2 <= len(attribute.synonyms) <= 6 for attribute in catalog)


def test_catalog_is_a_read_only_sequence_of_attributes(catalog):
    assert "smile" in catalog and "smlie" not in catalog
    assert [attribute.name for attribute in catalog] == list(catalog.names)
    with pytest.raises(AttributeError):
        catalog["smile"].target = "frowning face"


def test_unknown_name_suggests_the_closest_names(catalog):
    with pytest.raises(UnknownAttributeError, match=r"unknown attribute 'smlie'; did you mean 'smile'") as error:
        catalog["smlie"]
    assert isinstance(error.value, KeyError)


@pytest.mark.parametrize(
    ("phrase", "name"),
    [("smile", "smile"), ("Grin", "smile"), ("curly hair", "curly_hair"), ("  Five O'Clock  Shadow", "stubble")],
)
def test_lookup_finds_names_and_synonyms_ignoring_case_and_spacing(catalog, phrase, name):
    assert catalog.lookup(phrase) is catalog[name]


def test_lookup_of_an_unknown_phrase_is_none(catalog):
    assert catalog.lookup("purple elephant") is None


def test_load_catalog_reads_a_valid_file(tmp_path):
    catalog = load_catalog(write_catalog(tmp_path, VALID_ENTRIES))
    assert catalog.names == ("smile", "glasses")
    assert catalog["glasses"].synonyms == ("specs",)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        pytest.param({"name": "smile"}, "name 'smile' is already the name of entry 0 (smile)", id="duplicate-name"),
        pytest.param({"name": "Big Glasses"}, "name 'Big Glasses' is not snake_case", id="name-not-snake-case"),
        pytest.param({"category": "eyewear"}, "category 'eyewear' is not one of", id="unknown-category"),
        pytest.param({"source": "  "}, "source text must be a non-empty string", id="blank-source"),
        pytest.param({"target": None}, "target text must be a non-empty string", id="no-target"),
        pytest.param({"target": "Face"}, "source and target are the same text", id="source-is-target"),
        pytest.param({"synonyms": ["grin"]}, "synonym 'grin' is already a synonym of entry 0", id="shared-synonym"),
        pytest.param({"synonyms": ["specs", "specs"]}, "synonym 'specs' is already a synonym", id="repeated-synonym"),
        pytest.param({"synonyms": ["smile"]}, "synonym 'smile' is already the name of entry 0", id="synonym-is-a-name"),
        pytest.param({"synonyms": ["Specs"]}, "non-empty lower-case strings", id="upper-case-synonym"),
        pytest.param({"synonyms": "specs"}, "synonyms must be a list", id="synonyms-not-a-list"),
        pytest.param({"synth": "yes"}, "synth must be true or false, got 'yes'", id="synth-not-bool"),
        pytest.param({"colour": "red"}, "unknown field(s) colour", id="unknown-field"),
        pytest.param({"synth": MISSING}, "missing field(s) synth", id="missing-field"),
    ],
)
def test_validation_names_the_file_the_entry_and_the_problem(tmp_path, changes, problem):
    broken = {**VALID_ENTRIES[1], **changes}
    path = write_catalog(tmp_path, [VALID_ENTRIES[0], {key: val for key, val in broken.items() if val is not MISSING}])
    with pytest.raises(CatalogError) as error:
        load_catalog(path)
    assert str(error.value).startswith(f"{path}: entry 1 (")
    assert problem in str(error.value)


@pytest.mark.parametrize("text", ["[]", "name: smile", "- [smile", "- just a string"])
def test_a_file_that_is_not_a_list_of_entries_is_rejected(tmp_path, text):
    path = tmp_path / "attributes.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError, match="attributes.yaml"):
        load_catalog(path)
