"""Scaling decoded frames on a thread pool without sharing swscale state between threads.

``VideoFrame.reformat`` keeps one swscale context on the frame itself. A decoded frame that stays
on screen for several output times (upsampling, or analysis looks closer together than the
frames left after dropping some) is submitted to the pool once per time, so two threads would
scale through one context at once, and FFmpeg crashes. One reformatter per thread shares nothing;
swscale still reuses its context while the sizes and formats do not change.
"""

from __future__ import annotations

import threading
from typing import Any

import av
from av.video.reformatter import VideoReformatter

_local = threading.local()


def reformat(frame: av.VideoFrame, **options: Any) -> av.VideoFrame:
    """``frame.reformat(**options)`` through this thread's own reformatter."""
    reformatter = getattr(_local, "reformatter", None)
    if reformatter is None:
        reformatter = _local.reformatter = VideoReformatter()
    scaled: av.VideoFrame = reformatter.reformat(frame, **options)
    return scaled
