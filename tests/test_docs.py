"""The examples in the public docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "synctalk_audio.frontends.audio",
    "synctalk_audio.encoders",
    "synctalk_audio.encoders.base",
    "synctalk_audio.encoders.kinds",
    "synctalk_audio.encoders.onnxruntime_backend",
    "synctalk_audio.encoders.openvino_backend",
    "synctalk_audio.outputs.features",
    "synctalk_audio.frontends.mel",
    "synctalk_audio.modes.ave",
    "synctalk_audio.options",
    "synctalk_audio.engines.pipeline",
    "synctalk_audio.engines.streaming",
    "synctalk_audio.frontends.windows",
    "synctalk_audio.jobs.local",
    "synctalk_audio.jobs.plan",
    "synctalk_audio.jobs.run",
    "synctalk_audio.errors",
    "synctalk_audio.modes",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"


def test_examples_exist():
    """The API's main entry points carry runnable examples."""
    finder = doctest.DocTestFinder()
    for name in (
        "synctalk_audio.frontends.mel",
        "synctalk_audio.frontends.windows",
        "synctalk_audio.frontends.audio",
    ):
        tests = finder.find(importlib.import_module(name))
        assert sum(len(t.examples) for t in tests) >= 2, name
