"""Colour palettes: libimagequant builds them, Pillow remaps frames to them.

One palette is built from a histogram of many frames, so colours stay stable from frame to
frame (unchanged pixels keep their index and cost nothing in the GIF). libimagequant's own
remapping is ~15x slower than Pillow's cached nearest-colour search and keeps state in its
result object, so remapping is Pillow's job.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from imagequant import ffi, lib
from numpy.typing import NDArray
from PIL import Image

from anigraph.domain.errors import ErrCodeExt, TaskError

# Index 255 is kept free for transparency: FFmpeg's GIF encoder then marks pixels that did
# not change since the previous frame as transparent instead of writing them again.
COLOURS = 255

TRANSPARENT_INDEX = 255


class _Liq:
    """Owns libimagequant handles and frees them in one place."""

    def __init__(self) -> None:
        self.attr = lib.liq_attr_create()
        if self.attr == ffi.NULL:
            raise TaskError(ErrCodeExt.INTERNAL_ERROR, "libimagequant could not start")
        self._images: list[Any] = []
        self._keepalive: list[Any] = []

    def image(self, rgba: NDArray[np.uint8]) -> Any:
        data = np.ascontiguousarray(rgba)
        height, width = data.shape[:2]
        buffer = ffi.from_buffer(data)
        self._keepalive.append((data, buffer))
        image = lib.liq_image_create_rgba(self.attr, buffer, width, height, 0.0)
        if image == ffi.NULL:
            raise TaskError(ErrCodeExt.INTERNAL_ERROR, "libimagequant rejected a frame")
        self._images.append(image)
        return image

    def release(self, image: Any) -> None:
        lib.liq_image_destroy(image)
        index = self._images.index(image)
        del self._images[index]
        del self._keepalive[index]

    def close(self) -> None:
        for image in self._images:
            lib.liq_image_destroy(image)
        self._images.clear()
        self._keepalive.clear()
        lib.liq_attr_destroy(self.attr)


class Palette:
    """A quantised palette; frames are remapped to it with Pillow's C nearest-colour search."""

    def __init__(self, colours: NDArray[np.uint8]) -> None:
        self.colours = colours  # (n, 3) RGB, n <= COLOURS
        table = np.zeros((256, 3), dtype=np.uint8)
        table[: len(colours)] = colours
        # Unused entries repeat the first colour so a nearest search can never prefer them.
        table[len(colours) :] = colours[0]
        self.rgb256 = table
        self._pil = Image.new("P", (1, 1))
        self._pil.putpalette(table.reshape(-1).tolist())

    def argb256(self) -> NDArray[np.uint8]:
        """The 256-entry ARGB table PyAV's ``pal8`` frames take; entry 255 is transparent."""
        table = np.zeros((256, 4), dtype=np.uint8)
        table[:, 0] = 255
        table[:, 1:] = self.rgb256
        table[TRANSPARENT_INDEX] = 0
        return table

    def remap(self, rgba: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """Nearest-colour indices of one RGBA frame; thread-safe, releases the GIL."""
        height, width = rgba.shape[:2]
        data = np.ascontiguousarray(rgba)

        image = Image.frombytes("RGB", (width, height), data, "raw", "RGBX")
        indices = np.asarray(image.quantize(palette=self._pil, dither=Image.Dither.NONE))
        # Ties with the padding entries resolve to colour 0, which they repeat.
        return np.where(indices < len(self.colours), indices, 0).astype(np.uint8)


def _check(code: int) -> None:
    if code != lib.LIQ_OK:
        raise TaskError(ErrCodeExt.INTERNAL_ERROR, f"libimagequant failed with code {code}")


class PaletteBuilder:
    """Accumulates a colour histogram frame by frame; frames need not stay in memory."""

    def __init__(self, max_quality: int, speed: int, colours: int = COLOURS) -> None:
        self._liq = _Liq()
        lib.liq_set_max_colors(self._liq.attr, min(max(colours, 2), COLOURS))
        lib.liq_set_quality(self._liq.attr, 0, max_quality)
        lib.liq_set_speed(self._liq.attr, speed)
        self._histogram = lib.liq_histogram_create(self._liq.attr)

    def add(self, rgba: NDArray[np.uint8]) -> None:
        # The histogram copies the colours, so the frame's buffers are released at once.
        image = self._liq.image(rgba)
        _check(lib.liq_histogram_add_image(self._histogram, self._liq.attr, image))
        self._liq.release(image)

    def finish(self) -> Palette:
        try:
            result_p = ffi.new("liq_result**")
            _check(lib.liq_histogram_quantize(self._histogram, self._liq.attr, result_p))
            result = result_p[0]
            try:
                pal = lib.liq_get_palette(result)
                colours = np.array(
                    [(e.r, e.g, e.b) for e in pal.entries[0 : pal.count]], dtype=np.uint8
                ).reshape(-1, 3)
            finally:
                lib.liq_result_destroy(result)
            return Palette(colours)
        finally:
            self.close()

    def close(self) -> None:
        if self._histogram is not None:
            lib.liq_histogram_destroy(self._histogram)
            self._histogram = None
            self._liq.close()
