"""The engine's own SSIM agrees with scikit-image's on the same luma planes."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from anigraph.media.ssim import luma, ssim


def _pair(seed: int, noise: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gradient = np.linspace(0, 255, 160)[None, :, None] * np.ones((90, 1, 3))
    a = np.clip(gradient + rng.normal(0, 20, (90, 160, 3)), 0, 255).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-noise, noise + 1, a.shape), 0, 255)
    return a, b.astype(np.uint8)


@pytest.mark.parametrize(("seed", "noise"), [(1, 5), (2, 40), (3, 120)])
def test_matches_scikit_image(seed: int, noise: int) -> None:
    a, b = _pair(seed, noise)
    expected = structural_similarity(luma(a), luma(b), win_size=7, data_range=255)
    assert ssim(a, b) == pytest.approx(expected, abs=1e-6)
    assert ssim(a, b) < 1.0


def test_identical_frames_score_one_and_rgba_is_compared_on_colour() -> None:
    a, _ = _pair(4, 0)
    rgba = np.concatenate([a, np.full((*a.shape[:2], 1), 255, np.uint8)], axis=2)
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(rgba, a) == pytest.approx(1.0)


def test_refuses_frames_of_different_or_too_small_sizes() -> None:
    a, _ = _pair(5, 0)
    with pytest.raises(ValueError, match="differ in size"):
        ssim(a, a[:-1])
    with pytest.raises(ValueError, match="smaller than"):
        ssim(a[:6], a[:6])
