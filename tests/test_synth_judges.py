"""The synth-world judges: small real networks, their files, their loaders, their training and their evaluation."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from open_clip.modified_resnet import ModifiedResNet
from safetensors.torch import save_file
from torch import nn

from chatface.config import load_config
from chatface.judges_eval import clip_zero_shot_accuracy, evaluate_judges
from chatface.pretrain_judges import KINDS, pretrain_judges
from datamodules.synthface import SynthFaceDataset
from lightning_modules.clip_training import ClipTraining, negatives_per_positive
from lightning_modules.identity_training import ArcFaceLoss, IdentityTraining
from lightning_modules.parser_training import balanced_class_weights
from networks.judges.arcface import IdentityJudge
from networks.judges.clip import ClipJudge
from networks.conv_encoder import ConvEncoder
from networks.judges.errors import JudgeLoadError
from networks.judges.loading import Judges, load_judges
from networks.judges.synth import HALF, AttributeJudge, SynthParser, synth_clip, synth_identity
from networks.judges.synth_files import load_judge_net, save_judge
from networks.judges.synth_nets import UNetParser, tiny_clip, tiny_clip_tokenizer
from synthface.attributes import ATTRIBUTES
from synthface.captions import NOUN_PHRASES, caption
from synthface.classes import CLASS_NAMES

# Sizes small enough to build and run in milliseconds; every judge kind with the sizes its file would record.
SIZES = {
    "clip": dict(image_size=64, embed_dim=32, width=64, layers=1, context_length=16),
    "identity": dict(out_dim=32, width=8),
    "parser": dict(num_classes=len(CLASS_NAMES), width=8),
    "attributes": dict(out_dim=len(ATTRIBUTES), width=8),
}
BUILD = {"clip": tiny_clip, "identity": ConvEncoder, "parser": UNetParser, "attributes": ConvEncoder}


def images(count: int = 2, size: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.rand(count, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def built(kind: str) -> nn.Module:
    torch.manual_seed(0)
    return BUILD[kind](**SIZES[kind])


def clip_judge() -> ClipJudge:
    model = built("clip")
    return ClipJudge.from_model(model, tiny_clip_tokenizer(model.context_length), 64, HALF, HALF)


def identity_judge() -> IdentityJudge:
    return IdentityJudge(built("identity"), input_size=64, crop=None)


def parser_judge() -> SynthParser:
    return SynthParser(built("parser"))


def attribute_judge() -> AttributeJudge:
    return AttributeJudge(built("attributes"))


JUDGES = {"clip": clip_judge, "identity": identity_judge, "parser": parser_judge, "attributes": attribute_judge}


def differentiable_output(kind: str, judge: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What the losses differentiate: CLIP and identity embeddings, the parser's and the classifier's logits."""
    return {"clip": lambda: judge.encode_image(x), "identity": lambda: judge.embed(x),
            "parser": lambda: judge.logits(x), "attributes": lambda: judge.logits(x)}[kind]()


def unit_norm(vectors: torch.Tensor) -> bool:
    return torch.allclose(vectors.norm(dim=-1), torch.ones(len(vectors)), atol=1e-5)


# --- outputs ------------------------------------------------------------------------------------------------------


def test_clip_judge_gives_unit_image_and_text_embeddings_and_directions():
    clip = clip_judge()
    image = clip.encode_image(images(3))
    text = clip.encode_text(["a face with a smile", "a face without a smile"])
    direction = clip.text_direction("face", "smiling face")
    assert image.shape == (3, 32) and text.shape == (2, 32) and direction.shape == (32,)
    assert unit_norm(image) and unit_norm(text) and unit_norm(direction[None])
    assert clip.text_direction("face", "smiling face") is clip.text_direction("face", "smiling face")  # cached


def test_clip_judge_resizes_other_image_sizes_to_its_own():
    assert clip_judge().encode_image(images(2, size=96)).shape == (2, 32)


def test_identity_judge_gives_unit_embeddings_that_tell_images_apart():
    judge = identity_judge()
    x = images(3)
    embeddings = judge.embed(x)
    assert embeddings.shape == (3, 32) and unit_norm(embeddings)
    assert torch.allclose(judge.embed(x[:1]), embeddings[:1], atol=1e-5)  # eval mode: no batch statistics


def test_parser_gives_one_class_id_per_pixel_below_the_class_count():
    classes = parser_judge().parse(images(2))
    assert classes.shape == (2, 64, 64) and not classes.is_floating_point()
    assert classes.min() >= 0 and classes.max() < len(CLASS_NAMES) == SynthParser.num_classes == 16


def test_attribute_judge_gives_one_probability_per_attribute():
    probabilities = attribute_judge().predict(images(2))
    assert probabilities.shape == (2, len(ATTRIBUTES)) == (2, 25)
    assert probabilities.min() >= 0 and probabilities.max() <= 1
    assert AttributeJudge.attribute_names == ATTRIBUTES


# --- gradients and frozen weights ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", JUDGES)
def test_gradients_reach_the_images_but_not_the_judge_weights(kind):
    judge = JUDGES[kind]()
    x = images(2).requires_grad_()
    differentiable_output(kind, judge, x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0 and torch.isfinite(x.grad).all()
    assert all(not p.requires_grad and p.grad is None for p in judge.parameters())


@pytest.mark.parametrize("kind", JUDGES)
def test_a_judge_stays_in_eval_mode_inside_a_module_being_trained(kind):
    judge = JUDGES[kind]()
    parent = nn.ModuleDict({"judge": judge, "head": nn.Linear(2, 2)})
    buffers = {name: b.clone() for name, b in judge.named_buffers()}
    parent.train()
    assert parent.training and parent["head"].training
    assert not any(module.training for module in judge.modules())
    with torch.no_grad():
        differentiable_output(kind, judge, images(4))
    for name, buffer in judge.named_buffers():  # BatchNorm running statistics untouched
        assert torch.equal(buffer, buffers[name]), name
    judge.train()  # asked directly, too
    assert not any(module.training for module in judge.modules())


# --- files --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SIZES)
def test_saved_judge_loads_back_equal(tmp_path, kind):
    net = built(kind).eval()
    path = tmp_path / f"{kind}.safetensors"
    save_judge(net, path, kind, SIZES[kind])
    loaded = load_judge_net(path, kind).eval()
    assert type(loaded) is type(net)
    original, restored = net.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[name], restored[name]) for name in original)
    x = images(2)
    with torch.no_grad():
        if kind == "clip":
            assert torch.equal(net.encode_image(x), loaded.encode_image(x))
        else:
            assert torch.equal(net(x), loaded(x))


RESNET_CLIP = dict(SIZES["clip"], tower="resnet", resnet_width=8)


def test_a_clip_with_the_resnet_image_tower_rebuilds_from_its_file_alone(tmp_path):
    torch.manual_seed(0)
    net = tiny_clip(**RESNET_CLIP).eval()
    assert isinstance(net.visual, ModifiedResNet)
    save_judge(net, tmp_path / "clip.safetensors", "clip", RESNET_CLIP)
    loaded = load_judge_net(tmp_path / "clip.safetensors", "clip").eval()
    with torch.no_grad():
        assert torch.equal(net.encode_image(images(2)), loaded.encode_image(images(2)))
    assert unit_norm(synth_clip(tmp_path / "clip.safetensors").encode_image(images(2, size=96)))


def test_an_unknown_clip_image_tower_is_an_error_naming_the_choices():
    with pytest.raises(ValueError, match="'convnext'; choose vit or resnet"):
        tiny_clip(**dict(SIZES["clip"], tower="convnext"))


def test_a_face_and_its_flip_are_encoded_in_one_batchnorm_pass():
    """In training mode a BatchNorm tower normalises with the batch's statistics: encoded apart, a flip of one face
    would move every other face's embedding too. Encoded together, the faces that were not flipped do not move."""
    torch.manual_seed(0)
    module = ClipTraining(sizes=RESNET_CLIP).train()
    image = images(4)
    flipped = image.clone()
    flipped[0] = images(1, seed=1)[0]
    embedding, flipped_embedding = module._encode_images({"image": image, "flipped_image": flipped})
    assert torch.equal(embedding[1:], flipped_embedding[1:])
    assert not torch.allclose(embedding[0], flipped_embedding[0])


def test_the_balanced_prompt_loss_weighs_a_rare_attributes_faces_up_to_the_others():
    """pos_weight = faces without / faces with: one smiling face among four weighs as much as the three others."""
    labels = torch.tensor([[1, 1], [0, 1], [0, 0], [0, 1]])
    assert negatives_per_positive(labels) == pytest.approx([3.0, 1 / 3])
    torch.manual_seed(0)
    batch = {"image": images(4), "caption": ["a face"] * 4,
             "labels": torch.zeros(4, len(ATTRIBUTES)).index_fill_(1, torch.tensor([0]), 1.0)}
    plain = ClipTraining(sizes=RESNET_CLIP).eval()
    balanced = ClipTraining(sizes=RESNET_CLIP, prompt_pos_weight=[2.0] * len(ATTRIBUTES)).eval()
    balanced.load_state_dict(plain.state_dict())
    with torch.no_grad():
        assert balanced._losses(batch)["prompt"] > plain._losses(batch)["prompt"]  # the positives count twice


def test_synth_clip_and_identity_load_from_files_into_the_common_interfaces(tmp_path):
    save_judge(built("clip"), tmp_path / "clip.safetensors", "clip", SIZES["clip"])
    save_judge(built("identity"), tmp_path / "identity.safetensors", "identity", SIZES["identity"])
    clip, identity = synth_clip(tmp_path / "clip.safetensors"), synth_identity(tmp_path / "identity.safetensors")
    assert isinstance(clip, ClipJudge) and isinstance(identity, IdentityJudge)
    assert unit_norm(clip.encode_image(images(2))) and unit_norm(identity.embed(images(2)))


def message_names(error: pytest.ExceptionInfo, path: Path) -> bool:
    return str(path) in str(error.value)


def test_missing_judge_file_is_an_error_naming_the_file_and_the_fix(tmp_path):
    path = tmp_path / "nowhere" / "identity.safetensors"
    with pytest.raises(JudgeLoadError) as error:
        load_judge_net(path, "identity")
    assert message_names(error, path) and "make pretrain-judges" in str(error.value)


def test_truncated_judge_file_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "parser.safetensors"
    save_judge(built("parser"), path, "parser", SIZES["parser"])
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(JudgeLoadError, match="truncated") as error:
        load_judge_net(path, "parser")
    assert message_names(error, path)


def test_garbage_bytes_are_an_error_naming_the_file(tmp_path):
    path = tmp_path / "clip.safetensors"
    path.write_bytes(b"this is not a safetensors file at all")
    with pytest.raises(JudgeLoadError) as error:
        load_judge_net(path, "clip")
    assert message_names(error, path)


def test_judge_of_another_kind_is_an_error_naming_both_kinds(tmp_path):
    path = tmp_path / "identity.safetensors"
    save_judge(built("identity"), path, "identity", SIZES["identity"])
    with pytest.raises(JudgeLoadError) as error:
        load_judge_net(path, "attributes")
    assert message_names(error, path) and "identity" in str(error.value) and "attributes" in str(error.value)


def test_a_safetensors_file_that_is_no_judge_is_refused(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(2, 2)}, path, metadata={"mapper": "{}"})
    with pytest.raises(JudgeLoadError, match="non-judge") as error:
        load_judge_net(path, "clip")
    assert message_names(error, path)


def test_tensors_that_do_not_fit_the_recorded_sizes_are_an_error_naming_the_file(tmp_path):
    path = tmp_path / "attributes.safetensors"
    save_judge(built("attributes"), path, "attributes", {**SIZES["attributes"], "width": 16})  # net has width 8
    with pytest.raises(JudgeLoadError, match="do not fit") as error:
        load_judge_net(path, "attributes")
    assert message_names(error, path)


# --- the tiny world: loading, pretraining, evaluation -------------------------------------------------------------


def test_load_judges_builds_all_four_synth_judges_of_the_tiny_world(tiny_world):
    judges = load_judges(load_config(tiny_world).judges)
    assert isinstance(judges, Judges)
    assert isinstance(judges.clip, ClipJudge) and isinstance(judges.identity, IdentityJudge)
    assert isinstance(judges.parser, SynthParser) and isinstance(judges.attributes, AttributeJudge)
    x = images(2)
    assert unit_norm(judges.clip.encode_image(x)) and unit_norm(judges.identity.embed(x))
    assert judges.parser.parse(x).max() < 16 and judges.attributes.predict(x).shape == (2, 25)


def test_load_judges_without_an_attribute_judge(tiny_world):
    judges = load_judges(load_config([*tiny_world, "judges.attributes=''"]).judges)
    assert judges.attributes is None


def test_clip_templates_of_the_config_become_the_judges_text_directions(tiny_world):
    plain = load_judges(load_config([*tiny_world, "judges.clip_templates=null"]).judges).clip  # the ten
    bare = load_judges(load_config(tiny_world).judges).clip  # the synth world's: the text alone
    assert bare.templates == ("{}",)
    smiling = bare.text_direction("face", "smiling face")
    assert torch.equal(smiling, plain.text_direction("face", "smiling face", ["{}"]))
    assert not torch.allclose(smiling, plain.text_direction("face", "smiling face"))


@pytest.mark.parametrize("templates", ["[]", "['a photo of a face']", "['{} and {}']"])
def test_clip_templates_without_one_slot_each_are_refused(tiny_world, templates):
    with pytest.raises(ValueError, match=r"judges\.clip_templates=.*one '\{\}'"):
        load_judges(load_config([*tiny_world, f"judges.clip_templates={templates}"]).judges)


def test_load_judges_names_a_missing_file(tiny_world, tmp_path):
    missing = tmp_path / "parser.safetensors"
    with pytest.raises(JudgeLoadError) as error:
        load_judges(load_config([*tiny_world, f"judges.parser={missing}"]).judges)
    assert message_names(error, missing)


def global_step(checkpoint: Path) -> int:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"]


@pytest.mark.slow
def test_pretrain_judges_resumes_and_does_not_train_a_finished_judge_again(tiny_world, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything MLflow puts beside the working directory stays in the test's folder
    weights = tmp_path / "attributes.safetensors"
    cfg = load_config([*tiny_world, f"output_dir={tmp_path / 'runs'}",
                       f"tracking.tracking_uri=sqlite:///{tmp_path / 'runs' / 'mlflow.db'}",
                       f"judges.attributes={weights}", "judges.pretrain.train_faces=16",
                       "judges.pretrain.train_identities=4", "judges.pretrain.val_faces=8",
                       "judges.pretrain.batch_size=8"])
    assert pretrain_judges(cfg, ("attributes",)) == [weights]
    last = tmp_path / "runs" / "judges" / "attributes" / "last.ckpt"
    assert global_step(last) == 2
    first = load_judge_net(weights, "attributes").state_dict()

    assert pretrain_judges(cfg, ("attributes",)) == [weights]
    assert global_step(last) == 2  # nothing more was trained
    second = load_judge_net(weights, "attributes").state_dict()
    assert all(torch.equal(first[name], second[name]) for name in first)  # and the export is the same


def test_evaluate_judges_reports_every_figure_in_the_unit_interval(tiny_world):
    result = evaluate_judges(load_config(tiny_world), identities=32)
    figures = ("clip_zero_shot_acc", "clip_direction_top1", "id_roc_auc", "id_tar_at_far_1e-3", "parser_miou",
               "attribute_acc")
    for name in figures:
        assert 0.0 <= result[name] <= 1.0 and math.isfinite(result[name]), name
    assert result["test_identities"] == 32
    assert 0 < result["id_genuine_pairs"] <= 32
    json.dumps(result)  # what `chatface eval judges --json` prints


SHIPPED = Path(__file__).resolve().parents[1] / "weights" / "synth"
ISSUE_4_GOALS = {"clip_zero_shot_acc": 0.90, "clip_direction_top1": 0.90, "id_roc_auc": 0.99,
                 "id_tar_at_far_1e-3": 0.90, "parser_miou": 0.90, "attribute_acc": 0.97}


@pytest.mark.slow
@pytest.mark.skipif(not all((SHIPPED / f"{kind}.safetensors").exists() for kind in KINDS),
                    reason="the shipped synth judges are not in this checkout")
def test_the_shipped_judges_reach_issue_4s_figures_on_held_out_identities():
    result = evaluate_judges(load_config())  # what `make eval-judges` prints (256 test identities)
    assert {name: result[name] for name in ISSUE_4_GOALS if result[name] < ISSUE_4_GOALS[name]} == {}


def test_clip_zero_shot_accuracy_is_a_number_when_an_attribute_is_on_no_test_face():
    labels = torch.zeros(4, len(ATTRIBUTES), dtype=torch.bool)
    labels[:2, :] = True  # every attribute on two faces, off on two ...
    labels[:, ATTRIBUTES.index("beard")] = False  # ... except the beard, which no face has
    accuracy = clip_zero_shot_accuracy(Judges(clip_judge(), None, None, None), images(4), labels)
    assert 0.0 <= accuracy <= 1.0


# --- captions -----------------------------------------------------------------------------------------------------

# caption(active, default_rng(seed)) as synthface/captions.py wrote them before `negatives` existed.
GOLDEN_CAPTIONS = [
    (0, ["angry", "blue_eyes", "curly_hair", "earrings", "eyeshadow", "glasses", "red_hair", "wrinkles"],
     "a portrait of a furious face with curly red hair, blue eyes, eyeglasses, earrings, wrinkles and eyeshadow"),
    (1, ["bangs", "blond_hair", "brown_eyes", "eyeshadow", "mustache", "sad"],
     "an unhappy face with blond hair and bangs, brown eyes, coloured eyeshadow and a moustache"),
    (2, ["blond_hair", "brown_eyes", "curly_hair"], "a face with curly blond hair and brown eyes"),
]


@pytest.mark.parametrize("seed, active, expected", GOLDEN_CAPTIONS)
def test_default_captions_are_unchanged(seed, active, expected):
    assert caption(frozenset(active), np.random.default_rng(seed)) == expected
    assert caption(frozenset(active), np.random.default_rng(seed), negatives=0) == expected


def synth_attribute_sets(count: int = 300) -> list[frozenset[str]]:
    dataset = SynthFaceDataset("train", count, count // 3, 64)
    return [frozenset(dataset.face(index).attributes) for index in range(count)]


def absent_names(text: str) -> list[str]:
    """The attributes a caption names as absent: the phrases after ", without "."""
    by_phrase = {phrase: name for name, phrase in NOUN_PHRASES.items()}
    return [by_phrase[phrase] for phrase in re.findall(r", without ([^,]+)", text)]


@pytest.mark.parametrize("negatives", [1, 3, 5])
def test_captions_with_negatives_never_call_an_active_attribute_absent(negatives):
    rng = np.random.default_rng(0)
    counts = []
    for active in synth_attribute_sets():
        text = caption(active, rng, negatives)
        absent = absent_names(text)
        assert not set(absent) & active, (sorted(active), text)
        assert len(absent) == len(set(absent)) <= negatives, text
        counts.append(len(absent))
    assert max(counts) == negatives and min(counts) == 0  # "up to that many", all counts drawn


# --- the ArcFace loss ---------------------------------------------------------------------------------------------


def rotated(towards: torch.Tensor, away: torch.Tensor, angle: float) -> torch.Tensor:
    """The unit vector at `angle` from `towards`, in the plane of `towards` and `away`."""
    u = towards / towards.norm()
    v = away - (away @ u) * u
    v = v / v.norm()
    return math.cos(angle) * u + math.sin(angle) * v


def arcface_with_classes(embed_dim: int = 16, classes: int = 8) -> ArcFaceLoss:
    torch.manual_seed(0)
    return ArcFaceLoss(embed_dim, classes)


def test_arcface_loss_is_lower_near_the_class_weight_than_far_from_it():
    loss = arcface_with_classes()
    weight = loss.weight.detach()
    target = torch.tensor([3])
    near = weight[3] + 0.01 * torch.randn(16)
    far = -weight[3]
    orthogonal = rotated(weight[3], torch.randn(16), math.pi / 2)
    assert loss(near[None], target) < loss(orthogonal[None], target) < loss(far[None], target)


def test_arcface_loss_trains_the_embedding_towards_its_class():
    loss = arcface_with_classes()
    embedding = torch.randn(4, 16, requires_grad=True)
    classes = torch.tensor([0, 1, 2, 3])
    optimizer = torch.optim.SGD([embedding], lr=0.5)
    before = loss(embedding, classes).item()
    for _ in range(30):
        optimizer.zero_grad()
        loss(embedding, classes).backward()
        optimizer.step()
    assert loss(embedding, classes).item() < before


def test_arcface_loss_grows_with_the_angle_all_the_way_to_pi():
    """The other class is orthogonal to the plane the embedding turns in, so only the margin logit changes."""
    loss = ArcFaceLoss(embed_dim=3, num_classes=2)
    with torch.no_grad():
        loss.weight.copy_(torch.eye(3)[[0, 2]])
    angles = torch.linspace(0.0, math.pi - 1e-3, 60)
    embeddings = torch.stack([torch.cos(angles), torch.sin(angles), torch.zeros_like(angles)], dim=1)
    values = [loss(embedding[None], torch.tensor([0])).item() for embedding in embeddings]
    assert all(b >= a - 1e-6 for a, b in zip(values, values[1:]))


def test_arcface_loss_without_margin_is_the_softmax_of_the_scaled_cosines():
    loss = arcface_with_classes()
    loss.margin = 0.0
    embeddings, classes = torch.randn(5, 16), torch.tensor([0, 1, 2, 3, 4])
    cosine = F.normalize(embeddings) @ F.normalize(loss.weight).T
    assert loss(embeddings, classes).item() == pytest.approx(F.cross_entropy(32.0 * cosine, classes).item(), rel=1e-5)


def test_the_identity_margin_warms_up_from_a_plain_softmax_to_the_full_margin():
    module = IdentityTraining(SIZES["identity"], num_identities=4, margin_warmup_steps=100)
    assert [module.margin_at(step) for step in (0, 100, 150, 200, 5000)] == pytest.approx([0, 0, 0.15, 0.3, 0.3])
    assert IdentityTraining(SIZES["identity"], num_identities=4).margin_at(0) == 0.3


def test_clip_direction_loss_learns_from_counterfactual_pairs_through_both_towers():
    torch.manual_seed(0)
    batch = next(iter(torch.utils.data.DataLoader(SynthFaceDataset("train", 16, 16, counterfactual=True),
                                                  batch_size=16)))
    module = ClipTraining(sizes=SIZES["clip"], direction_weight=1.0)
    first = module._losses(batch)["direction"]
    first.backward()
    for tower in (module.net.visual, module.net.transformer):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in tower.parameters())

    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)
    for _ in range(30):
        optimizer.zero_grad()
        module._losses(batch)["direction"].backward()
        optimizer.step()
    assert module._losses(batch)["direction"] < 0.5 * first, "the image changes learn to point along their texts"


def test_balanced_class_weights_weigh_a_class_up_as_it_is_rarer():
    masks = torch.zeros(2, 10, 10, dtype=torch.uint8)
    masks[:, :1] = 1  # class 1 on a tenth of the pixels, class 0 on the rest, class 2 on none
    weights = balanced_class_weights(masks, 3, power=0.5)
    assert weights[1] / weights[0] == pytest.approx(3.0)  # (0.9 / 0.1) ** 0.5
    assert weights[2] > weights[1] and math.isfinite(weights[2])  # an absent class counts as one pixel
    assert sum(weights) / 3 == pytest.approx(1.0)
    assert balanced_class_weights(masks, 3, power=0.0) == pytest.approx([1.0, 1.0, 1.0])
