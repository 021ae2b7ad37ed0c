"""The Ray engine on a local Ray cluster of two nodes that these tests start and stop.

The cluster (a head node and a second node, one CPU each, separate processes
on this machine) is shared by the tests of this module. The items and the
worker are the generic ones of tests/ray_workers.py: one output file per item,
written atomically, and its SHA-256 as the result.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import ray
import ray_workers as rw
from ray.cluster_utils import Cluster

from synctalk_audio.errors import ParameterError
from synctalk_audio.jobs.engine import engine_class
from synctalk_audio.jobs.ray_engine import NEED_RAY, RayEngine, RayEngineError, report_rows

TESTS = os.path.dirname(os.path.abspath(__file__))


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


class LocalCluster:
    """A head node and a second node on this machine; the PIDs of all they started."""

    def __init__(self) -> None:
        # Short: Ray's socket paths under it must stay within the OS limit.
        self.temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")
        node = {"num_cpus": 1, "object_store_memory": 80 << 20, "temp_dir": self.temp_dir}
        # The worker processes import this directory's ray_workers module.
        saved = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [TESTS, saved]))
        # Ray writes the head's address to RAY_TMPDIR/ray/ray_current_cluster
        # (default /tmp/ray, which a fresh machine does not have): keep it in
        # this cluster's own directory, away from any other Ray on the machine.
        saved_tmp = os.environ.get("RAY_TMPDIR")
        os.environ["RAY_TMPDIR"] = self.temp_dir
        os.makedirs(os.path.join(self.temp_dir, "ray"), exist_ok=True)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                self.cluster = Cluster(
                    initialize_head=True,
                    head_node_args={**node, "include_dashboard": False},
                    shutdown_at_exit=False,
                )
                self.cluster.add_node(**node)
        finally:
            for name, value in (("PYTHONPATH", saved), ("RAY_TMPDIR", saved_tmp)):
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        self.address: str = self.cluster.address
        self.pids: set[int] = set()
        for n in self.cluster.list_all_nodes():
            for infos in n.all_processes.values():
                self.pids.update(info.process.pid for info in infos)

    def shutdown(self) -> None:
        """Stop every node, then check that no process they or their actors ran is left.

        Processes left anyway are killed (by PID) before the check fails.
        """
        ours = self.pids | _descendants(self.pids)
        try:
            if ray.is_initialized():  # an engine that did not disconnect
                ray.shutdown()
            self.cluster.shutdown()
        finally:
            deadline = time.monotonic() + 30
            while any(_alive(p) for p in ours) and time.monotonic() < deadline:
                time.sleep(0.2)
            left = sorted(p for p in ours if _alive(p))
            for pid in left:
                os.kill(pid, signal.SIGKILL)
            shutil.rmtree(self.temp_dir, ignore_errors=True)
        assert not left, f"processes left running after the cluster stopped: {left}"


def _descendants(pids: set[int]) -> set[int]:
    """The PIDs of all running descendants of ``pids``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    todo = list(pids)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    local = LocalCluster()
    try:
        yield local
    finally:
        local.shutdown()
    assert not ray.is_initialized()


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
    engine.run(items, rw.FileWorker(str(out)), got)
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
    got = Recorder()

    def on_result(index: int, result: Any) -> None:
        got(index, result)
        if killed:
            return
        # An item being written right now (its temporary file exists, the
        # worker is in its pause): kill the process writing it.
        for name in os.listdir(tmp_path):
            if ".tmp-" in name:
                pid = int(name.rsplit("-", 1)[1])
                os.kill(pid, signal.SIGKILL)
                killed.append((pid, name))
                return

    RayEngine(address=cluster.address, workers=2).run(
        items, rw.FileWorker(str(tmp_path), pause=0.3), on_result
    )
    assert killed, "no item was in progress when results came in"
    pid, temp = killed[0]
    assert not _alive(pid)
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
    """A crash on one input: retried, then reported by index; the other items all finish."""
    items = rw.items(8)
    got = Recorder()
    engine = RayEngine(address=cluster.address, workers=2, max_retries=1)
    with pytest.raises(RayEngineError) as caught:
        engine.run(items, rw.FileWorker(str(tmp_path), die_on=items[3].name), got)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        "1 of 8 items got no result from Ray (items 3); their worker processes died on every"
        " attempt"
    )
    assert "run the job again" in message
    assert got.calls == Counter(i for i in range(8) if i != 3)
    check_outputs(str(tmp_path), [item for i, item in enumerate(items) if i != 3])
    assert not ray.is_initialized()


def test_worker_that_cannot_start(cluster: LocalCluster) -> None:
    with pytest.raises(RayEngineError) as caught:
        RayEngine(address=cluster.address, workers=2).run(
            rw.items(3), rw.BrokenFactory(), Recorder()
        )
    message = str(caught.value)
    assert message.startswith("3 of 3 items got no result from Ray (items 0, 1, 2)")
    assert "; item 0: the worker could not start on " in message
    assert "FileNotFoundError: no model at /models/ave.onnx" in message


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

    with pytest.raises(Stop):
        RayEngine(address=cluster.address, workers=2).run(
            items, rw.FileWorker(str(tmp_path), pause=0.05), on_result
        )
    assert len(seen) == 3
    assert not ray.is_initialized()
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


def test_report_rows_missing_items_raise_after_the_others() -> None:
    got = Recorder()
    rows = [_row(0, 1), _row(2, error="ValueError: bad"), *(_row(i, i) for i in range(4, 20))]
    with pytest.raises(RayEngineError) as caught:
        report_rows(rows, 20, got, lambda b: b[0])
    assert set(got.results) == {0, *range(4, 20)}
    assert str(caught.value) == (
        "3 of 20 items got no result from Ray (items 1, 2, 3); item 2: ValueError: bad;"
        " the other items finished, run the job again to redo these"
    )


def test_report_rows_index_out_of_range() -> None:
    with pytest.raises(RayEngineError, match="item 5 of 3"):
        _report([_row(5, 1)], 3)
