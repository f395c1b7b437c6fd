"""Editing with mappers: the Editor, `find_mapper`, `chatface edit`, the chat renderer and `chatface eval mapper`."""

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image
from torch import nn

from chat.parsers import make_parser
from chat.plan import Edit, EditPlan
from chat.session import ChatSession
from chatface.backbone_eval import backbone_pipeline
from chatface.catalog import UnknownAttributeError
from chatface.chat_editing import plan_renderer
from chatface.cli import main
from chatface.config import load_config
from chatface.edit_image import EditsSyntaxError, edit_image, parse_edits
from chatface.editor import (Editor, MapperMissingError, TrainedMapper, find_mapper, mapper_file,
                             read_trained_mapper)
from chatface.images import load_image, save_image, to_tensor
from chatface.train_mapper import train_mapper
from datamodules.latent_cache import file_digest
from datamodules.synthface import SynthFaceDataset
from diffusion.sms import sms_weights
from conftest import save_live_backbone
from llm_server import ScriptedServer, answer
from networks.mapper import LatentMapper
from networks.mapper_checkpoint import MapperLoadError, load_mapper, save_mapper

FIVE_METRICS = ("sdir", "sc", "id", "edit_success", "leakage")
BEFORE_AFTER_SIZE = (64 + 4, 2 * 64 + 6)  # one column, two rows, 2-pixel padding


def synth_faces(count: int) -> torch.Tensor:
    dataset = SynthFaceDataset("test", count, count, 64)
    return torch.stack([dataset[index]["image"] for index in range(count)])


@pytest.fixture(scope="module")
def world(tiny_world, tmp_path_factory) -> SimpleNamespace:
    """The tiny world's judges with a live backbone, outputs in this module's folder, the offline chat parser."""
    root = tmp_path_factory.mktemp("editing")
    backbone = save_live_backbone(root / "live_backbone.safetensors")
    overrides = [*tiny_world, f"backbone.weights={backbone}", f"output_dir={root / 'runs'}",
                 f"tracking.tracking_uri=sqlite:///{root / 'runs' / 'mlflow.db'}", "chat.parser=offline"]
    face = root / "face.png"
    save_image(synth_faces(1)[0], face)
    return SimpleNamespace(root=root, overrides=overrides, cfg=load_config(overrides), face=face)


@pytest.fixture(scope="module")
def smile(world) -> SimpleNamespace:
    """The world once its smile mapper is trained (two steps)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(world.root)  # MLflow writes artifacts under ./mlruns
        train_mapper(world.cfg, "smile")
    return world


@pytest.fixture
def face(world, tmp_path) -> Path:
    """A copy of the face in this test's folder, so that outputs written beside it stay there."""
    return Path(shutil.copy(world.face, tmp_path / "face.png"))


def random_mapper(latent_dim: int, seed: int) -> LatentMapper:
    torch.manual_seed(seed)
    mapper = LatentMapper(latent_dim, 32)
    nn.init.normal_(mapper.layers[-1].weight, std=100.0)  # as if trained: the last layer starts at zero
    return mapper.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def editor(world) -> SimpleNamespace:
    """An Editor over the live backbone with two made-up mappers, and two faces."""
    pipe = backbone_pipeline(world.cfg)
    images = synth_faces(2)
    dim = pipe.encode(images).shape[1]
    mappers = {"smile": TrainedMapper(random_mapper(dim, 0)), "glasses": TrainedMapper(random_mapper(dim, 1), "none"),
               "untrained": TrainedMapper(LatentMapper(dim, 32))}
    return SimpleNamespace(pipe=pipe, images=images, mappers=mappers,
                           editor=Editor(pipe, mappers.__getitem__, refine=0))


# --- the Editor ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("steps", [2, 4])
def test_strength_zero_gives_the_reconstruction_at_the_same_step_count(editor, steps):
    pipe, x = editor.pipe, editor.images
    z = pipe.encode(x)
    reconstruction = pipe.decode(pipe.invert(x, z, steps, 0), z, steps)
    faces = editor.editor.latents(x)
    assert torch.allclose(editor.editor.edit(faces, [("smile", 0.0)], steps), reconstruction, atol=1e-6)
    assert torch.allclose(editor.editor.edit(faces, [], steps), reconstruction, atol=1e-6)
    assert torch.allclose(editor.editor.edit(faces, [("untrained", 1.0)], steps), reconstruction, atol=1e-6)
    assert (editor.editor.edit(faces, [("smile", 1.0)], steps) - reconstruction).abs().mean() > 1e-3


def test_edits_of_two_attributes_compose(editor):
    pipe, x, steps = editor.pipe, editor.images, 4
    faces = editor.editor.latents(x)
    both = editor.editor.edit(faces, [("smile", 1.0), ("glasses", 0.5)], steps)
    z, smile, glasses = faces.z, editor.mappers["smile"].mapper, editor.mappers["glasses"].mapper
    weights = sms_weights("linear", steps)  # smile's schedule; glasses was trained without SMS
    conditions = [z + (1 - v) * smile(z) + 0.5 * glasses(z) for v in weights]
    expected = pipe.decode(faces.x_T[steps], conditions, steps)
    assert torch.allclose(both, expected, atol=1e-5)
    for single in ([("smile", 1.0)], [("glasses", 0.5)]):
        assert (editor.editor.edit(faces, single, steps) - both).abs().mean() > 1e-4
    assert torch.allclose(editor.editor.edit(faces, [("glasses", 0.5), ("smile", 1.0)], steps), both, atol=1e-5)


def test_editor_inverts_a_face_once_per_step_count(editor):
    faces = editor.editor.latents(editor.images)
    editor.editor.edit(faces, [("smile", 1.0)], 2)
    first = faces.x_T[2]
    editor.editor.edit(faces, [("glasses", 1.0)], 2)
    assert faces.x_T[2] is first and set(faces.x_T) == {2}


# --- finding mappers ----------------------------------------------------------------------------------------------


def test_find_mapper_for_an_untrained_attribute_names_the_command_that_trains_it(world):
    with pytest.raises(MapperMissingError) as error:
        find_mapper(world.cfg, "glasses")
    message = str(error.value)
    assert "make train ATTR=glasses" in message and str(mapper_file(world.cfg, "glasses")) in message


@pytest.mark.parametrize("lookup", [lambda cfg: find_mapper(cfg, "smiel"),
                                    lambda cfg: Editor.from_config(cfg, ["smiel"])])
def test_unknown_attribute_is_an_error_with_a_suggestion(world, lookup):
    with pytest.raises(UnknownAttributeError, match="did you mean 'smile'"):
        lookup(world.cfg)


@pytest.mark.slow
def test_find_mapper_loads_the_trained_mapper(smile):
    found = find_mapper(smile.cfg, "smile")
    saved, info = load_mapper(mapper_file(smile.cfg, "smile"))
    assert all(torch.equal(a, b) for a, b in zip(found.mapper.state_dict().values(), saved.state_dict().values()))
    assert (found.sms, found.sms_param) == (info["sms"], info["sms_param"])


def test_a_mapper_trained_on_another_backbone_is_an_error_naming_the_fix(world, tmp_path):
    sizes = {"latent_dim": 16, "width": 8, "depth": 4, "attribute": "smile"}
    save_mapper(LatentMapper(16, 8), tmp_path / "other.safetensors", {**sizes, "backbone": "0123456789ab"})
    with pytest.raises(MapperLoadError, match="another backbone.*make train ATTR=smile"):
        read_trained_mapper(tmp_path / "other.safetensors", world.cfg)
    digest = file_digest(world.cfg.backbone.weights)
    save_mapper(LatentMapper(16, 8), tmp_path / "same.safetensors", {**sizes, "backbone": digest})
    assert isinstance(read_trained_mapper(tmp_path / "same.safetensors", world.cfg), TrainedMapper)


# --- parse_edits --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, edits", [
    ("smile:1.0,glasses:0.8", [("smile", 1.0), ("glasses", 0.8)]),
    ("smile", [("smile", 1.0)]),
    (" smile : -0.5 , glasses ,", [("smile", -0.5), ("glasses", 1.0)]),
    ("beard:2", [("beard", 2.0)]),
])
def test_parse_edits_reads_attribute_strength_pairs(text, edits):
    assert parse_edits(text) == edits


@pytest.mark.parametrize("text, fragment", [
    ("smile:lots", "'smile:lots'"),
    ("smile:1.0,glasses:x", "'glasses:x'"),
    ("", "no edits"),
    (" , ,", "no edits"),
])
def test_parse_edits_rejects_bad_strings_with_an_example(text, fragment):
    with pytest.raises(EditsSyntaxError) as error:
        parse_edits(text)
    assert fragment in str(error.value) and "smile:1.0,glasses:0.8" in str(error.value)


@pytest.mark.parametrize("text", ["smile:nan", "smile:inf"])
def test_parse_edits_rejects_strengths_that_are_not_numbers(text):
    with pytest.raises(EditsSyntaxError):
        parse_edits(text)


# --- edit_image and `chatface edit` -------------------------------------------------------------------------------


def png(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


@pytest.mark.slow
def test_edit_image_writes_the_edit_and_a_before_after_png(smile, face):
    edited, grid = edit_image(smile.cfg, face, [("smile", 1.0)], steps=4)
    assert edited == face.with_name("face_edited.png") and grid == face.with_name("face_before_after.png")
    assert png(edited).size == (64, 64) and png(grid).size == BEFORE_AFTER_SIZE
    # the grid shows the input above the edit
    top, bottom = png(grid).crop((2, 2, 66, 66)), png(grid).crop((2, 68, 66, 132))
    assert torch.equal(to_tensor(top), load_image(face, 64))
    assert torch.equal(to_tensor(bottom), to_tensor(png(edited)))


@pytest.mark.slow
def test_edit_image_with_an_output_path(smile, face, tmp_path):
    edited, grid = edit_image(smile.cfg, face, [("smile", 0.5)], steps=2, out=tmp_path / "out" / "result.png")
    assert edited == tmp_path / "out" / "result.png" and grid == tmp_path / "out" / "face_before_after.png"
    assert edited.is_file() and grid.is_file()


def cli(arguments: list[str]) -> int:
    try:
        return main(arguments)
    except SystemExit as exit_:  # argparse's usage errors
        return exit_.code


@pytest.mark.slow
def test_cli_edit_takes_overrides_after_the_edits_as_the_makefile_passes_them(smile, face, capsys):
    assert cli(["edit", str(face), "--edits", "smile:1", *smile.overrides]) == 0
    assert face.with_name("face_edited.png").is_file()


@pytest.mark.slow
def test_cli_edit_with_edits_writes_both_images(smile, face, capsys):
    assert cli(["edit", str(face), *smile.overrides, "--edits", "smile:1", "--steps", "4"]) == 0
    out = capsys.readouterr().out
    edited, grid = face.with_name("face_edited.png"), face.with_name("face_before_after.png")
    assert str(edited) in out and str(grid) in out
    assert png(edited).size == (64, 64) and png(grid).size == BEFORE_AFTER_SIZE


@pytest.mark.slow
def test_cli_edit_with_a_request_in_words(smile, face, capsys):
    assert cli(["edit", str(face), *smile.overrides, "--request", "make her smile"]) == 0
    out = capsys.readouterr().out
    assert "plan: smile +1.00 (T=8)" in out
    assert face.with_name("face_edited.png").is_file() and face.with_name("face_before_after.png").is_file()


def test_cli_edit_of_a_corrupt_image_exits_2_with_a_message(world, tmp_path, capsys):
    broken = tmp_path / "broken.png"
    broken.write_bytes(world.face.read_bytes()[:60])
    assert cli(["edit", str(broken), *world.overrides, "--edits", "smile:1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chatface: ") and str(broken) in err and "Traceback" not in err
    assert not (tmp_path / "broken_edited.png").exists()


def test_cli_edit_without_a_trained_mapper_exits_2_naming_the_fix(world, face, capsys):
    assert cli(["edit", str(face), *world.overrides, "--edits", "glasses:1"]) == 2
    err = capsys.readouterr().err
    assert "make train ATTR=glasses" in err and "Traceback" not in err
    assert not face.with_name("face_edited.png").exists()


def test_cli_edit_with_bad_edits_or_an_unknown_attribute_exits_2(world, face, capsys):
    assert cli(["edit", str(face), *world.overrides, "--edits", "smile:lots"]) == 2
    assert "'smile:lots'" in capsys.readouterr().err
    assert cli(["edit", str(face), *world.overrides, "--edits", "smiel:1"]) == 2
    assert "did you mean 'smile'" in capsys.readouterr().err


def test_cli_edit_to_a_jpeg_path_exits_2_with_a_message(tiny_world, tiny_cfg, face, tmp_path, capsys):
    pipe = backbone_pipeline(tiny_cfg)
    dim = pipe.encode(torch.zeros(1, 3, 64, 64)).shape[1]
    save_mapper(LatentMapper(dim, 32), mapper_file(tiny_cfg, "smile"), {"latent_dim": dim, "width": 32, "depth": 4})
    overrides = [*tiny_world, f"output_dir={tiny_cfg.output_dir}"]
    assert cli(["edit", str(face), *overrides, "--edits", "smile:1", "--out", str(tmp_path / "result.jpg")]) == 2
    assert "png" in capsys.readouterr().err.lower()


# --- the chat -----------------------------------------------------------------------------------------------------


def chat_session(world, folder: Path, cfg=None) -> ChatSession:
    """A chat on the world's face, with the world's config unless `cfg` is given."""
    cfg = cfg or world.cfg
    render = plan_renderer(Editor.from_config(cfg), load_image(world.face, cfg.world.image_size))
    return ChatSession(make_parser(cfg.chat), render, folder, image=str(world.face))


@pytest.mark.slow
def test_a_three_turn_chat_edits_refines_and_undoes(smile, tmp_path):
    session = chat_session(smile, tmp_path / "chat")
    first, second, third = (session.send(request) for request in ("make her smile", "more", "undo"))
    assert [turn.error for turn in (first, second, third)] == [None, None, None]
    assert [turn.plan.strengths() for turn in (first, second, third)] == [{"smile": 1.0}, {"smile": 1.5},
                                                                        {"smile": 1.0}]
    images = [tmp_path / "chat" / f"turn_00{index}.png" for index in (1, 2, 3)]
    assert [turn.image for turn in (first, second, third)] == [path.name for path in images]
    pixels = [to_tensor(png(path)) for path in images]
    assert all(p.shape == (3, 64, 64) for p in pixels)
    assert not torch.equal(pixels[0], pixels[1])  # "more" renders a stronger edit
    assert torch.equal(pixels[0], pixels[2])  # "undo" renders the first plan again, from the same latents
    saved = json.loads((tmp_path / "chat" / "session.json").read_text())
    assert [turn["request"] for turn in saved["turns"]] == ["make her smile", "more", "undo"]
    assert saved["plans"] == [EditPlan().to_json(), EditPlan((Edit("smile", 1.0),)).to_json()]


@pytest.mark.slow
def test_chat_asking_for_an_attribute_without_a_mapper_is_a_turn_error_that_keeps_the_plan(smile, tmp_path):
    session = chat_session(smile, tmp_path / "chat")
    session.send("make her smile")
    turn = session.send("also add glasses")
    assert turn.error is not None and "make train ATTR=glasses" in turn.error
    assert turn.image is None and session.plan.strengths() == {"smile": 1.0}
    assert not (tmp_path / "chat" / "turn_002.png").exists()
    saved = json.loads((tmp_path / "chat" / "session.json").read_text())
    assert saved["turns"][-1]["error"] == turn.error


@pytest.mark.slow
def test_a_chat_through_an_llm_server_edits_and_survives_its_broken_answers(smile, tmp_path, monkeypatch):
    """The LLM parser on a real HTTP server (real `openai` client) driving the real editor, turn by turn."""
    server = ScriptedServer()
    monkeypatch.setenv("CHATFACE_TEST_API_KEY", "sk-test-chat")
    cfg = load_config([*smile.overrides, "chat.parser=llm", "chat.model=test-model", f"chat.base_url={server.url}",
                       "chat.retries=0", "chat.api_key_env=CHATFACE_TEST_API_KEY"])
    session = chat_session(smile, tmp_path / "chat", cfg)
    server.script = [answer({"command": "edit", "edits": [{"attribute": "smile", "strength": 1.0}], "adjust": [],
                             "steps": None}),
                     answer("Sure, I will make it nicer!"), answer('{"command": "edit", "edits": ['),
                     answer({"command": "edit", "edits": [], "adjust": [{"attribute": None, "amount": 0.5}],
                             "steps": None})]
    try:
        first, broken, more = (session.send(request) for request in ("make her smile", "nicer", "more"))
    finally:
        server.stop()
    assert first.error is None and first.plan.strengths() == {"smile": 1.0}
    assert broken.error is not None and "invalid twice" in broken.error and broken.image is None
    assert more.error is None and more.plan.strengths() == {"smile": 1.5}  # the broken turn kept the plan
    pixels = [to_tensor(png(tmp_path / "chat" / turn.image)) for turn in (first, more)]
    assert not torch.equal(*pixels)


# --- `chatface eval mapper` ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_eval_mapper_prints_the_five_metrics_as_one_json_line(smile, capsys):
    assert cli(["eval", "mapper", "--json", "attr=smile", *smile.overrides]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["attr"] == "smile" and result["faces"] == 4 and result["steps"] == 2
    for name in FIVE_METRICS:
        assert (-1.0 if name == "sdir" else 0.0) <= result[name] <= 1.0, name
