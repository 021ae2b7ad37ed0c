"""The output directory, written atomically and replaced only when it is safe to.

Everything is written into a staging directory beside the destination and
renamed into place at the end, so an error, Ctrl-C, SIGTERM or SIGHUP never
leaves a half-written output. An existing directory is replaced only when it
is safe to: when it is empty or holds nothing but a previous output of this
tool (see `check_output_dir`), or when the caller passes ``overwrite=True``;
never when it is or contains the working directory, the home directory or an
input file. One run at a time writes a given output: a lock file beside it,
``.NAME.lock``, is held while the staging directory exists.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import ParameterError
from ..signals import deliver, signals_held, unstoppable
from .files import OUTPUT_MARK
from .layout import FRAME_NAME, FRAMES_DIR, METADATA_FILE

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, the rest holds
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "PARTIAL_SUFFIX",
    "StreamOutput",
    "atomic_file",
    "atomic_output_dir",
    "check_output_dir",
    "stream_output_dir",
]

#: A metadata.json larger than this is not one of ours (ours are a few KB).
_METADATA_MAX_BYTES = 1 << 20
#: Room a staging name needs beyond ".STEM": ".tmp-" or ".old-", a pid of up to
#: 10 digits, "-" and mkdtemp's 8 random characters.
_STAGING_SUFFIX_MAX = len(".tmp-") + 10 + 1 + 8


def _is_within(path: str, folder: str) -> bool:
    """True when ``path`` is ``folder`` or inside it (both absolute)."""
    try:
        return os.path.commonpath([path, folder]) == folder
    except ValueError:  # different drives (Windows)
        return False


def is_marked(metadata_path: str) -> bool:
    """True when metadata.json was written by this tool (any version).

    Only a regular file is read (a FIFO or a device by that name would block
    or never end), and only one of at most `_METADATA_MAX_BYTES`.
    """
    try:
        if not os.path.isfile(metadata_path):
            return False
        if os.path.getsize(metadata_path) > _METADATA_MAX_BYTES:
            return False
        with open(metadata_path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return False
    if not isinstance(meta, dict):
        return False
    key, value = OUTPUT_MARK
    if meta.get(key) == value:
        return True
    # Versions before the mark: every metadata.json they wrote names the
    # package's version under "versions".
    versions = meta.get("versions")
    return isinstance(versions, dict) and "synctalk_audio" in versions


def _foreign_content(folder: str) -> str | None:
    """None when ``folder`` is empty or holds only a previous output of this tool, else why not.

    A previous output holds metadata.json with the `OUTPUT_MARK`, files an
    output format writes (`outputs.sink.OUTPUT_FORMATS`: a mode's feature
    file) and a ``frames`` directory of ``frame_NNNNN.bin`` files; all plain
    files, no symbolic links, nothing else.
    """
    from .sink import OUTPUT_FORMATS

    with os.scandir(folder) as scan:
        entries = sorted(scan, key=lambda e: e.name)
    if not entries:
        return None  # an empty directory is as good as a new one
    marked = False
    for entry in entries:
        name = entry.name
        if name == METADATA_FILE and entry.is_file(follow_symlinks=False):
            marked = is_marked(entry.path)
            if not marked:
                return "its metadata.json was not written by synctalk-audio"
        elif entry.is_file(follow_symlinks=False) and any(
            format.owns(name, False) for format in OUTPUT_FORMATS.values()
        ):
            continue
        elif name == FRAMES_DIR and entry.is_dir(follow_symlinks=False):
            with os.scandir(entry.path) as frames:
                for frame in frames:
                    if not (FRAME_NAME.match(frame.name) and frame.is_file(follow_symlinks=False)):
                        return f"it holds frames/{frame.name}, which synctalk-audio does not write"
        else:
            return f"it holds {name}, which synctalk-audio does not write"
    if not marked:
        return "it has no metadata.json written by synctalk-audio"
    return None


def _undeletable(folder: str) -> str | None:
    """None when every entry under ``folder`` can be deleted by this process, else why not.

    Checked before anything is moved, so a read-only directory or a mount
    point inside the old output is reported while nothing has changed yet.
    """
    problems: list[str] = []

    def unreadable(exc: OSError) -> None:
        problems.append(f"cannot read {exc.filename}: {exc.strerror}")

    for top, dirs, files in os.walk(folder, onerror=unreadable):
        if problems:
            break
        if (dirs or files) and not os.access(top, os.W_OK | os.X_OK):
            return f"no permission to delete the entries of {top}"
        for name in dirs:
            sub = os.path.join(top, name)
            if os.path.ismount(sub):
                return f"{sub} is a mount point"
    return problems[0] if problems else None


def _protected(final: str, inputs: Iterable[str]) -> str | None:
    """Why ``final`` must never be replaced (even with overwrite), or None."""
    if os.path.dirname(final) == final:
        return "it is the filesystem root"
    with contextlib.suppress(OSError):
        cwd = os.path.realpath(os.getcwd())
        if _is_within(cwd, final):
            return f"it {'is' if cwd == final else 'contains'} the current working directory"
    home = os.path.realpath(os.path.expanduser("~"))
    if os.path.isdir(home) and _is_within(home, final):
        return f"it {'is' if home == final else 'contains'} your home directory"
    for name in inputs:
        for candidate in {os.path.abspath(name), os.path.realpath(name)}:
            if _is_within(candidate, final):
                return f"it contains the input file {name}"
    return None


def resolve_path(path: str) -> str:
    """The absolute directory ``path`` names, through a symbolic link; basic checks."""
    if not path:
        raise ParameterError("the output path is empty; give a directory, e.g. --output output")
    final = os.path.abspath(path)
    if os.path.islink(final):
        # A link to a directory is written through: the link stays, the
        # directory it points to is replaced under the same rules.
        target = os.path.realpath(final)
        if not os.path.exists(target):
            raise ParameterError(
                f"output path {final} is a symbolic link to {target}, which does not exist;"
                " create that directory or choose another --output"
            )
        final = target
    if os.path.exists(final) and not os.path.isdir(final):
        raise ParameterError(
            f"output path {final} exists and is not a directory; choose another --output"
        )
    parent = os.path.dirname(final)
    if not os.path.isdir(parent):
        raise ParameterError(f"cannot write {final}: its parent directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise not_writable(final, "no write permission")
    return final


#: errno values of a full disk or an exhausted disk quota.
_FULL_DISK = frozenset(
    code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if code is not None
)


@contextlib.contextmanager
def full_disk_named(path: str, advice: str) -> Iterator[None]:
    """A full disk met in the block is one line naming ``path`` and saying what to do.

    The system's "[Errno 28] No space left on device" names no file (a write
    has none). An OSError of a full disk or quota (ENOSPC, EDQUOT) carrying
    the system's own words (``strerror``) is raised again as "no space left
    on the device holding PATH (STRERROR); ADVICE", with its ``errno``; an
    error already explained by this package (no ``strerror``) and any other
    error pass unchanged.

    Parameters
    ----------
    path : str
        What the block writes: an output directory, the job record.
    advice : str
        What to do, e.g. "free space there or choose another --output, then
        run again".
    """
    try:
        yield
    except OSError as exc:
        if exc.errno not in _FULL_DISK or exc.strerror is None:
            raise
        explained = OSError(
            f"no space left on the device holding {path} ({exc.strerror}); {advice}"
        )
        explained.errno = exc.errno
        raise explained from None


#: What to do when an output's disk is full (the output was not written).
_OUTPUT_FULL = "nothing was written: free space there or choose another --output, then run again"


def not_writable(final: str, reason: str) -> ParameterError:
    """The error for an output whose folder refuses new entries: which output, why, what to do.

    Parameters
    ----------
    final : str
        The absolute output path.
    reason : str
        What the system said, e.g. "no write permission" or the ``strerror``
        of a failed create.

    Returns
    -------
    ParameterError
        One line: "cannot create output OUT: the folder PARENT is not writable
        (REASON); choose another --output".
    """
    parent = os.path.dirname(final)
    return ParameterError(
        f"cannot create output {final}: the folder {parent} is not writable ({reason});"
        " choose another --output"
    )


def _check_replaceable(final: str, *, overwrite: bool, inputs: Iterable[str]) -> None:
    """Raise ParameterError unless the existing directory ``final`` may be replaced."""
    if not os.path.isdir(final):
        return
    why = _protected(final, inputs)
    if why is not None:
        raise ParameterError(
            f"refusing to replace {final}: {why}; choose a new or empty directory with --output"
        )
    if os.path.ismount(final):
        raise ParameterError(
            f"cannot replace {final}: it is a mount point; write into a new directory inside"
            f" it, e.g. --output {os.path.join(final, 'output')}"
        )
    if not overwrite:
        try:
            why = _foreign_content(final)
        except OSError as exc:
            why = f"cannot read {exc.filename}: {exc.strerror}"
        if why is not None:
            raise ParameterError(
                f"refusing to replace {final}: {why}; choose a new or empty directory, or pass"
                " --overwrite to replace it"
            )
    why = _undeletable(final)
    if why is not None:
        raise ParameterError(f"cannot replace {final}: {why}; fix that or choose another --output")


def check_output_dir(path: str, *, overwrite: bool = False, inputs: Iterable[str] = ()) -> str:
    """Check that ``path`` may be written as an output directory; return it resolved.

    Parameters
    ----------
    path : str
        The output directory. A symbolic link to a directory is followed: the
        link stays and the directory it points to is written.
    overwrite : bool
        Allow replacing a directory that holds more than a previous output of
        this tool.
    inputs : iterable of str
        Files the run reads; a directory containing one is never replaced.

    Returns
    -------
    str
        The absolute path of the directory that will be written.

    Raises
    ------
    ParameterError
        The path is empty, a file, a dangling link or has no writable parent;
        or it is an existing directory that may not be replaced: one that is or
        contains the working directory, the home directory or an input; the
        filesystem root; a mount point; one with entries this process cannot
        delete; or (without ``overwrite``) one holding anything but a previous
        output of this tool (metadata.json written by it, ``aud_*.npy``,
        ``frames/frame_NNNNN.bin``). New and empty directories are fine.
    """
    final = resolve_path(path)
    _check_replaceable(final, overwrite=overwrite, inputs=tuple(inputs))
    return final


def _staging_stem(final: str) -> str:
    """The output's name, shortened (with a hash) so staging names fit NAME_MAX."""
    name = os.path.basename(final)
    try:
        name_max = os.pathconf(os.path.dirname(final), "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        name_max = 255
    budget = max(name_max, 64) - 1 - _STAGING_SUFFIX_MAX  # "." + stem + suffix
    if len(os.fsencode(name)) <= budget:
        return name
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:12]
    keep = name
    while len(os.fsencode(keep)) > budget - len(digest) - 1:
        keep = keep[:-1]
    return f"{keep}~{digest}"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # EPERM: alive, someone else's
        return True
    return True


def _remove_stale(parent: str, stem: str) -> None:
    """Delete ``.STEM.tmp-*`` / ``.STEM.old-*`` directories of runs that are gone.

    Called with the output's lock held, so no live run of this version is
    writing them; a directory is still kept while the process id in its name
    is alive. Names without a process id come from versions before the lock.
    """
    pattern = re.compile(rf"\.{re.escape(stem)}\.(?:tmp|old)-(?:(\d+)-)?[a-z0-9_]{{8}}")
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        match = pattern.fullmatch(name)
        if match is None:
            continue
        if match.group(1) is not None and _pid_alive(int(match.group(1))):
            continue
        path = os.path.join(parent, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def output_lock(final: str, stem: str) -> Iterator[None]:
    """Hold ``.STEM.lock`` beside ``final``; another holder means another live run.

    The lock file is deleted on release. A run that opened it just before
    that finds, once it holds the lock, that the path now names another file
    (or none) and starts over, so two runs never both hold "the" lock.
    """
    if fcntl is None:  # pragma: no cover
        yield
        return
    path = os.path.join(os.path.dirname(final), f".{stem}.lock")
    fd: int | None = None
    try:
        # Taken with signals held, so that a stop cannot fall between creating
        # the lock file and the ``finally`` that deletes it.
        with unstoppable():
            fd = _take_lock(path, final)
        yield
    finally:
        if fd is not None:
            with unstoppable():  # a second stop does not cut this short
                with contextlib.suppress(OSError):
                    os.unlink(path)
                os.close(fd)


def _take_lock(path: str, final: str) -> int:
    """Open and lock ``path``; the descriptor (see `output_lock`)."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as exc:
            # The first entry made beside the output: a folder that refuses it
            # (/proc, a read-only mount, a full disk) refuses the output too.
            reason = f"creating {os.path.basename(path)}: {exc.strerror or exc}"
            raise not_writable(final, reason) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ParameterError(
                    f"another synctalk-audio run is writing {final}; wait for it to finish or"
                    " choose another --output"
                ) from None
            raise
        try:
            held = os.fstat(fd)
            now = os.stat(path)
            same = (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)
        except FileNotFoundError:
            same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            return fd
        os.close(fd)


def _rmtree(path: str) -> list[str]:
    """Delete the tree at ``path`` as far as possible; what could not be deleted, and why."""
    failures: list[str] = []

    def failed(_function: Any, name: str, exc: Any) -> None:
        exc = exc if isinstance(exc, BaseException) else exc[1]
        failures.append(f"{name}: {getattr(exc, 'strerror', None) or exc}")

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=failed)
    else:
        shutil.rmtree(path, onerror=failed)
    return failures


def _replace(staging: str, final: str, old: str) -> None:
    """Rename ``final`` to the empty directory ``old``, then ``staging`` to ``final``.

    On failure the previous output is put back, ``old`` removed, and an
    OSError with a one-line message raised.
    """
    try:
        os.rename(final, old)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.rmdir(old)
        raise OSError(f"cannot replace {final}: {exc.strerror}; it was left as it was") from None
    try:
        os.rename(staging, final)
    except OSError as exc:
        try:
            os.rename(old, final)
        except OSError:
            raise OSError(
                f"cannot replace {final}: {exc.strerror}; the previous output is in {old}"
            ) from None
        raise OSError(f"cannot replace {final}: {exc.strerror}; it was left as it was") from None


def _install(staging: str, target: str, stem: str) -> str | None:
    """Rename ``staging`` to ``target``; an existing ``target`` goes to ``.STEM.old-PID-*``.

    Returns the directory the previous ``target`` was moved to (for the caller
    to delete once the new one is in place), or None when there was none.
    Call with signals held. On failure, see `_replace`.
    """
    if not os.path.isdir(target):
        os.rename(staging, target)
        return None
    parent = os.path.dirname(target)
    old = tempfile.mkdtemp(prefix=f".{stem}.old-{os.getpid()}-", dir=parent)
    _replace(staging, target, old)
    return old


def _delete_previous(final: str, old: str | None) -> None:
    """Delete the previous output moved to ``old``; an OSError says what is left."""
    failures = _rmtree(old) if old is not None else []
    if failures:
        raise OSError(
            f"wrote {final}, but could not delete the previous output, moved to {old}"
            f" ({failures[0]}); delete it by hand"
        )


@contextlib.contextmanager
def atomic_output_dir(
    path: str, *, overwrite: bool = False, inputs: Iterable[str] = ()
) -> Iterator[str]:
    """Yield a staging directory that becomes ``path`` when the block succeeds.

    ``path`` is checked as `check_output_dir` describes (``overwrite`` and
    ``inputs`` likewise) while the output's lock is held. The staging
    directory, ``.NAME.tmp-PID-XXXXXXXX`` beside the output, is removed on
    any exception (KeyboardInterrupt included), leaving ``path`` as it was;
    staging directories of runs that died are removed on the way in.

    Raises
    ------
    ParameterError
        ``path`` may not be written (see `check_output_dir`), or another run
        is writing it.
    OSError
        Replacing the previous output failed; the message says what is left.
    """
    final = resolve_path(path)
    inputs = tuple(inputs)
    parent = os.path.dirname(final)
    stem = _staging_stem(final)
    pid = os.getpid()
    with output_lock(final, stem):
        _check_replaceable(final, overwrite=overwrite, inputs=inputs)
        _remove_stale(parent, stem)
        staging: str | None = None
        try:
            # Made with signals held, so that a stop cannot fall between the
            # mkdir and the ``except`` below that removes it.
            with unstoppable():
                staging = tempfile.mkdtemp(prefix=f".{stem}.tmp-{pid}-", dir=parent)
            with full_disk_named(final, _OUTPUT_FULL):
                yield staging
            os.chmod(staging, 0o755)
            with signals_held() as held:
                old = _install(staging, final, stem)
        except BaseException:
            if staging is not None:
                with unstoppable():  # a second stop does not cut this short
                    shutil.rmtree(staging, ignore_errors=True)
            raise
        try:
            _delete_previous(final, old)
        finally:
            deliver(held)


#: What a stopped stream's partial output is called when its --output holds a
#: complete output: ``OUT`` + this, beside it.
PARTIAL_SUFFIX = ".partial"


@dataclasses.dataclass
class StreamOutput:
    """A stream's output directory while it is written, and where it went.

    Yielded by `stream_output_dir`. The caller writes into ``staging`` and,
    before the block ends, says what the run produced (``complete``,
    ``keep``); the block's end puts it in place and fills in ``written`` and
    ``note``.

    Attributes
    ----------
    staging : str
        The hidden directory beside the output to write into.
    final : str
        The output directory (absolute, through a symbolic link).
    complete : bool
        True (the default) when the input was read to its end; set it to
        False when the run stopped early.
    keep : bool
        Set it to False to write nothing (a stopped run with no frame).
    written : str or None
        After the block: the directory now holding this run's output (``final``
        or the partial path) or None when nothing was written.
    note : str or None
        After the block, for a run that was not complete: why its output is
        not at ``final`` (``final`` holds a complete output) or was not kept.
    """

    staging: str
    final: str
    complete: bool = True
    keep: bool = True
    written: str | None = None
    note: str | None = None

    @property
    def partial_path(self) -> str:
        """Where a partial output goes when ``final`` holds a complete one."""
        return self.final + PARTIAL_SUFFIX


def _holds_complete_output(folder: str) -> bool:
    """False when ``folder`` is missing, empty or an incomplete output of this tool.

    Anything else, a complete output or files this tool did not write, is
    worth more than a stopped run's partial output.
    """
    if not os.path.lexists(folder):
        return False
    try:
        if _foreign_content(folder) is not None:
            return True
        if not os.listdir(folder):
            return False
        with open(os.path.join(folder, "metadata.json"), encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return True
    return not (isinstance(meta, dict) and meta.get("complete") is False)


def _install_partial(out: StreamOutput, stem: str, inputs: tuple[str, ...]) -> str | None:
    """Put a stopped run's output at ``out.partial_path``; the previous one's new place.

    Sets ``out.written``, or ``out.note`` when the partial path may not be
    written (then the staging directory is left for the caller to remove).
    Called with the output's lock and signals held.
    """
    target = out.partial_path
    if os.path.islink(target) or (os.path.lexists(target) and not os.path.isdir(target)):
        out.note = f"{target} exists and is not a directory"
        return None
    try:
        with output_lock(target, _staging_stem(target)):
            _check_replaceable(target, overwrite=False, inputs=inputs)
            old = _install(out.staging, target, stem)
    except (ParameterError, OSError) as exc:
        out.note = " ".join(str(exc).split())
        return None
    out.written = target
    return old


@contextlib.contextmanager
def stream_output_dir(
    path: str, *, overwrite: bool = False, inputs: Iterable[str] = ()
) -> Iterator[StreamOutput]:
    """Yield a `StreamOutput` whose staging directory is put in place when the block ends.

    As `atomic_output_dir` (the same checks, lock and staging; an exception
    leaves everything as it was), for a run that may stop before its input
    ends and still keep what it wrote:

    - ``complete`` (the input was read to its end): the output replaces
      ``path``, as in `atomic_output_dir`;
    - not ``complete``: the output is marked incomplete by the caller
      (metadata.json ``"complete": false``). It replaces ``path`` only when
      ``path`` holds no complete output (it is new, empty or a previous
      incomplete output); otherwise ``path`` is left as it was and the output
      goes to ``path`` + `PARTIAL_SUFFIX` beside it, under the same rules
      (an existing one is replaced only if it is empty or an output of this
      tool, never with ``overwrite``). If that cannot be written either,
      nothing is kept and ``note`` says why;
    - not ``keep``: nothing is written, ``path`` is left as it was.

    A complete output is never deleted before the new one is in place: the
    new directory is renamed into place and the previous one deleted after.

    Raises
    ------
    ParameterError
        ``path`` may not be written (see `check_output_dir`), or another run
        is writing it.
    OSError
        Replacing the previous output failed; the message says what is left.
    """
    final = resolve_path(path)
    inputs = tuple(inputs)
    parent = os.path.dirname(final)
    stem = _staging_stem(final)
    with output_lock(final, stem):
        _check_replaceable(final, overwrite=overwrite, inputs=inputs)
        _remove_stale(parent, stem)
        staging: str | None = None
        try:
            with unstoppable():
                staging = tempfile.mkdtemp(prefix=f".{stem}.tmp-{os.getpid()}-", dir=parent)
            out = StreamOutput(staging, final)
            yield out
            os.chmod(staging, 0o755)
            old = None
            with signals_held() as held:
                if out.keep and (out.complete or not _holds_complete_output(final)):
                    old = _install(staging, final, stem)
                    out.written = final
                elif out.keep:
                    old = _install_partial(out, stem, inputs)
                    left = f"{final} holds a complete output and was left as it was"
                    if out.written is None:
                        left += f"; the partial output was not kept: {out.note}"
                    out.note = left
                if out.written is not None:
                    staging = None
        except BaseException:
            if staging is not None:
                with unstoppable():  # a second stop does not cut this short
                    shutil.rmtree(staging, ignore_errors=True)
            raise
        try:
            if staging is not None:  # nothing kept
                shutil.rmtree(staging, ignore_errors=True)
            _delete_previous(out.written or final, old)
        finally:
            deliver(held)


@contextlib.contextmanager
def atomic_file(path: str) -> Iterator[str]:
    """Yield a temporary path beside ``path`` that replaces ``path`` when the block succeeds.

    On any exception (KeyboardInterrupt included) the temporary file is
    removed and ``path`` is left as it was. The new file gets mode 0644.
    """
    final = os.path.abspath(path)
    staging: str | None = None
    try:
        with unstoppable():  # a stop cannot fall between creating it and naming it
            fd, staging = tempfile.mkstemp(
                prefix=f".{os.path.basename(final)}.", suffix=".tmp", dir=os.path.dirname(final)
            )
            os.close(fd)
        yield staging
        os.chmod(staging, 0o644)
        os.replace(staging, final)
    except BaseException:
        if staging is not None:
            with unstoppable(), contextlib.suppress(OSError):
                os.unlink(staging)
        raise
