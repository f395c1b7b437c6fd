"""The ffhq256-world judges, tested on their official architectures with random weights (nothing downloads)."""

import copy
import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import open_clip
import pytest
import torch
import torch.nn.functional as F
from open_clip.model import CLIP
from torch import nn

from networks.judges import ClipJudge, FaceParser, IdentityJudge, JudgeLoadError
from networks.judges.arcface import FFHQ_CROP
from networks.judges.iresnet import IResNet


def _truncated_copy(path: Path) -> Path:
    broken = path.with_name("truncated_" + path.name)
    data = path.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    return broken


# --- CLIP --------------------------------------------------------------------------------------------------------
# One round trip of a full-size ViT-B-32; the rest runs on a tiny CLIP registered as an open_clip config, which goes
# through the same loading path at a fraction of the cost.

TINY_CLIP = {"embed_dim": 64, "vision_cfg": {"image_size": 64, "layers": 1, "width": 64, "patch_size": 32},
             "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 1}}


@pytest.fixture(scope="module")
def tiny_arch(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("configs")
    (folder / "chatface-test-tiny.json").write_text(json.dumps(TINY_CLIP))
    wide = TINY_CLIP | {"vision_cfg": TINY_CLIP["vision_cfg"] | {"width": 128}}
    (folder / "chatface-test-wide.json").write_text(json.dumps(wide))
    open_clip.add_model_config(folder)
    return "chatface-test-tiny"


@pytest.fixture(scope="module")
def tiny_clip(tiny_arch: str) -> CLIP:
    """QuickGELU as in OpenAI's models (the loader must force it); random weights rounded to float16."""
    torch.manual_seed(0)
    return open_clip.create_model(tiny_arch, force_quick_gelu=True).half().float().eval()


@pytest.fixture(scope="module")
def tiny_clip_file(tiny_clip: CLIP, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "open_clip_pytorch_model.bin"
    torch.save({k: v.half() for k, v in tiny_clip.state_dict().items()}, path)
    return path


@pytest.fixture(scope="module")
def tiny_judge(tiny_clip_file: Path, tiny_arch: str) -> ClipJudge:
    return ClipJudge.from_openai_file(tiny_clip_file, arch=tiny_arch)


@pytest.mark.slow  # a 150M-parameter model built twice, written and read back
def test_vit_b32_file_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = tmp_path / "open_clip_pytorch_model.bin"
    torch.save({k: v.half() for k, v in open_clip.create_model("ViT-B-32").state_dict().items()}, path)
    judge = ClipJudge.from_openai_file(path)
    saved = torch.load(path, weights_only=True)
    assert all(torch.equal(v, saved[k].float()) for k, v in judge.model.state_dict().items())
    assert judge.image_size == 224

    images = (torch.rand(1, 3, 256, 256) * 2 - 1).requires_grad_()
    embeddings = judge.encode_image(images)
    assert embeddings.shape == (1, 512)
    assert torch.isclose(embeddings.norm(), torch.tensor(1.0), atol=1e-5)
    embeddings.sum().backward()
    assert images.grad.abs().sum() > 0

    smiling = judge.text_direction("face", "smiling face", ("a photo of a {}.",))
    tanned = judge.text_direction("face", "tanned face", ("a photo of a {}.",))
    assert smiling.shape == (512,) and torch.isclose(smiling.norm(), torch.tensor(1.0), atol=1e-5)
    assert not torch.allclose(smiling, tanned, atol=1e-3)


def test_clip_file_loads_the_weights_and_normalises_inside(tiny_judge: ClipJudge, tiny_clip: CLIP) -> None:
    assert tiny_judge.image_size == 64
    images = torch.rand(2, 3, 64, 64) * 2 - 1  # already at the input size: the resize and crop leave it unchanged
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = F.normalize(tiny_clip.encode_image(((images + 1) / 2 - mean) / std), dim=-1)
        assert torch.allclose(tiny_judge.encode_image(images), expected, atol=1e-5)


def test_clip_resizes_crops_and_keeps_gradients(tiny_judge: ClipJudge) -> None:
    images = (torch.rand(2, 3, 96, 128) * 2 - 1).requires_grad_()
    embeddings = tiny_judge.encode_image(images)
    assert embeddings.shape == (2, 64)
    assert torch.allclose(embeddings.norm(dim=-1), torch.ones(2), atol=1e-5)
    embeddings[0].sum().backward()
    assert images.grad[0].abs().sum() > 0 and images.grad[1].abs().sum() == 0
    assert images.grad[0, :, :, :8].abs().sum() == 0  # the centre crop drops the sides of a wide image
    assert all(p.grad is None for p in tiny_judge.parameters())


def test_clip_text_directions_average_over_templates(tiny_judge: ClipJudge) -> None:
    texts = tiny_judge.encode_text(["face", "smiling face"])
    assert texts.shape == (2, 64) and not texts.requires_grad
    assert torch.allclose(texts.norm(dim=-1), torch.ones(2), atol=1e-5)

    templates = ("a photo of a {}.", "a portrait of a {}.")
    smiling = tiny_judge.text_direction("face", "smiling face", templates)
    targets = tiny_judge.encode_text(["a photo of a smiling face.", "a portrait of a smiling face."])
    sources = tiny_judge.encode_text(["a photo of a face.", "a portrait of a face."])
    assert torch.allclose(smiling, F.normalize((targets - sources).mean(dim=0), dim=0), atol=1e-5)
    assert tiny_judge.text_direction("face", "smiling face", templates) is smiling  # cached

    default = tiny_judge.text_direction("face", "smiling face")
    assert torch.isclose(default.norm(), torch.tensor(1.0), atol=1e-5)
    assert not torch.allclose(default, tiny_judge.text_direction("face", "tanned face"), atol=1e-3)


def test_clip_stays_in_eval_mode(tiny_judge: ClipJudge) -> None:
    tiny_judge.train()
    assert not tiny_judge.training and not tiny_judge.model.training


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated; OpenAI's files still use it
def test_clip_from_openai_torchscript_file(tmp_path: Path, tiny_clip: CLIP) -> None:
    """OpenAI's own release is a TorchScript archive of float16 weights; the tiny CLIP stands in."""
    path = tmp_path / "ViT-B-32.pt"
    _save_as_torchscript(tiny_clip, path)
    judge = ClipJudge.from_openai_file(path)
    reference = ClipJudge.from_model(tiny_clip, open_clip.get_tokenizer("ViT-B-32"), 64,
                                     open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD)
    images = torch.rand(1, 3, 80, 80) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(judge.encode_image(images), reference.encode_image(images), atol=1e-5)
    assert torch.allclose(judge.encode_text(["face"]), reference.encode_text(["face"]), atol=1e-5)


def _save_as_torchscript(clip: CLIP, path: Path) -> None:
    """A TorchScript archive whose state_dict is the model's, in float16, as in OpenAI's files."""

    class Holder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for name, child in clip.named_children():
                self.add_module(name, copy.deepcopy(child))
            for name, parameter in clip.named_parameters(recurse=False):
                self.register_parameter(name, nn.Parameter(parameter.detach().clone()))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.logit_scale * x

    torch.jit.trace(Holder().half(), torch.ones(1, dtype=torch.half)).save(str(path))


def test_clip_bad_files_raise_clear_errors(tmp_path: Path, tiny_clip_file: Path, tiny_arch: str) -> None:
    with pytest.raises(JudgeLoadError, match="no such CLIP weights file"):
        ClipJudge.from_openai_file(tmp_path / "missing.pt")
    with pytest.raises(JudgeLoadError, match="truncated"):
        ClipJudge.from_openai_file(_truncated_copy(tiny_clip_file), arch=tiny_arch)
    with pytest.raises(JudgeLoadError, match="chatface-test-wide.*size mismatch"):
        ClipJudge.from_openai_file(tiny_clip_file, arch="chatface-test-wide")


# --- ArcFace -----------------------------------------------------------------------------------------------------

def _randomise_batchnorm(net: nn.Module) -> None:
    """Non-trivial running statistics and affine parameters, so that a lost BatchNorm shows in the output."""
    for module in net.modules():
        if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.1, 0.1)


@pytest.fixture(scope="module")
def arcface_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    net = IResNet((1, 1, 1, 1)).eval()  # one block per stage keeps the test light; the judge is depth-agnostic
    _randomise_batchnorm(net)
    path = tmp_path_factory.mktemp("arcface") / "w600k_r50.onnx"
    _export_onnx(net, path)
    return path


def _export_onnx(net: nn.Module, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter needs no onnxscript
        torch.onnx.export(net, (torch.randn(1, 3, 112, 112),), str(path), input_names=["input.1"],
                          dynamic_axes={"input.1": {0: "batch"}}, opset_version=13, dynamo=False)


@pytest.fixture(scope="module")
def arcface_judge(arcface_onnx: Path) -> IdentityJudge:
    return IdentityJudge.from_onnx(arcface_onnx)


def test_arcface_onnx_converts_to_the_same_function(arcface_judge: IdentityJudge, arcface_onnx: Path) -> None:
    assert (arcface_judge.input_mean, arcface_judge.input_std) == (127.5, 127.5)
    crops = torch.rand(2, 3, 112, 112) * 2 - 1
    session = onnxruntime.InferenceSession(str(arcface_onnx), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"input.1": crops.numpy()})[0]
    with torch.no_grad():
        converted = arcface_judge.net(crops).numpy()
    np.testing.assert_allclose(converted, expected, atol=1e-4, rtol=1e-4)


def test_arcface_embeds_the_ffhq_crop_with_gradients(arcface_judge: IdentityJudge) -> None:
    images = (torch.rand(2, 3, 256, 256) * 2 - 1).requires_grad_()
    embeddings = arcface_judge.embed(images)
    assert embeddings.shape == (2, 512)
    assert torch.allclose(embeddings.norm(dim=-1), torch.ones(2), atol=1e-5)
    with torch.no_grad():
        crops = F.adaptive_avg_pool2d(images[:, :, 35:223, 32:220], 112)
        assert torch.allclose(embeddings, F.normalize(arcface_judge.net(crops), dim=-1), atol=1e-5)

    embeddings[0].sum().backward()
    assert images.grad[0, :, 35:223, 32:220].abs().sum() > 0
    assert images.grad[:, :, :35].abs().sum() == 0 and images.grad[1].abs().sum() == 0


def test_arcface_crop_scales_with_the_image() -> None:
    seen = []
    judge = IdentityJudge(nn.Flatten(), input_size=4, crop=FFHQ_CROP)
    judge.net.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    images = torch.zeros(1, 3, 512, 512)
    images[:, :, 70:446, 64:440] = 1  # the 256 crop's bounds, doubled
    judge.embed(images)
    assert torch.equal(seen[0], torch.full((1, 3, 4, 4), 1.0))  # (1 + 1) * 127.5 -> (255 - 127.5) / 127.5


class PixelNormalisingNet(nn.Module):
    """Like insightface's models converted from MXNet: raw pixels in, normalised by the graph's first nodes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten((x - 127.5) * (1 / 127.5), 1)


def test_arcface_feeds_raw_pixels_to_models_that_normalise_inside(tmp_path: Path) -> None:
    path = tmp_path / "mxnet_style.onnx"
    _export_onnx(PixelNormalisingNet(), path)
    graph = onnx.load(str(path))
    for index, node in enumerate(graph.graph.node):
        node.name = f"{node.op_type}_{index}"  # MXNet-style names, which insightface's rule looks at
    onnx.save(graph, str(path))

    judge = IdentityJudge.from_onnx(path)
    assert (judge.input_mean, judge.input_std) == (0.0, 1.0)
    crops = torch.rand(1, 3, 112, 112) * 2 - 1
    images = F.pad(crops, (32, 256 - 32 - 112, 35, 256 - 35 - 112))
    judge.crop = (35 / 256, 147 / 256, 32 / 256, 144 / 256)
    assert torch.allclose(judge.embed(images), F.normalize(crops.flatten(1), dim=-1), atol=1e-5)


def test_arcface_bad_files_raise_clear_errors(tmp_path: Path, arcface_onnx: Path) -> None:
    with pytest.raises(JudgeLoadError, match="no such ArcFace model file"):
        IdentityJudge.from_onnx(tmp_path / "w600k_r50.onnx")
    with pytest.raises(JudgeLoadError, match="truncated"):
        IdentityJudge.from_onnx(_truncated_copy(arcface_onnx))


# --- BiSeNet face parser -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def parser_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    parser = FaceParser()
    _randomise_batchnorm(parser)
    path = tmp_path_factory.mktemp("parser") / "79999_iter.pth"
    torch.save(parser.state_dict(), path)
    return path


def test_parser_checkpoint_has_the_released_layout(parser_checkpoint: Path) -> None:
    state = torch.load(parser_checkpoint, weights_only=True)
    for key, shape in {
        "cp.resnet.conv1.weight": (64, 3, 7, 7),
        "cp.resnet.layer4.1.bn2.running_var": (512,),
        "cp.resnet.layer2.0.downsample.0.weight": (128, 64, 1, 1),
        "cp.arm16.conv.conv.weight": (128, 256, 3, 3),
        "cp.arm32.conv_atten.weight": (128, 128, 1, 1),
        "cp.conv_head32.bn.weight": (128,),
        "cp.conv_head16.conv.weight": (128, 128, 3, 3),
        "cp.conv_avg.conv.weight": (128, 512, 1, 1),
        "ffm.convblk.conv.weight": (256, 256, 1, 1),
        "ffm.conv1.weight": (64, 256, 1, 1),
        "conv_out.conv_out.weight": (19, 256, 1, 1),
        "conv_out16.conv_out.weight": (19, 64, 1, 1),
        "conv_out32.conv.conv.weight": (64, 128, 3, 3),
    }.items():
        assert tuple(state[key].shape) == shape, key
    assert not any(key.startswith(("mean", "std")) for key in state)
    assert not any("layer1.0.downsample" in key for key in state)


def test_parser_loads_strictly_and_parses_at_the_input_size(parser_checkpoint: Path) -> None:
    parser = FaceParser.from_checkpoint(parser_checkpoint)
    saved = torch.load(parser_checkpoint, weights_only=True)
    assert all(torch.equal(parser.state_dict()[k], v) for k, v in saved.items())
    assert parser.num_classes == 19 and len(parser.class_names) == 19
    assert parser.class_names[0] == "background" and parser.class_names[17] == "hair"

    labels = parser.parse(torch.rand(1, 3, 96, 64) * 2 - 1)
    assert labels.shape == (1, 96, 64) and labels.dtype == torch.long
    assert 0 <= labels.min() and labels.max() < 19


def test_parser_bad_files_raise_clear_errors(tmp_path: Path, parser_checkpoint: Path) -> None:
    with pytest.raises(JudgeLoadError, match="no such face parser checkpoint"):
        FaceParser.from_checkpoint(tmp_path / "79999_iter.pth")
    with pytest.raises(JudgeLoadError, match="truncated"):
        FaceParser.from_checkpoint(_truncated_copy(parser_checkpoint))
    state = torch.load(parser_checkpoint, weights_only=True)
    del state["conv_out16.conv_out.weight"]
    torch.save(state, tmp_path / "incomplete.pth")
    with pytest.raises(JudgeLoadError, match="conv_out16.conv_out.weight"):
        FaceParser.from_checkpoint(tmp_path / "incomplete.pth")
