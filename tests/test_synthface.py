"""SynthFace: deterministic renders, exact class maps, attributes that own their regions, captions, data splits."""

import re

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import binary_dilation
from torch.utils.data import DistributedSampler

from datamodules.synthface import SynthFaceDataModule, SynthFaceDataset
from datamodules.synthface_cache import CachedSynthFace, render_cache
from synthface import ATTRIBUTES, CLASS_NAMES, NUM_CLASSES, Face, Identity, sample_face, to_labels, with_attribute
from synthface.attributes import GROUPS, OWNED_CLASSES
from synthface.captions import caption
from synthface.preview import preview_grid

# What sunglasses legitimately hide: with them on, these attributes change no pixel.
HIDDEN_BY_SUNGLASSES = frozenset({*GROUPS["eye_colour"].members, "eyeshadow"})
# Faces for the ownership test: a dozen at 64 px and a couple at 128 px.
OWNERSHIP_FACES = [(64, sample_face(100 + i, 900 + i)) for i in range(12)] + \
                  [(128, sample_face(200 + i, 950 + i)) for i in range(2)]
# Words a caption must use for an attribute that is on, and must not use when it is off.
CAPTION_WORDS = {
    "smile": r"smiling|happy|grinning", "surprised": r"surprised|astonished|open-mouthed",
    "sad": r"sad|unhappy|gloomy", "angry": r"angry|frowning|furious",
    "glasses": r"(eye)?glasses", "sunglasses": r"sunglasses",
    "black_hair": r"black hair", "brown_hair": r"brown hair", "blond_hair": r"blond hair", "red_hair": r"red hair",
    "grey_hair": r"grey hair", "blue_eyes": r"blue eyes", "green_eyes": r"green eyes", "brown_eyes": r"brown eyes",
    "tanned": r"(sun-)?tanned", "pale": r"pale(-skinned)?", "curly_hair": r"curly", "bangs": r"bangs",
    "long_hair": r"long", "makeup": r"makeup|lipstick", "eyeshadow": r"eyeshadow", "beard": r"beard",
    "mustache": r"mustache|moustache", "wrinkles": r"wrinkles|wrinkled", "earrings": r"earrings",
}


def test_a_face_renders_byte_identical_every_time():
    first, again = sample_face(3, 11).render(64), sample_face(3, 11).render(64)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])


@pytest.mark.parametrize("size", [64, 128, 256])
def test_renders_have_the_asked_size_and_valid_classes(size):
    image, classes = sample_face(5, 21).render(size)
    assert image.shape == (size, size, 3) and image.dtype == np.uint8
    assert classes.shape == (size, size) and classes.dtype == np.uint8
    assert classes.max() < NUM_CLASSES


def test_every_class_appears_among_a_few_dozen_faces():
    seen = set().union(*(np.unique(sample_face(i, i).render(64)[1]).tolist() for i in range(36)))
    assert {CLASS_NAMES[c] for c in seen} == set(CLASS_NAMES)


def test_ten_thousand_identity_ids_are_ten_thousand_different_people():
    vectors = np.stack([Identity.from_id(i).as_vector() for i in range(10_000)])
    assert len(np.unique(vectors, axis=0)) == 10_000


def toggled(face: Face, name: str) -> tuple[Face, Face]:
    """The face with `name` on (in sight), and the same face with it switched off again."""
    on = face.with_attribute(name, True)
    if name in HIDDEN_BY_SUNGLASSES:
        on = on.with_attribute("sunglasses", False)
    return on, on.with_attribute(name, False)


@pytest.mark.parametrize("name", ATTRIBUTES)
def test_an_attribute_changes_only_the_pixels_of_its_own_classes(name):
    owned_classes = list(OWNED_CLASSES[name])
    changed_area = []
    for size, face in OWNERSHIP_FACES:
        on, off = toggled(face, name)
        (image_on, map_on), (image_off, map_off) = on.render(size), off.render(size)
        changed = (image_on != image_off).any(axis=-1)
        owned = np.isin(map_on, owned_classes) | np.isin(map_off, owned_classes)
        # Anti-aliasing may blend an owned region into the pixels around it.
        stray = changed & ~binary_dilation(owned, structure=np.ones((3, 3), bool))
        assert not stray.any(), (f"{name} changed {stray.sum()} pixels outside "
                                 f"{[CLASS_NAMES[c] for c in owned_classes]} of {on} at {size} px")
        assert changed.any(), f"{name} is invisible on {on} at {size} px"
        changed_area.append(changed.sum() * (64 / size) ** 2)
    assert np.mean(changed_area) >= 5, f"{name} changes {np.mean(changed_area):.1f} pixels of a 64 px face on average"


def test_switching_on_a_group_member_replaces_its_siblings():
    active = frozenset({"brown_hair", "glasses", "smile"})
    assert with_attribute(active, "red_hair") == {"red_hair", "glasses", "smile"}
    assert with_attribute(active, "sunglasses") == {"brown_hair", "sunglasses", "smile"}
    assert with_attribute(active, "curly_hair") == active | {"curly_hair"}


def test_switching_off_a_required_member_falls_back_and_an_optional_one_leaves_none():
    assert with_attribute(frozenset({"blond_hair", "blue_eyes"}), "blond_hair", False) == {"brown_hair", "blue_eyes"}
    assert with_attribute(frozenset({"brown_hair", "blue_eyes"}), "brown_hair", False) == {"black_hair", "blue_eyes"}
    assert with_attribute(frozenset({"black_hair", "brown_eyes"}), "brown_eyes", False) == {"black_hair", "blue_eyes"}
    assert with_attribute(frozenset({"black_hair", "brown_eyes", "sad"}), "sad", False) == {"black_hair", "brown_eyes"}
    assert with_attribute(frozenset({"black_hair"}), "beard", False) == {"black_hair"}


def test_random_toggles_keep_every_group_consistent():
    rng = np.random.default_rng(0)
    for i in range(200):
        face = sample_face(i, i)
        for _ in range(5):
            face = face.with_attribute(ATTRIBUTES[rng.integers(len(ATTRIBUTES))], bool(rng.integers(2)))
        for group in GROUPS.values():
            count = len(face.attributes & set(group.members))
            assert count == 1 if group.required else count <= 1, face


def test_an_unknown_attribute_is_refused():
    with pytest.raises(ValueError, match="does not render 'freckles'"):
        with_attribute(frozenset({"black_hair"}), "freckles")


def test_labels_are_one_hot_over_all_attributes():
    labels = to_labels(frozenset({"smile", "red_hair"}))
    assert labels.shape == (len(ATTRIBUTES),) and labels.dtype == np.float32
    assert {ATTRIBUTES[i] for i in np.flatnonzero(labels)} == {"smile", "red_hair"}


@pytest.mark.parametrize("name", ATTRIBUTES)
def test_a_caption_mentions_an_attribute_exactly_when_it_is_on(name):
    words = re.compile(rf"\b({CAPTION_WORDS[name]})\b")
    for i in range(8):
        face, rng = sample_face(i, 40 + i), np.random.default_rng(i)
        on, off = toggled(face, name)
        text_on, text_off = caption(on.attributes, rng), caption(off.attributes, rng)
        assert words.search(text_on), f"{name} on, but: {text_on!r}"
        assert not words.search(text_off), f"{name} off, but: {text_off!r}"


def test_captions_vary_with_the_rng_and_repeat_with_its_seed():
    active = sample_face(1, 1).attributes | {"glasses", "smile", "beard"}
    texts = {caption(active, np.random.default_rng(seed)) for seed in range(10)}
    assert len(texts) > 3
    assert caption(active, np.random.default_rng(4)) == caption(active, np.random.default_rng(4))


@pytest.fixture(scope="module")
def data() -> SynthFaceDataModule:
    return SynthFaceDataModule(image_size=64, batch_size=4, num_workers=0, train_identities=50, train_samples=400,
                               val_faces=10, test_faces=12)


def test_splits_hold_different_people(data):
    ids = {name: {dataset.face(i).identity_id for i in range(0, len(dataset), 3)}
           for name, dataset in (("train", data.train_set), ("val", data.val_set), ("test", data.test_set))}
    assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"] and not ids["val"] & ids["test"]
    assert len(ids["train"]) == 50
    assert data.val_set[3]["identity"] == data.val_set.face(3).identity_id


@pytest.mark.parametrize("split", ["val", "test"])
def test_held_out_items_are_fixed(data, split):
    dataset = getattr(data, f"{split}_set")
    first, again = dataset[7], dataset[7]
    assert torch.equal(first["image"], again["image"]) and torch.equal(first["mask"], again["mask"])
    assert first["caption"] == again["caption"] and first["identity"] == again["identity"]


def test_a_training_batch_has_images_masks_labels_identities_and_captions(data):
    batch = next(iter(data.train_dataloader()))
    assert batch["image"].shape == (4, 3, 64, 64) and batch["image"].dtype == torch.float32
    assert batch["image"].min() >= -1 and batch["image"].max() <= 1 and batch["image"].std() > 0.1
    assert batch["mask"].shape == (4, 64, 64) and batch["mask"].dtype == torch.long
    assert 0 <= batch["mask"].min() and batch["mask"].max() < NUM_CLASSES
    assert batch["labels"].shape == (4, len(ATTRIBUTES))
    assert batch["identity"].shape == (4,)
    assert len(batch["caption"]) == 4 and all(isinstance(text, str) and text for text in batch["caption"])


def test_two_ddp_ranks_see_every_validation_face_exactly_once(data):
    seen = [data.val_set.face(i).identity_id for rank in range(2)
            for i in DistributedSampler(data.val_set, num_replicas=2, rank=rank, shuffle=False)]
    assert sorted(seen) == sorted(data.val_set.face(i).identity_id for i in range(len(data.val_set)))
    assert len(set(seen)) == len(data.val_set)


def test_the_preview_is_a_png_grid_of_four_faces_a_row(tmp_path):
    sizes = {}
    for count in (4, 5):
        with Image.open(preview_grid(tmp_path / "new" / f"{count}.png", count=count, size=64)) as image:
            assert image.format == "PNG"
            sizes[count] = image.size
    assert sizes[4][0] == sizes[5][0] and sizes[5][1] > 1.5 * sizes[4][1]


def test_a_counterfactual_item_is_the_same_face_with_the_named_attribute_flipped(tmp_path):
    dataset = SynthFaceDataset("val", 24, 24, counterfactual=True)
    flips = []
    for index in range(len(dataset)):
        item, face = dataset[index], dataset.face(index)
        name = ATTRIBUTES[item["flipped_attribute"]]
        assert item["flipped_on"] == (name not in face.attributes), "an attribute that was off is switched on"
        expected, _ = face.with_attribute(name, on=bool(item["flipped_on"])).render(64)
        assert torch.equal(item["flipped_image"], torch.from_numpy(expected).permute(2, 0, 1).float() / 127.5 - 1)
        flips.append(name)
    assert len(set(flips)) > 5, "the flipped attribute varies from face to face"

    cached = CachedSynthFace(render_cache(dataset, tmp_path, workers=1))
    assert "counterfactual" in render_cache(dataset, tmp_path).name, "a cache with flips is not the plain one"
    for key in ("image", "flipped_image", "flipped_attribute", "flipped_on"):
        assert torch.equal(torch.as_tensor(cached[3][key]), torch.as_tensor(dataset[3][key])), key


def test_counterfactual_pairs_can_flip_only_the_named_attributes(tmp_path):
    dataset = SynthFaceDataset("val", 24, 24, counterfactual=True, flip_attributes=("curly_hair", "smile"))
    flips = {ATTRIBUTES[dataset[index]["flipped_attribute"]] for index in range(len(dataset))}
    assert flips == {"curly_hair", "smile"}
    everything = SynthFaceDataset("val", 24, 24, counterfactual=True)
    assert render_cache(dataset, tmp_path, workers=1).name != f"synthface-{everything.cache_key}.safetensors"


def test_an_unknown_attribute_to_flip_is_named():
    with pytest.raises(ValueError, match="curly_hiar"):
        SynthFaceDataset("val", 4, 4, counterfactual=True, flip_attributes=("curly_hiar",))
