"""One decoded frame scaled on several threads at once (it is on screen for several output
times): ``VideoFrame.reformat`` shares the frame's swscale context and crashes the process."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import av
import numpy as np

from anigraph.media.scaling import reformat
from media_factory import pattern


def test_the_same_frame_scaled_on_four_threads_at_once() -> None:
    frame = av.VideoFrame.from_ndarray(pattern(5, 320, 180), format="rgb24")
    expected = reformat(frame, width=64, height=36, format="gray", interpolation="AREA")

    def scale(_: int) -> np.ndarray:
        small = reformat(frame, width=64, height=36, format="gray", interpolation="AREA")
        return np.asarray(small.to_ndarray())

    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(500):
            for result in pool.map(scale, range(8)):
                assert np.array_equal(result, expected.to_ndarray())
