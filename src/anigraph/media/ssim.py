"""Structural similarity of decoded frames, for the measured result and the engine's searches.

The engine measures what it made (``Output.Ssim``, ``LoopSeam``, the byte-budget search), so it
needs SSIM at run time without the test-only scikit-image. This is the standard SSIM (Wang et
al. 2004) on luma with a 7x7 uniform window, the constants of the paper (K1 0.01, K2 0.03) and
data range 255: scikit-image's ``structural_similarity(..., win_size=7, data_range=255)`` on the
same luma plane gives the same value to within 1e-6.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

WINDOW = 7
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
# BT.601 luma, the weights FFmpeg's rgb->yuv uses for SD and PyAV's default.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)


def luma(frame: NDArray[np.uint8]) -> NDArray[np.float64]:
    """A (h, w) float plane from an (h, w), (h, w, 3) or (h, w, 4) uint8 frame."""
    if frame.ndim == 2:
        return frame.astype(np.float64)
    rgb = frame[..., :3].astype(np.float64)
    plane: NDArray[np.float64] = rgb @ _LUMA
    return plane


def _window_mean(plane: NDArray[np.float64]) -> NDArray[np.float64]:
    # Means over every full 7x7 window (valid positions only), from an integral image.
    padded = np.zeros((plane.shape[0] + 1, plane.shape[1] + 1), dtype=np.float64)
    np.cumsum(np.cumsum(plane, axis=0), axis=1, out=padded[1:, 1:])
    w = WINDOW
    total = padded[w:, w:] - padded[:-w, w:] - padded[w:, :-w] + padded[:-w, :-w]
    mean: NDArray[np.float64] = total / (w * w)
    return mean


def ssim_planes(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """Mean SSIM of two equal-sized luma planes (each side at least 7 pixels)."""
    if a.shape != b.shape:
        raise ValueError(f"planes differ in size: {a.shape} vs {b.shape}")
    if min(a.shape) < WINDOW:
        raise ValueError(f"planes of {a.shape} are smaller than the {WINDOW}x{WINDOW} window")
    n = WINDOW * WINDOW
    # Sample (not population) variance, as scikit-image does.
    unbias = n / (n - 1)
    mu_a, mu_b = _window_mean(a), _window_mean(b)
    var_a = (_window_mean(a * a) - mu_a * mu_a) * unbias
    var_b = (_window_mean(b * b) - mu_b * mu_b) * unbias
    cov = (_window_mean(a * b) - mu_a * mu_b) * unbias
    numerator = (2 * mu_a * mu_b + _C1) * (2 * cov + _C2)
    denominator = (mu_a * mu_a + mu_b * mu_b + _C1) * (var_a + var_b + _C2)
    return float(np.mean(numerator / denominator))


def ssim(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> float:
    """Mean SSIM of two equal-sized frames (gray, RGB or RGBA uint8), compared on luma."""
    return ssim_planes(luma(a), luma(b))
