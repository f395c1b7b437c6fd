"""Squared errors over the pixels an attribute edit changed: pooled over the batch, or one mean per face."""

import pytest
import torch

from metrics.changed_region import changed_pixels, changed_region_mse


def _two_faces():
    """Face 0 changed one pixel, predicted wrong by 1 in each channel; face 1 changed 81 pixels, predicted right."""
    before, after = torch.zeros(2, 3, 10, 10), torch.zeros(2, 3, 10, 10)
    after[0, :, 0, 0] = 1.0
    after[1, :, 1:, 1:] = 1.0
    prediction = after.clone()
    prediction[0, :, 0, 0] = 0.0
    return prediction, after, changed_pixels(before, after)


def test_the_changed_pixels_are_those_where_any_channel_differs():
    before, after = torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    after[0, 2, 1, 3] = 0.5
    region = changed_pixels(before, after)
    assert region.shape == (1, 1, 4, 4) and region.sum() == 1 and region[0, 0, 1, 3] == 1


def test_pooled_a_face_weighs_by_its_region_and_per_face_each_face_weighs_alike():
    prediction, target, region = _two_faces()
    assert changed_region_mse(prediction, target, region).item() == pytest.approx(1 / 82)
    assert changed_region_mse(prediction, target, region, per_face=True).item() == pytest.approx(1 / 2)


def test_per_face_leaves_out_a_face_whose_flip_changed_nothing():
    prediction, target, region = _two_faces()
    region[1] = 0.0
    assert changed_region_mse(prediction, target, region, per_face=True).item() == pytest.approx(1.0)
    assert changed_region_mse(prediction, target, torch.zeros_like(region), per_face=True).item() == 0.0
