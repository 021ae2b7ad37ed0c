"""Shared inputs, options and the history record of the benchmark suites.

Every ``bench_*.py`` file here is a pytest-benchmark suite (``python_files``
in pyproject.toml collects them; the project's test command runs ``tests/``
only). The default run takes a few minutes on two cores:

    python -m pytest benchmarks --benchmark-enable

``--heavy`` adds the suites that start many processes or run for minutes
(the whole command against the librosa + PyTorch path, the modes against the
upstream scripts, live capacity, jobs, long files); ``--history`` saves the
run as one JSON file in benchmarks/history/ named by date, commit and machine
(CPU model, core count and SIMD flags are in its ``machine_info``), which
tools/bench_report.py turns into the ratio table, the plot and the headline
table of docs/BENCHMARKS.md.

Each suite times the project's code and the reference it is compared with
round by round, alternating (`ratio.interleaved`), and records in
``extra_info["ratios"]`` the ratio of the two medians measured in that run:
absolute seconds on a shared machine move by 2-3x within minutes, ratios of
side-by-side runs much less.

The encoder comes from ``--encoder PATH`` or, by default, the random-weight
test encoder made by models/make_test_encoder.py (speed does not depend on
the weights).
"""

from __future__ import annotations

import os

# librosa's mel matmul (OpenBLAS) on one thread, as the core's 1-thread
# candidates: idle OpenBLAS workers spin for ~0.1 s after each call and would
# take the second core from the next candidate. Before NumPy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import datetime  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(ROOT, "benchmarks")
HISTORY = os.path.join(HERE, "history")
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))

from model_fixture import hubert_checkpoint, hubert_onnx, test_encoder, wenet_model  # noqa: E402,F401


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("synctalk-audio benchmarks")
    group.addoption("--encoder", default=None, help="ONNX encoder to benchmark")
    group.addoption(
        "--heavy",
        action="store_true",
        help="also run the suites marked heavy (many processes, minutes each)",
    )
    group.addoption(
        "--history",
        action="store_true",
        help="save the run's JSON in benchmarks/history/ (date, commit, machine in its name)",
    )
    group.addoption("--hubert-checkpoint", default=None, help="HuBERT checkpoint for the modes")
    group.addoption("--hubert-model", default=None, help="its ONNX export")
    group.addoption("--wenet-model", default=None, help="WeNet encoder ONNX for the modes")


def cpu_model() -> str:
    """The CPU's model name as /proc/cpuinfo (or the platform) gives it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("model name", "Model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The SIMD flags that pick the core's and ONNX Runtime's code paths."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return []
    match = re.search(r"^(flags|Features)\s*:(.*)$", text, re.MULTILINE)
    have = set(match.group(2).split()) if match else set()
    wanted = ["sse2", "sse4_2", "avx", "avx2", "fma", "avx512f", "asimd"]
    return [flag for flag in wanted if flag in have]


def machine_name() -> str:
    """A file-name-safe label of the machine kind: arch, CPU model, cores."""
    model = re.sub(r"[^A-Za-z0-9]+", "-", cpu_model()).strip("-")
    return f"{platform.machine()}-{model}-{os.cpu_count()}c"


def _git(*args: str) -> str:
    """git's answer, or "" where there is no git (a wheel tested outside the checkout)."""
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    except FileNotFoundError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "heavy: a suite of minutes or many processes; runs with --heavy only"
    )
    # The commit the run measures: the one checked out when it starts
    # (pytest-benchmark asks git at the end, after any commit made meanwhile).
    config.stash[_START_COMMIT] = (
        _git("rev-parse", "HEAD"),
        bool(_git("status", "--porcelain", "--untracked-files=no")),
    )
    if config.getoption("--history", default=False):
        full, dirty = config.stash[_START_COMMIT]
        commit = full[:12] or "nocommit"
        if dirty:
            commit += "-dirty"
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        os.makedirs(HISTORY, exist_ok=True)
        path = os.path.join(HISTORY, f"{stamp}_{commit}_{machine_name()}.json")
        # pytest-benchmark opens --benchmark-json itself when it parses the
        # command line; set before its own pytest_configure reads it.
        config.option.benchmark_json = open(path, "wb")  # noqa: SIM115  (closed by the plugin)
        config.stash[_HISTORY_PATH] = path


_HISTORY_PATH = pytest.StashKey[str]()
_START_COMMIT = pytest.StashKey[tuple[str, bool]]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--heavy"):
        return
    skip = pytest.mark.skip(reason="heavy: run with --heavy")
    for item in items:
        if "heavy" in item.keywords:
            item.add_marker(skip)


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    machine_info["cpu_model"] = cpu_model()
    machine_info["cpu_count"] = os.cpu_count()
    machine_info["cpu_flags"] = cpu_flags()
    machine_info["machine_name"] = machine_name()
    try:
        machine_info["load_average"] = list(os.getloadavg())
    except OSError:
        pass


def pytest_benchmark_update_commit_info(config: pytest.Config, commit_info: dict) -> None:
    # The commit checked out when the run started; and pytest-benchmark counts
    # untracked files as dirty, the run's own history file among them: only
    # changes to tracked files make a run "-dirty".
    full, dirty = config.stash[_START_COMMIT]
    if full:
        commit_info["id"] = full
    commit_info["dirty"] = dirty


def pytest_benchmark_update_json(
    config: pytest.Config, benchmarks: list, output_json: dict
) -> None:
    output_json["command"] = " ".join(["python -m pytest", *config.invocation_params.args])
    output_json["heavy"] = bool(config.getoption("--heavy"))


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    path = config.stash.get(_HISTORY_PATH, None)
    if path:
        terminalreporter.write_line(f"history: {os.path.relpath(path, ROOT)}")


@pytest.fixture(autouse=True)
def _heavy_mark(request: pytest.FixtureRequest) -> None:
    """Record in extra_info whether the benchmark runs only with --heavy (for the report)."""
    if "benchmark" in request.fixturenames:
        heavy = request.node.get_closest_marker("heavy") is not None
        request.getfixturevalue("benchmark").extra_info["heavy"] = heavy


@pytest.fixture(scope="session")
def encoder_path(request: pytest.FixtureRequest) -> str:
    given = request.config.getoption("--encoder")
    if given:
        return str(given)
    return str(request.getfixturevalue("test_encoder").onnx)


@pytest.fixture(scope="session")
def speech_60s() -> np.ndarray:
    """60 s of 16 kHz speech: the test speech tiled, float32 as librosa.load gives it."""
    wav, rate = sf.read(
        os.path.join(ROOT, "tests", "data", "speech_16k_s16_mono.wav"), dtype="float32"
    )
    assert rate == 16000
    return np.tile(wav, 60 * rate // wav.shape[0] + 1)[: 60 * rate].copy()


@pytest.fixture(scope="session")
def speech_60s_wav(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The same 60 s as a 16 kHz PCM_16 WAV file (for the command)."""
    speech, rate = sf.read(
        os.path.join(ROOT, "tests", "data", "speech_16k_s16_mono.wav"), dtype="int16"
    )
    audio = np.tile(speech, 60 * rate // speech.shape[0] + 1)[: 60 * rate]
    path = str(tmp_path_factory.mktemp("speech") / "speech_60s.wav")
    sf.write(path, audio, rate, subtype="PCM_16")
    return path
