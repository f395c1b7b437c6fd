"""The evaluation metrics against numpy on small real judges, accumulated in pieces and across two processes."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import Metric, MetricCollection

from metrics.attribute_edit import AttributeEditAccuracy, AttributeLeakage
from metrics.bootstrap import bootstrap_scores, per_face_states, weighted_scores
from metrics.directional_clip import DirectionalCLIPSimilarity
from metrics.edit_metrics import edit_scores
from metrics.identity_similarity import IdentitySimilarity
from metrics.segmentation_consistency import SegmentationConsistency
from synthface.attributes import ATTRIBUTE_INDEX, ATTRIBUTES, GROUP_OF, GROUPS

SIZE = 5  # 5x5 images: one pixel per SynthFace attribute for the pixel attribute judge
FACES = 16


class ProjectionJudge(nn.Module):
    """CLIP and identity judge: a fixed random projection of the pixels (images) or character counts (text)."""

    def __init__(self, seed: int, dim: int = 16):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(dim, 3 * SIZE * SIZE, generator=generator), requires_grad=False)
        self.text_weight = nn.Parameter(torch.randn(dim, 128, generator=generator), requires_grad=False)

    def encode_image(self, images: Tensor) -> Tensor:
        return F.normalize(images.flatten(1) @ self.weight.T, dim=1)

    embed = encode_image

    def encode_text(self, text: str) -> Tensor:
        counts = torch.bincount(torch.tensor(list(text.encode())), minlength=128).float()
        return F.normalize(self.text_weight @ counts, dim=0)

    def text_direction(self, source: str, target: str) -> Tensor:
        return F.normalize(self.encode_text(target) - self.encode_text(source), dim=0)


class ThresholdParser(nn.Module):
    """Classes from the pixels' channel mean cut at fixed levels; the last class never occurs."""

    edges = torch.tensor([-0.3, 0.0, 0.3])
    num_classes = 5

    def parse(self, images: Tensor) -> Tensor:
        return torch.bucketize(images.mean(1), self.edges)


class PixelAttributeJudge(nn.Module):
    """Attribute i is present where pixel i (row-major) is brighter than mid-grey, averaged over channels."""

    def predict(self, images: Tensor) -> Tensor:
        return torch.sigmoid(8 * images.mean(1).flatten(1))


def faces(seed: int = 1) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    source = torch.rand(FACES, 3, SIZE, SIZE, generator=generator) * 2 - 1
    edited = (source + torch.randn(source.shape, generator=generator)).clamp(-1, 1)
    return source, edited


def all_metrics() -> dict[str, Metric]:
    attribute_judge = PixelAttributeJudge()
    return {
        "sdir": DirectionalCLIPSimilarity(ProjectionJudge(seed=0), "face", "smiling face"),
        "sc": SegmentationConsistency(ThresholdParser()),
        "id": IdentitySimilarity(ProjectionJudge(seed=1)),
        "accuracy": AttributeEditAccuracy(attribute_judge, "smile"),
        "leakage": AttributeLeakage(attribute_judge, "blond_hair"),
    }


def measured(metric: Metric, *batches: tuple[Tensor, ...]) -> Tensor | dict[str, Tensor]:
    for batch in batches:
        metric.update(*batch)
    return metric.compute()


# numpy references


def np_embed(judge: ProjectionJudge, images: Tensor) -> np.ndarray:
    vectors = images.numpy().reshape(len(images), -1) @ judge.weight.numpy().T
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def np_present(images: Tensor) -> np.ndarray:
    return images.numpy().mean(1).reshape(len(images), -1) >= 0


def np_sdir(judge: ProjectionJudge, direction: np.ndarray, source: Tensor, edited: Tensor) -> float:
    delta = np_embed(judge, edited) - np_embed(judge, source)
    norms = np.linalg.norm(delta, axis=1)
    cosines = np.divide(delta @ direction, norms, out=np.zeros_like(norms), where=norms > 0)
    return cosines.mean()


def np_segmentation(source: Tensor, edited: Tensor) -> tuple[float, float]:
    edges = ThresholdParser.edges.numpy()
    before = np.digitize(source.numpy().mean(1), edges, right=True)
    after = np.digitize(edited.numpy().mean(1), edges, right=True)
    ious = []
    for c in range(ThresholdParser.num_classes):
        union = ((before == c) | (after == c)).sum()
        if union:
            ious.append(((before == c) & (after == c)).sum() / union)
    return np.mean(ious), (before == after).mean()


def np_accuracy(attribute: str, source: Tensor, edited: Tensor, labels: Tensor | None = None) -> float:
    i = ATTRIBUTE_INDEX[attribute]
    lacking = ~np_present(source)[:, i] if labels is None else labels.numpy()[:, i] < 0.5
    return (lacking & np_present(edited)[:, i]).sum() / lacking.sum()


def np_leakage(attribute: str, source: Tensor, edited: Tensor) -> float:
    tied = GROUPS[GROUP_OF[attribute]].members if attribute in GROUP_OF else (attribute,)
    others = [i for i, name in enumerate(ATTRIBUTES) if name not in tied]
    return (np_present(source) != np_present(edited))[:, others].mean()


# agreement with numpy


def test_directional_clip_similarity_matches_numpy():
    source, edited = faces()
    judge = ProjectionJudge(seed=0)
    direction = judge.text_direction("face", "smiling face").numpy()
    edited[:3] = source[:3]  # unmoved images count as a cosine of 0
    expected = np_sdir(judge, direction, source, edited)
    assert abs(expected) > 1e-3
    value = measured(DirectionalCLIPSimilarity(judge, "face", "smiling face"), (source, edited))
    assert value.item() == pytest.approx(expected, abs=1e-6)


def test_identity_similarity_matches_numpy():
    source, edited = faces()
    judge = ProjectionJudge(seed=1)
    expected = (np_embed(judge, source) * np_embed(judge, edited)).sum(1).mean()
    assert expected < 0.99
    assert measured(IdentitySimilarity(judge), (source, edited)).item() == pytest.approx(expected, abs=1e-6)


def test_segmentation_consistency_matches_numpy_over_the_classes_that_occur():
    source, edited = faces()
    miou, pixel_acc = np_segmentation(source, edited)
    assert 0 < miou < 1 and 0 < pixel_acc < 1
    value = measured(SegmentationConsistency(ThresholdParser()), (source, edited))
    assert value["miou"].item() == pytest.approx(miou, abs=1e-6)
    assert value["pixel_acc"].item() == pytest.approx(pixel_acc, abs=1e-6)


@pytest.mark.parametrize("attribute", ["smile", "bangs", "blue_eyes"])
def test_attribute_edit_accuracy_matches_numpy(attribute):
    source, edited = faces()
    expected = np_accuracy(attribute, source, edited)
    assert 0 < expected < 1
    value = measured(AttributeEditAccuracy(PixelAttributeJudge(), attribute), (source, edited))
    assert value.item() == pytest.approx(expected)


def test_attribute_edit_accuracy_takes_lacking_from_ground_truth_labels():
    source, edited = faces()
    labels = (torch.rand(FACES, len(ATTRIBUTES), generator=torch.Generator().manual_seed(0)) < 0.5).float()
    expected = np_accuracy("smile", source, edited, labels)
    assert expected != pytest.approx(np_accuracy("smile", source, edited))
    value = measured(AttributeEditAccuracy(PixelAttributeJudge(), "smile"), (source, edited, labels))
    assert value.item() == pytest.approx(expected)


@pytest.mark.parametrize("attribute", ["smile", "blond_hair", "curly_hair"])
def test_attribute_leakage_matches_numpy(attribute):
    source, edited = faces()
    expected = np_leakage(attribute, source, edited)
    assert 0 < expected < 1
    value = measured(AttributeLeakage(PixelAttributeJudge(), attribute), (source, edited))
    assert value.item() == pytest.approx(expected)


@pytest.mark.parametrize(("attribute", "leakage"), [("blond_hair", 0.0), ("smile", 5 / 21), ("curly_hair", 5 / 24)])
def test_switching_the_hair_colour_group_leaks_only_outside_it(attribute, leakage):
    source, _ = faces()
    hair_colours = [ATTRIBUTE_INDEX[name] for name in GROUPS["hair_colour"].members]
    pixels = source.flatten(2).clone()
    pixels[:, :, hair_colours] *= -1  # every face flips all five hair colours, nothing else
    edited = pixels.view_as(source)
    value = measured(AttributeLeakage(PixelAttributeJudge(), attribute), (source, edited))
    assert value.item() == pytest.approx(leakage)


# edge cases and bookkeeping


def test_an_unchanged_image_scores_no_direction_full_identity_and_full_consistency():
    source, _ = faces()
    assert measured(DirectionalCLIPSimilarity(ProjectionJudge(seed=0), "face", "smiling face"), (source, source)) == 0
    assert measured(IdentitySimilarity(ProjectionJudge(seed=1)), (source, source)).item() == pytest.approx(1)
    consistency = measured(SegmentationConsistency(ThresholdParser()), (source, source))
    assert consistency["miou"] == 1 and consistency["pixel_acc"] == 1


@pytest.mark.parametrize("metric", [AttributeEditAccuracy, AttributeLeakage])
def test_an_unknown_attribute_is_refused_with_the_valid_names(metric):
    with pytest.raises(ValueError, match="renders: smile, surprised"):
        metric(PixelAttributeJudge(), "blonde_hair")


@pytest.mark.parametrize("name", ["sdir", "sc", "id", "accuracy", "leakage"])
def test_judges_are_not_part_of_the_metric_module(name):
    metric = all_metrics()[name]
    assert list(metric.children()) == [] and list(metric.state_dict()) == []


@pytest.mark.parametrize("name", ["sdir", "sc", "id", "accuracy", "leakage"])
def test_several_updates_equal_one_update_on_all_faces(name):
    source, edited = faces()
    whole = measured(all_metrics()[name], (source, edited))
    pieces = [(source[a:b], edited[a:b]) for a, b in [(0, 5), (5, 10), (10, FACES)]]
    torch.testing.assert_close(measured(all_metrics()[name], *pieces), whole)


def _measure_half(rank: int, world_size: int, init_file: Path, out_dir: Path) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    source, edited = faces()
    half = slice(rank * FACES // world_size, (rank + 1) * FACES // world_size)
    results = {name: measured(metric, (source[half], edited[half])) for name, metric in all_metrics().items()}
    torch.save(results, out_dir / f"rank{rank}.pt")
    dist.destroy_process_group()


def test_two_processes_on_halves_compute_what_one_computes_on_all(tmp_path):
    mp.spawn(_measure_half, args=(2, tmp_path / "init", tmp_path), nprocs=2)
    source, edited = faces()
    expected = {name: measured(metric, (source, edited)) for name, metric in all_metrics().items()}
    for rank in range(2):
        torch.testing.assert_close(torch.load(tmp_path / f"rank{rank}.pt", weights_only=True), expected)


# -- bootstrap intervals ------------------------------------------------------------------------------------------

def collection() -> MetricCollection:
    return MetricCollection(all_metrics(), compute_groups=False)


def test_per_face_states_weighted_by_draws_equal_the_metrics_on_the_drawn_faces():
    """A resample drawing face 0 three times, face 5 once and face 7 twice scores what the metrics score on those
    six images: the pooled metric (e.g. SC's summed intersections), not a mean of per-face scores."""
    source, edited = faces()
    metrics = collection()
    states = per_face_states(metrics, source, edited)
    # float sums in another order: equal to rounding (the images themselves are summed face by face here)
    assert weighted_scores(metrics, states, torch.ones(FACES, dtype=torch.long)) == pytest.approx(
        _computed(source, edited), rel=1e-5, abs=1e-6, nan_ok=True)
    drawn = torch.tensor([0, 0, 0, 5, 7, 7])
    weights = torch.bincount(drawn, minlength=FACES)
    assert weighted_scores(metrics, states, weights) == pytest.approx(
        _computed(source[drawn], edited[drawn]), rel=1e-5, abs=1e-6, nan_ok=True)


def test_bootstrap_intervals_hold_the_score_on_all_faces_and_shrink_with_more_faces():
    source, edited = faces()
    metrics = collection()
    few = bootstrap_scores(metrics, per_face_states(metrics, source[:6], edited[:6]), resamples=200)
    many = bootstrap_scores(metrics, per_face_states(metrics, source, edited), resamples=200)
    assert set(many) == {"sdir", "sc", "sc_pixel_acc", "id", "accuracy", "leakage"}
    for name, (score, low, high) in many.items():
        assert low <= score <= high and low < high, (name, score, low, high)
    assert many["id"][2] - many["id"][1] < few["id"][2] - few["id"][1]


def _computed(source: Tensor, edited: Tensor) -> dict[str, float]:
    metrics = collection()
    metrics.update(source, edited)
    return edit_scores(metrics)
