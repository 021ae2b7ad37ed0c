"""The Ray engine on a local Ray cluster of two nodes that these tests start and stop.

The cluster (a head node and a second node, one CPU each, separate processes
on this machine) is shared by the tests of this module. The items and the
worker are the generic ones of tests/ray_workers.py: one output file per item,
written atomically, and its SHA-256 as the result.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import ray
import ray_workers as rw
from procs import command, descendants, running
from ray.cluster_utils import Cluster

from synctalk_audio.errors import ParameterError, WorkerStartError
from synctalk_audio.jobs.engine import engine_class
from synctalk_audio.jobs.ray_engine import (
    NEED_RAY,
    PIPELINE_THREADS,
    ItemLost,
    RayEngine,
    RayEngineError,
    report_rows,
)

pytestmark = pytest.mark.slow  # a Ray cluster

TESTS = os.path.dirname(os.path.abspath(__file__))


class LocalCluster:
    """A head node and a second node on this machine; the PIDs of all they started."""

    def __init__(self) -> None:
        # Short: Ray's socket paths under it must stay within the OS limit.
        self.temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")
        node = {"num_cpus": 1, "object_store_memory": 80 << 20, "temp_dir": self.temp_dir}
        # The worker processes import this directory's ray_workers module.
        saved = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [TESTS, saved]))
        # Ray notes the latest cluster's address in RAY_TMPDIR/ray (default
        # /tmp/ray), failing if that directory is missing, and other Ray users
        # of this machine share it: ours goes in our own directory.
        self.saved_tmpdir = os.environ.get("RAY_TMPDIR")
        os.environ["RAY_TMPDIR"] = self.temp_dir
        os.mkdir(os.path.join(self.temp_dir, "ray"))
        self.pids: set[int] = set()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                self.cluster = Cluster(
                    initialize_head=True,
                    head_node_args={**node, "include_dashboard": False},
                    shutdown_at_exit=False,
                )
                self._note_pids()
                self.cluster.add_node(**node)
                self._note_pids()
        except BaseException:
            # A node that failed to start must not leave the head running.
            with contextlib.suppress(Exception):
                self.cluster.shutdown()
            for pid in self.pids | descendants(self.pids):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            self._drop_temp_dir()
            raise
        finally:
            if saved is None:
                del os.environ["PYTHONPATH"]
            else:
                os.environ["PYTHONPATH"] = saved
        self.address: str = self.cluster.address

    def _drop_temp_dir(self) -> None:
        """Delete the cluster's own RAY_TMPDIR and give the variable back its value."""
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        if self.saved_tmpdir is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = self.saved_tmpdir

    def _note_pids(self) -> None:
        for n in self.cluster.list_all_nodes():
            for infos in n.all_processes.values():
                self.pids.update(info.process.pid for info in infos)

    def shutdown(self) -> None:
        """Stop every node, then check that no process they or their actors ran is left.

        Processes left anyway are killed (by PID) before the check fails.
        """
        ours = self.pids | descendants(self.pids)
        try:
            if ray.is_initialized():  # an engine that did not disconnect
                ray.shutdown()
            self.cluster.shutdown()
        finally:
            deadline = time.monotonic() + 30
            while any(running(p) for p in ours) and time.monotonic() < deadline:
                time.sleep(0.2)
            left = sorted(p for p in ours if running(p))
            for pid in left:
                os.kill(pid, signal.SIGKILL)
            self._drop_temp_dir()
        assert not left, f"processes left running after the cluster stopped: {left}"


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    local = LocalCluster()
    try:
        yield local
    finally:
        local.shutdown()
    assert not ray.is_initialized()


@pytest.fixture(autouse=True)
def disconnected_after() -> Iterator[None]:
    """Each test leaves this process disconnected from Ray, or errors (and disconnects).

    A connection left behind would be reused by the next test's engine, which
    would then run on it instead of the test's cluster: one fault, many failures.
    """
    yield
    if ray.is_initialized():
        ray.shutdown()
        pytest.fail("the test left this process connected to Ray")


class Recorder:
    """An ``on_result`` that counts calls per index and keeps the results."""

    def __init__(self) -> None:
        self.calls: Counter[int] = Counter()
        self.results: dict[int, Any] = {}

    def __call__(self, index: int, result: Any) -> None:
        self.calls[index] += 1
        self.results[index] = result


def sequential(items: list[rw.Item], out_dir: str) -> list[tuple[str, str]]:
    """(name, digest) per item, worked one after another in this process."""
    work = rw.FileWorker(out_dir)()
    return [work(item)[:2] for item in items]


def check_outputs(out_dir: str, items: list[rw.Item]) -> None:
    """Every item's file is there, whole, with the bytes its item gives."""
    for item in items:
        with open(os.path.join(out_dir, item.name), "rb") as f:
            assert f.read() == rw.content(item), item.name


def test_results_equal_sequential_each_index_once(cluster: LocalCluster, tmp_path: Any) -> None:
    items = rw.items(30)
    out, ref = tmp_path / "ray", tmp_path / "seq"
    out.mkdir()
    ref.mkdir()
    got = Recorder()
    engine = engine_class("ray")(address=cluster.address, workers=2)
    assert isinstance(engine, RayEngine) and engine.name == "ray"
    # A pause per item, so one actor cannot finish all before the other starts.
    engine.run(items, rw.FileWorker(str(out), pause=0.2), got)
    assert got.calls == Counter(range(len(items)))
    assert [got.results[i][:2] for i in range(len(items))] == sequential(items, str(ref))
    # Both nodes' actors worked (two processes), and the files are the same bytes.
    pids = {r[2] for r in got.results.values()}
    cluster.pids |= pids
    assert len(pids) == 2
    check_outputs(str(out), items)
    assert sorted(os.listdir(out)) == sorted(os.listdir(ref))
    assert not ray.is_initialized()  # the engine disconnected


def test_worker_killed_mid_job(cluster: LocalCluster, tmp_path: Any) -> None:
    """SIGKILL one actor in the middle of writing an item: Ray restarts it and retries."""

    items = rw.items(24)
    killed: list[tuple[int, str]] = []
    stop = threading.Event()
    got = Recorder()

    def kill_a_writer() -> None:
        """Watch for an item being written (its temporary file exists, the worker
        is in its pause) and SIGKILL the process writing it, once. A watcher, not
        the results callback: on a loaded machine results come in late and in
        bunches, when no write may be under way."""
        while not stop.is_set() and not killed:
            for name in os.listdir(tmp_path):
                if ".tmp-" not in name:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    if os.path.getsize(tmp_path / name) != rw.SIZE // 2:
                        continue  # not yet in the pause between the halves
                    pid = int(name.rsplit("-", 1)[1])
                    if pid in descendants(cluster.pids):  # an actor of the test's cluster
                        os.kill(pid, signal.SIGKILL)
                        killed.append((pid, name))
                        return
            time.sleep(0.002)

    watcher = threading.Thread(target=kill_a_writer)
    watcher.start()
    try:
        RayEngine(address=cluster.address, workers=2).run(
            items, rw.FileWorker(str(tmp_path), pause=0.3), got
        )
    finally:
        stop.set()
        watcher.join()
    assert killed, "no item was being written while the job ran"
    pid, temp = killed[0]
    assert not running(pid)
    # The kill interrupted a write: its temporary file is still there, half
    # written, and the item's real file was written whole by a later attempt.
    assert os.path.getsize(tmp_path / temp) == rw.SIZE // 2
    assert got.calls == Counter(range(len(items)))
    assert [got.results[i][:2] for i in range(len(items))] == sequential(
        items, tempfile.mkdtemp(dir=tmp_path)
    )
    check_outputs(str(tmp_path), items)
    later = {r[2] for r in got.results.values()} - {pid}
    cluster.pids |= later
    assert len(later) == 2  # the other actor and the restarted one finished the job


def test_item_that_kills_its_worker_every_time(cluster: LocalCluster, tmp_path: Any) -> None:
    """A crash on one input: retried, then an ItemLost for it; the other items all finish."""
    items = rw.items(8)
    got = Recorder()
    engine = RayEngine(address=cluster.address, workers=2, max_retries=1)
    engine.run(items, rw.FileWorker(str(tmp_path), die_on=items[3].name), got)
    assert got.calls == Counter(range(8))
    lost = got.results[3]
    assert isinstance(lost, ItemLost)
    assert str(lost) == (
        "lost by Ray: its worker process died on every attempt (killed, out of memory, or a"
        " crash on this input)"
    )
    assert not any(isinstance(got.results[i], ItemLost) for i in range(8) if i != 3)
    check_outputs(str(tmp_path), [item for i, item in enumerate(items) if i != 3])
    assert engine.pool_size == 2
    assert not ray.is_initialized()


def test_no_stray_ray_after_the_engine_disconnects(cluster: LocalCluster, tmp_path: Any) -> None:
    """A Ray call after the job (as a Ray Data thread left behind makes) starts no Ray.

    With Ray's automatic init on, it would start a local Ray from that thread,
    and the next job's ``ray.init`` would fail ("called ray.init twice").
    """
    RayEngine(address=cluster.address, workers=1).run(
        rw.items(2), rw.FileWorker(str(tmp_path)), Recorder()
    )
    assert not ray.is_initialized()
    with pytest.raises(ray.exceptions.RaySystemError, match="Ray has not been started"):
        ray.put(1)
    assert not ray.is_initialized()


def pipeline_threads_left(before: set[threading.Thread]) -> list[str]:
    """Ray Data pipeline threads started since ``before`` and still running."""
    return [
        t.name
        for t in threading.enumerate()
        if t not in before and t.name.startswith(PIPELINE_THREADS)
    ]


def test_worker_that_cannot_start(cluster: LocalCluster) -> None:
    """The first worker that cannot be built stops the run with its one error."""
    before = set(threading.enumerate())
    got = Recorder()
    with pytest.raises(WorkerStartError) as caught:
        RayEngine(address=cluster.address, workers=2).run(rw.items(3), rw.BrokenFactory(), got)
    assert got.calls == Counter()
    assert str(caught.value).startswith("the worker could not start on ")
    assert str(caught.value).endswith("FileNotFoundError: no model at /models/ave.onnx")
    assert not ray.is_initialized()
    # Stopped early, the pipeline's threads were ended before Ray was shut
    # down: a Ray call from one of them afterwards would end this process.
    assert pipeline_threads_left(before) == []


class Stop(Exception):
    pass


def test_on_result_raising_stops_the_job(cluster: LocalCluster, tmp_path: Any) -> None:
    """Ctrl-C (or any error) in the driver's callback stops the pipeline and re-raises."""
    items = rw.items(40)
    seen: list[int] = []

    def on_result(index: int, result: Any) -> None:
        seen.append(index)
        if len(seen) == 3:
            raise Stop

    before = set(threading.enumerate())
    with pytest.raises(Stop):
        RayEngine(address=cluster.address, workers=2).run(
            items, rw.FileWorker(str(tmp_path), pause=0.05), on_result
        )
    assert len(seen) == 3
    assert not ray.is_initialized()
    assert pipeline_threads_left(before) == []
    # The job's actors are gone with the driver: no file appears any more.
    time.sleep(1.0)
    files = {n for n in os.listdir(tmp_path) if not n.startswith(".")}
    time.sleep(1.0)
    assert {n for n in os.listdir(tmp_path) if not n.startswith(".")} == files
    assert len(files) < len(items)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_address_is_one_line_and_quick() -> None:
    """Nothing listens at the address: a one-line error, no Ray started, no hang."""
    address = f"127.0.0.1:{_free_port()}"
    code = (
        "import sys\n"
        "from synctalk_audio.jobs.ray_engine import RayEngine\n"
        "try:\n"
        f"    RayEngine(address={address!r}).run([1], int, print)\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__ + ': ' + str(exc))\n"
        "    import ray; sys.exit(3 if ray.is_initialized() else 2)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stdout == (
        f"ParameterError: cannot reach the Ray cluster at {address} (Connection refused):"
        " start its head node with `ray start --head` or check --address\n"
    )
    assert done.stderr == ""


@pytest.mark.parametrize("address", ["headnode", "headnode:port", ":6379", "h:0", "h:70000"])
def test_malformed_address(address: str) -> None:
    with pytest.raises(ParameterError, match=r"bad Ray address .*expected HOST:PORT"):
        RayEngine(address=address)


@pytest.mark.parametrize(
    ("option", "value"),
    [("workers", 0), ("cpus_per_worker", 0.0), ("max_retries", -1), ("connect_timeout", 0.0)],
)
def test_bad_options(option: str, value: float) -> None:
    with pytest.raises(ParameterError, match=option):
        RayEngine(**{option: value})


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ParameterError) as caught:
        RayEngine().run([1], int, print)
    assert str(caught.value) == NEED_RAY
    assert NEED_RAY == "the ray engine needs Ray: pip install 'synctalk-audio[ray]'"


# report_rows: the driver's side of "each item exactly once", without Ray.


def _row(index: int, value: int | None = None, error: str = "") -> dict[str, Any]:
    return {"index": index, "result": b"" if value is None else bytes([value]), "error": error}


def _report(rows: list[dict[str, Any]], count: int) -> Recorder:
    got = Recorder()
    report_rows(rows, count, got, lambda b: b[0])
    return got


def test_report_rows_drops_second_delivery() -> None:
    got = _report([_row(1, 10), _row(0, 20), _row(1, 11), _row(2, 30), _row(0, 21)], 3)
    assert got.calls == Counter({0: 1, 1: 1, 2: 1})
    assert got.results == {0: 20, 1: 10, 2: 30}


def test_report_rows_error_then_success_is_reported() -> None:
    got = _report([_row(0, error="OSError: x"), _row(0, 5), _row(1, 6)], 2)
    assert got.results == {0: 5, 1: 6}


def test_report_rows_missing_items_get_item_lost_after_the_others() -> None:
    got = Recorder()
    rows = [_row(0, 1), _row(2, error="ValueError: bad"), *(_row(i, i) for i in range(4, 20))]
    report_rows(rows, 20, got, lambda b: b[0])
    assert got.calls == Counter(range(20))
    assert {i: r for i, r in got.results.items() if not isinstance(r, ItemLost)} == {
        0: 1, **{i: i for i in range(4, 20)}
    }  # fmt: skip
    assert str(got.results[2]) == "ValueError: bad"
    for index in (1, 3):
        assert str(got.results[index]).startswith("lost by Ray: its worker process died")


def test_report_rows_stops_reading_once_every_item_has_its_result() -> None:
    # After the last result Ray may tear down an actor still starting and
    # raise for it (seen on a fresh machine): the job must not fail for that.
    def rows() -> Iterator[dict[str, Any]]:
        yield _row(1, 10)
        yield _row(0, 20)
        raise RuntimeError("the actor died unexpectedly before finishing this task")

    got = Recorder()
    report_rows(rows(), 2, got, lambda b: b[0])
    assert got.results == {0: 20, 1: 10}


def test_report_rows_stops_at_the_first_worker_that_could_not_start() -> None:
    broken = {**_row(1), "start_error": "the worker could not start on h: ModelError: bad"}
    got = Recorder()
    with pytest.raises(WorkerStartError, match="^the worker could not start on h: ModelError"):
        report_rows([_row(0, 1), broken, _row(2, 3)], 3, got, lambda b: b[0])
    assert got.results == {0: 1}  # reported before it; nothing after


def test_report_rows_index_out_of_range() -> None:
    with pytest.raises(RayEngineError, match="item 5 of 3"):
        _report([_row(5, 1)], 3)


# -- The job layer on the Ray engine: run_job(..., engine="ray") and the command ----------

ROOT = os.path.dirname(TESTS)
DATA = os.path.join(TESTS, "data")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    from tiny_models import make_tiny_encoder

    return make_tiny_encoder(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


@pytest.fixture(scope="module")
def speech_clips(tmp_path_factory: pytest.TempPathFactory) -> str:
    """12 clips of 2-5 s of speech (the test speech tiled, seeded cuts), 16-bit WAV."""
    import numpy as np
    import soundfile as sf

    from synctalk_audio import load_audio

    names = ["speech_16k.flac", "speech_44k1_stereo_s24.wav", "speech_24k.mp3", "speech_8k_u8.wav"]
    source = np.tile(np.concatenate([load_audio(os.path.join(DATA, n)) for n in names]), 4)
    rng = np.random.default_rng(10)
    folder = tmp_path_factory.mktemp("clips")
    for i in range(12):
        length = int(rng.uniform(2.0, 5.0) * 16000)
        start = int(rng.integers(0, source.size - length))
        sf.write(folder / f"clip{i:02d}.wav", source[start : start + length], 16000,
                 subtype="PCM_16")  # fmt: skip
    return str(folder)


@pytest.fixture(scope="module")
def local_reference(speech_clips: str, tiny: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The clips' job output from the local engine (2 workers, 1 encoder thread each)."""
    from synctalk_audio.jobs import run_job

    out = str(tmp_path_factory.mktemp("local") / "out")
    summary = run_job(out, [speech_clips], model=tiny, engine="local", workers=2, threads=1)
    assert summary.ok and len(summary.done) == 12
    return out


#: metadata.json keys that may differ between two runs: wall-clock measurements.
RUN_DEPENDENT = ("timings",)


def output_files(folder: str) -> dict[str, bytes]:
    """Every file under ``folder`` but the job record, by relative path; metadata.json
    parsed, without its `RUN_DEPENDENT` keys."""
    import json

    from synctalk_audio.jobs.plan import RECORD_NAME

    found: dict[str, bytes] = {}
    for top, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(top, name)
            rel = os.path.relpath(path, folder)
            if rel == RECORD_NAME:
                continue
            with open(path, "rb") as f:
                data = f.read()
            if name == "metadata.json":
                meta = json.loads(data)
                for key in RUN_DEPENDENT:
                    del meta[key]
                data = json.dumps(meta, sort_keys=True).encode()
            found[rel] = data
    return found


def job_record(folder: str) -> dict[str, dict[str, Any]]:
    """The job record's entries by output key; each key must appear once."""
    import json

    from synctalk_audio.jobs.plan import RECORD_NAME

    with open(os.path.join(folder, RECORD_NAME), encoding="utf-8") as f:
        entries = [json.loads(line) for line in f]
    keys = [e["output"] for e in entries]
    assert len(keys) == len(set(keys)), keys
    return {e["output"]: e for e in entries}


#: Record fields that are facts of the item (not of the run or the engine).
ITEM_FACTS = ("status", "input", "size", "sha256", "settings", "model_sha256", "error", "frames")


def test_run_job_on_ray_equals_the_local_engine(
    cluster: LocalCluster, speech_clips: str, tiny: str, local_reference: str, tmp_path: Any
) -> None:
    from synctalk_audio.jobs import run_job

    out = str(tmp_path / "out")
    options = {"address": cluster.address}
    summary = run_job(out, [speech_clips], model=tiny, engine="ray", engine_options=options)
    assert summary.ok and summary.engine == "ray"
    assert len(summary.done) == 12 and summary.skipped == 0
    # One actor per cluster CPU (two nodes of one), each encoder on its actor's one CPU.
    assert (summary.workers, summary.threads) == (2, 1)
    got, want = output_files(out), output_files(local_reference)
    assert sorted(got) == sorted(want)
    assert sum(name.endswith("metadata.json") for name in got) == 12
    for name in want:
        assert got[name] == want[name], name
    record, reference = job_record(out), job_record(local_reference)
    assert sorted(record) == sorted(reference)
    for key, entry in record.items():
        assert {f: entry[f] for f in ITEM_FACTS} == {f: reference[key][f] for f in ITEM_FACTS}
        assert entry["status"] == "done"
    assert not ray.is_initialized()

    # A rerun skips everything (and starts no Ray); --force redoes everything.
    again = run_job(out, [speech_clips], model=tiny, engine="ray", engine_options=options)
    assert (again.skipped, len(again.done), again.failed) == (12, 0, [])
    assert output_files(out) == got
    forced = run_job(
        out, [speech_clips], model=tiny, engine="ray", engine_options=options, force=True
    )
    assert (forced.skipped, len(forced.done), forced.failed) == (0, 12, [])
    assert output_files(out) == want
    assert all(e["status"] == "done" for e in job_record(out).values())


def test_ray_threads_are_the_cpus_reserved_per_actor() -> None:
    from synctalk_audio.jobs import worker_sizing
    from synctalk_audio.jobs.engine import make_engine

    engine = make_engine("ray", None, None, {"address": "head:6379"})
    assert (engine.cpus_per_worker, engine.address) == (1.0, "head:6379")
    assert worker_sizing(1000, cpus_per_worker=engine.cpus_per_worker) == (None, 1)
    engine = make_engine("ray", 8, 2, None)  # --threads 2: two CPUs reserved per actor
    assert (engine.workers, engine.cpus_per_worker) == (8, 2.0)
    assert worker_sizing(1000, workers=8, threads=2, cpus_per_worker=2.0) == (8, 2)
    engine = make_engine("ray", None, None, {"cpus_per_worker": 4})
    assert worker_sizing(10, cpus_per_worker=engine.cpus_per_worker) == (None, 4)
    with pytest.raises(ParameterError, match="the local engine has no option 'address'"):
        make_engine("local", None, None, {"address": "head:6379"})
    with pytest.raises(ParameterError, match="bad Ray address 'head'"):
        make_engine("ray", None, None, {"address": "head"})


def _staging_pids(folder: str) -> list[tuple[int, str]]:
    """(PID, name) of each ``.NAME.tmp-PID-XXXX`` staging directory in ``folder``."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        if ".tmp-" in name:
            with contextlib.suppress(ValueError, IndexError):
                found.append((int(name.split(".tmp-", 1)[1].split("-", 1)[0]), name))
    return found


def test_actor_killed_in_the_middle_of_a_real_job(
    cluster: LocalCluster, speech_clips: str, tiny: str, local_reference: str, tmp_path: Any
) -> None:
    """SIGKILL an actor while it writes an item: the job completes, each item once, all valid."""

    from synctalk_audio.jobs import run_job
    from synctalk_audio.jobs.run import JobProgress
    from synctalk_audio.outputs.validate import compare_outputs

    out = str(tmp_path / "out")
    killed: list[tuple[int, str]] = []
    stop = threading.Event()

    def kill_a_writer() -> None:
        """Watch for an item being written and SIGKILL the actor writing it (once)."""
        while not stop.is_set() and not killed:
            for pid, name in _staging_pids(out):
                if pid in descendants(cluster.pids):  # an actor of the test's cluster only
                    os.kill(pid, signal.SIGKILL)
                    killed.append((pid, name))
                    return
            time.sleep(0.002)

    progress: list[JobProgress] = []
    watcher = threading.Thread(target=kill_a_writer)
    watcher.start()
    try:
        summary = run_job(
            out,
            [speech_clips],
            model=tiny,
            engine="ray",
            engine_options={"address": cluster.address},
            progress=progress.append,
        )
    finally:
        stop.set()
        watcher.join()
    assert killed, "no item was being written while the job ran"
    pid, staging = killed[0]
    assert not running(pid)
    # Every item reported exactly once (a second report would count past the total).
    assert [p.done for p in progress] == list(range(13)) and progress[-1].total == 12
    assert summary.ok and len(summary.done) == 12
    assert len({item.key for item in summary.done}) == 12
    record = job_record(out)
    assert len(record) == 12 and all(e["status"] == "done" for e in record.values())
    # The killed write left nothing: its staging directory was removed by the retry.
    assert not os.path.exists(os.path.join(out, staging))
    assert [n for _, dirs, files in os.walk(out) for n in dirs + files if ".tmp-" in n] == []
    for key in record:
        report = compare_outputs(os.path.join(local_reference, key), os.path.join(out, key))
        assert report["invalid"] == [] and "problem" not in report, key
        assert report["features_max_abs"] == 0.0 and report["frames_max_abs"] == 0.0, key
    assert output_files(out) == output_files(local_reference)


def test_the_command_on_the_cluster(
    cluster: LocalCluster, speech_clips: str, tiny: str, local_reference: str, tmp_path: Any
) -> None:
    out = str(tmp_path / "out")
    done = command("process", "--engine", "ray", "--address", cluster.address,
                   "--audio", speech_clips, "--output", out, "--model", tiny)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"job: 12 items -> {out}: 12 written, 0 unchanged (skipped),")
    assert done.stdout.endswith(" (2 worker(s) x 1 encoder thread(s), engine ray)\n")
    assert output_files(out) == output_files(local_reference)


def test_the_command_uses_the_address(tmp_path: Any) -> None:
    """--address reaches the engine: nothing there, one line, and nothing written."""
    address = f"127.0.0.1:{_free_port()}"
    out = str(tmp_path / "out")
    done = command(
        "process", "--engine", "ray", "--address", address, "--audio", DATA, "--output", out
    )
    assert done.returncode == 2
    assert done.stderr == (
        f"synctalk-audio process: error: cannot reach the Ray cluster at {address} (Connection"
        " refused): start its head node with `ray start --head` or check --address\n"
    )
    assert done.stdout == "" and not os.path.exists(out)


def test_address_with_the_local_engine_is_refused(tmp_path: Any) -> None:
    out = str(tmp_path / "out")
    done = command("process", "--address", "127.0.0.1:6379", "--audio", DATA, "--output", out)
    assert done.returncode == 2
    assert done.stderr == (
        "synctalk-audio process: error: --address is an option of --engine ray, not of"
        " --engine local: add --engine ray or leave out --address\n"
    )
    assert done.stdout == "" and not os.path.exists(out)


def test_blocks_hold_at_most_eight_items_and_feed_every_actor():
    from synctalk_audio.jobs.ray_engine import MAX_ITEMS_PER_BLOCK, _blocks

    assert MAX_ITEMS_PER_BLOCK == 8
    for items, workers in [(1, 1), (5, 2), (12, 2), (30, 2), (1000, 2), (1001, 3), (10**5, 64)]:
        blocks = _blocks(items, workers)
        assert -(-items // blocks) <= MAX_ITEMS_PER_BLOCK  # the largest block
        assert blocks >= min(items, 4 * workers)  # work for every actor while items last
