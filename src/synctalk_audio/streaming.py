"""The streaming engine under its public name: see `synctalk_audio.engines.streaming`."""

from __future__ import annotations

from .engines.streaming import (
    FeatureStream,
    FeatureStreamer,
    StreamFrame,
    feed_pcm,
    samples_needed_for_frame,
)

__all__ = [
    "FeatureStream",
    "FeatureStreamer",
    "StreamFrame",
    "feed_pcm",
    "samples_needed_for_frame",
]
