"""The command's options: both spellings, errors that name them, mode-neutral help.

- Every long option of every subcommand answers to the original tool's
  single-dash spelling too (``-audio`` = ``--audio``); the list is read from
  the parsers, so a new option is covered without touching this file.
- An out-of-range value is reported by the option that gave it
  (``--batch-size``), while the Python API names its keyword (``batch_size``).
- Help texts and validate's report name the feature file of every mode, not
  one mode's file.
"""

from __future__ import annotations

import argparse
import os
import re

import numpy as np
import pytest

from synctalk_audio import cli
from synctalk_audio.commands import COMMANDS, _build_parsers, build_parser
from synctalk_audio.errors import ParameterError
from synctalk_audio.jobs import run_job
from synctalk_audio.modes import REGISTRY
from synctalk_audio.pipeline import Pipeline

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
SPEECH = os.path.join(DATA, "speech_16k_s16_mono.wav")
FLAC = os.path.join(DATA, "speech_16k.flac")

#: What each command needs besides the option under test.
REQUIRED = {
    "validate": ["ref", "cand"],
    "export": ["--checkpoint", "c.pth"],
    "conform": ["ref", "cand"],
    "vectors": ["--model", "m.onnx", "--audio", "a.wav", "--output", "out"],
}


def _long_options() -> list[tuple[str, argparse.Action]]:
    """(command, action) for every ``--long`` option of every subcommand but --help."""
    _, parsers = _build_parsers()
    found = []
    for name, parser in parsers.items():
        for action in parser._actions:
            if any(s.startswith("--") for s in action.option_strings) and action.dest != "help":
                found.append((name, action))
    return found


LONG_OPTIONS = _long_options()


def _value(action: argparse.Action) -> list[str]:
    """A value the option accepts (none for flags)."""
    if action.nargs == 0:
        return []
    if action.choices:
        other = [str(c) for c in action.choices if c != action.default]
        return [other[-1] if other else str(list(action.choices)[-1])]
    if action.type in (int, float):
        return ["3"]
    return ["some-value"]


def test_every_command_has_options():
    commands = {command for command, _ in LONG_OPTIONS}
    assert commands == set(COMMANDS)
    assert len(LONG_OPTIONS) > 40


@pytest.mark.parametrize(
    "command, action",
    LONG_OPTIONS,
    ids=[f"{c}-{max(a.option_strings, key=len)}" for c, a in LONG_OPTIONS],
)
def test_every_long_option_takes_one_dash_too(command: str, action: argparse.Action):
    parser = build_parser()
    for long in (s for s in action.option_strings if s.startswith("--")):
        single = long[1:]
        assert single in action.option_strings, f"{command} {long}: no {single}"
        base = [command, *REQUIRED.get(command, [])]
        with_two = parser.parse_args([*base, long, *_value(action)])
        with_one = parser.parse_args([*base, single, *_value(action)])
        assert vars(with_one) == vars(with_two), (command, long)
        only_default = action.choices is not None and list(action.choices) == [action.default]
        assert (
            getattr(with_one, action.dest) != action.default
            or action.nargs == 0
            or only_default  # one choice, the default (--output-format npy): parsed, not told
        )


def test_help_and_version_with_one_dash(capsys):
    for argv in (["-help"], ["-version"], ["stream", "-help"]):
        with pytest.raises(SystemExit) as stop:
            cli.main(argv)
        assert stop.value.code == 0, argv
    out = capsys.readouterr().out
    assert "synctalk-audio" in out and "usage:" in out


# ---------------------------------------------------------------------------
# errors name the option on the command line, the keyword in Python


def _error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    status = cli.main(argv)
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert len(err.splitlines()) == 1, err
    return err


#: Command-line arguments and the start of the error they must give.
PROCESS_ERRORS = [
    (["--batch-size", "0"], "--batch-size must be a positive integer, got 0"),
    (["-batch-size", "0"], "--batch-size must be a positive integer, got 0"),
    (["--threads", "-1"], "--threads must be a positive integer, got -1"),
    (["--threads", "0", "--mode", "wenet", "--fps", "20"], "--threads must be"),
    (["--workers", "0", "--audio", FLAC], "--workers must be a positive integer, got 0"),
    (["--threads", "0", "--audio", FLAC], "--threads must be a positive integer, got 0"),
    (["--max-duration", "-5"], "--max-duration must be a positive number of seconds"),
    (["--fps", "0"], "--fps must be a number from 1 to below 80"),
]


@pytest.mark.parametrize(
    "extra, expect",
    PROCESS_ERRORS,
    ids=[" ".join(os.path.basename(arg) for arg in extra) for extra, _ in PROCESS_ERRORS],
)
def test_process_errors_name_the_option(test_encoder, tmp_path, capsys, extra, expect):
    out = str(tmp_path / "out")
    argv = ["process", "--audio", SPEECH, "--model", test_encoder.onnx, "--output", out, *extra]
    line = _error_line(capsys, argv)
    assert f"synctalk-audio process: error: {expect}" in line
    assert not os.path.exists(out)


def test_stream_errors_name_the_option(test_encoder, capsys):
    line = _error_line(capsys, ["stream", "--model", test_encoder.onnx, "--threads", "0"])
    assert line == "synctalk-audio stream: error: --threads must be a positive integer, got 0"


def test_python_errors_name_the_keyword(test_encoder, tmp_path):
    with pytest.raises(ParameterError, match=r"^batch_size must be a positive integer, got 0$"):
        Pipeline(test_encoder.onnx, batch_size=0)
    with pytest.raises(ParameterError, match=r"^threads must be a positive integer, got -1$"):
        Pipeline(test_encoder.onnx, threads=-1)
    with pytest.raises(ParameterError, match=r"^workers must be a positive integer, got 0$"):
        run_job(str(tmp_path / "out"), [SPEECH], model=test_encoder.onnx, workers=0)


def test_renaming_touches_only_the_named_parameter():
    error = ParameterError("threads must be a positive integer, got 0", parameter="threads")
    assert error.named({"threads": "--threads"}) == "--threads must be a positive integer, got 0"
    assert error.named({"workers": "--workers"}) == str(error)
    assert ParameterError("threads: bad").named({"threads": "--threads"}) == "threads: bad"
    _, parsers = _build_parsers()
    assert parsers["process"].option_of["batch_size"] == "--batch-size"
    assert parsers["stream"].option_of["read_size"] == "--read-size"


# ---------------------------------------------------------------------------
# every mode's feature file, not one


def test_help_names_every_mode_feature_file(capsys):
    files = [mode.feature_file for mode in REGISTRY.values()]
    assert len(files) >= 3
    for argv in (["process", "--help"], ["stream", "--help"], ["validate", "--help"]):
        with pytest.raises(SystemExit):
            cli.main(argv)
        text = " ".join(capsys.readouterr().out.split())
        for name in files:
            assert name in text, (argv, name)
    process = " ".join(build_parser().format_help().split())
    assert "aud_ave.npy" not in process


def test_validate_names_the_mode_feature_file(tmp_path, capsys):
    rows = np.zeros((5, 2, 1024), np.float32)
    for side in ("ref", "cand"):
        (tmp_path / side).mkdir()
        np.save(tmp_path / side / "aud_hu.npy", rows)
    assert cli.main(["validate", str(tmp_path / "ref"), str(tmp_path / "cand")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("aud_hu.npy (5, 2, 1024): max abs 0"), out
    assert "aud_ave" not in out
    np.save(tmp_path / "cand" / "aud_hu.npy", rows[:4])
    assert cli.main(["validate", str(tmp_path / "ref"), str(tmp_path / "cand")]) == 1
    assert "MISMATCH: aud_hu.npy shapes differ" in capsys.readouterr().out
    os.remove(tmp_path / "cand" / "aud_hu.npy")
    np.save(tmp_path / "cand" / "aud_ave.npy", np.zeros((5, 512), np.float32))
    assert cli.main(["validate", str(tmp_path / "ref"), str(tmp_path / "cand")]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH: feature files differ: aud_hu.npy vs aud_ave.npy" in out


# ---------------------------------------------------------------------------
# the README's synopsis


def test_readme_synopsis_lists_every_process_option():
    """The synopsis under "## The command" names every option of `process --help`."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
        text = f.read()
    block = text.split("## The command\n", 1)[1].strip().split("\n\n", 1)[0]
    assert block.startswith("synctalk-audio process"), block
    listed = set(re.findall(r"--[a-z][a-z-]*", block))
    _, parsers = _build_parsers()
    options = set(parsers["process"].option_of.values()) - {"--help"}
    assert options - listed == set(), "missing from the README's synopsis"
    assert listed - options == set(), "not options of process"
