"""Planning a job: which inputs, and the output directory each one gets.

Inputs come from paths (audio files and directories, searched recursively
for `AUDIO_EXTENSIONS`) or from a manifest: a plain list (one path per line;
blank lines and lines starting with ``#`` are skipped), a CSV file with a
header naming an ``input`` column and optionally an ``output`` column, or
JSON Lines (``.jsonl``/``.ndjson``) objects with an ``input`` and optionally
an ``output`` key. Relative paths in a manifest are relative to the
manifest's directory. A manifest may start with a UTF-8 byte order mark and
may be at most `MAX_MANIFEST_BYTES` long.

A directory is searched as ``find -L DIR -type f`` lists it: symbolic links
are followed, but never into a directory the search is already inside (the
same device and inode as a directory on the way down: a loop), and only
regular files are inputs (a FIFO or a device named ``x.wav`` is not opened).
Each entry skipped that way (a loop, a file that is not regular, a link
that leads nowhere) is reported, one line per reason and directory, to the
``notice`` callback of `plan_job`. A file found twice in one search, under
two names (``alias.wav -> clip00.wav``), is an input under each name: the
output tree mirrors the input tree, so each name gets its output.

Each input gets one output directory under the job's output directory: a
manifest's output value (a relative path under it), or else the input's path
relative to its root with the extension removed: the directory it was found
in for directory inputs, the deepest directory holding every other listed
file for files. ``clips/a/x.wav`` found under ``clips`` is written to
``OUTPUT/a/x/``.

Everything is checked before any work starts, and a problem is a
`ParameterError` whose message names the input and says what to do: a
missing input, an unreadable directory, a directory without audio, a listed
input that is not a regular file (a job reads each input twice, for its
SHA-256 and its audio, so a stream cannot be one), a manifest that cannot be
read, is too large, or holds a NUL character, an input listed twice (the
message names both listings), two inputs mapping to the same (or a nested)
output, an output directory inside an input directory (or an input inside
the output directory), and a manifest output that would leave the output
directory (absolute, ``..``, or through a symbolic link).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import stat
import warnings
from collections.abc import Callable, Iterable, Sequence

from ..errors import ParameterError

__all__ = ["AUDIO_EXTENSIONS", "MAX_MANIFEST_BYTES", "RECORD_NAME", "JobItem", "plan_job"]

#: File name extensions a directory search picks up (lower case; the
#: comparison ignores case): the formats libsndfile decodes.
AUDIO_EXTENSIONS = (
    ".wav",
    ".flac",
    ".ogg",
    ".oga",
    ".opus",
    ".mp3",
    ".aif",
    ".aiff",
    ".aifc",
    ".au",
    ".caf",
    ".w64",
    ".rf64",
)

#: The job record's file name inside the output directory (`jobs.record`).
RECORD_NAME = "synctalk-job.jsonl"

#: Column/key names of a manifest.
INPUT_KEY, OUTPUT_KEY = "input", "output"

#: A manifest longer than this (64 MiB, about 500,000 lines) is refused: it is
#: read whole, and a device or endless stream given as one must not fill memory.
MAX_MANIFEST_BYTES = 64 << 20

#: Called with each one-line notice of the planner (what a search skipped).
Notice = Callable[[str], None]

#: Examples a notice names before "and N more".
_EXAMPLES = 3


@dataclasses.dataclass(frozen=True)
class JobItem:
    """One input of a job and where its output goes.

    Attributes
    ----------
    input : str
        The input file, absolute.
    output : str
        Its output directory, absolute, inside the job's output directory.
    key : str
        ``output`` relative to the job's output directory, with ``/``
        separators: the item's name in the job record and in messages.
    origin : str
        Where the input was named, for messages (``--audio``, ``manifest
        line 3``).
    """

    input: str
    output: str
    key: str
    origin: str


@dataclasses.dataclass(frozen=True)
class _Entry:
    path: str  # absolute
    origin: str
    root: str | None  # the directory it was found under (None: a listed file)
    output: str | None = None  # manifest output value, as written
    listing: int = 0  # which --audio path (or the manifest) gave it


def _is_within(path: str, folder: str) -> bool:
    try:
        return os.path.commonpath([path, folder]) == folder
    except ValueError:
        return False


def _walk_error(exc: OSError) -> None:
    raise ParameterError(
        f"cannot read directory {exc.filename}: {exc.strerror}; fix its permissions or leave it out"
    )


def _file_kind(mode: int) -> str:
    """What a file of ``st_mode`` ``mode`` is, for messages: "a FIFO", "a character device", ...

    >>> import stat
    >>> _file_kind(stat.S_IFIFO), _file_kind(stat.S_IFREG)
    ('a FIFO', 'a regular file')
    """
    for test, kind in (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def _counted(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _examples(found: Sequence[str]) -> str:
    shown = ", ".join(found[:_EXAMPLES])
    return shown + (f" and {len(found) - _EXAMPLES} more" if len(found) > _EXAMPLES else "")


@dataclasses.dataclass
class _Skipped:
    """What a directory search left out, by reason: each a list of "PATH (why)" strings."""

    loops: list[str] = dataclasses.field(default_factory=list)
    special: list[str] = dataclasses.field(default_factory=list)
    broken: list[str] = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.loops) + len(self.special) + len(self.broken)

    def notices(self, root: str) -> list[str]:
        """One line per reason, naming the first few entries."""
        lines: list[str] = []
        if self.loops:
            n = len(self.loops)
            lines.append(
                f"skipped {_counted(n, 'symbolic link', 'symbolic links')} under {root} that"
                f" {'leads' if n == 1 else 'lead'} back to a directory"
                f" {'it is' if n == 1 else 'they are'} in (a loop; the files there are taken"
                f" once): {_examples(self.loops)}"
            )
        if self.special:
            n = len(self.special)
            lines.append(
                f"skipped {_counted(n, 'audio name', 'audio names')} under {root} that"
                f" {'is' if n == 1 else 'are'} not a regular file (a directory search takes"
                f" regular files only; give a FIFO alone, --audio PATH, to read it as a"
                f" stream): {_examples(self.special)}"
            )
        if self.broken:
            n = len(self.broken)
            lines.append(
                f"skipped {_counted(n, 'symbolic link', 'symbolic links')} under {root} that"
                f" cannot be followed: {_examples(self.broken)}"
            )
        return lines


def _unfollowable(path: str, exc: OSError) -> str:
    """The entry's path, where it links to and why it cannot be followed, for a notice."""
    try:
        target = f" -> {os.readlink(path)}"
    except OSError:
        target = ""
    return f"{path}{target} ({exc.strerror or exc})"


def _audio_in(directory: str) -> tuple[list[str], _Skipped]:
    """The regular audio files under ``directory`` and what the search skipped.

    Depth first, each directory's files (sorted) before its subdirectories
    (sorted), as `os.walk` orders them. Symbolic links are followed except
    into a directory the search is inside (same ``st_dev`` and ``st_ino``),
    so a loop ends at once; hidden files (``.name``) are left out; an audio
    name that is not a regular file, or a link that leads nowhere, is
    skipped. Nothing but directories is opened.
    """
    found: list[str] = []
    skipped = _Skipped()
    top = os.stat(directory)
    # Each directory to search, with the directories it is in: (dev, ino) -> path.
    stack: list[tuple[str, dict[tuple[int, int], str]]] = [
        (directory, {(top.st_dev, top.st_ino): directory})
    ]
    while stack:
        folder, ancestors = stack.pop()
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError as exc:
            _walk_error(exc)
        subdirs: list[tuple[str, dict[tuple[int, int], str]]] = []
        for entry in entries:
            hidden = entry.name.startswith(".")
            try:
                if entry.is_dir():  # through a link too; False for a dangling one
                    info = entry.stat()
                    key = (info.st_dev, info.st_ino)
                    if key in ancestors:
                        skipped.loops.append(f"{entry.path} -> {ancestors[key]}")
                    else:
                        subdirs.append((entry.path, {**ancestors, key: entry.path}))
                    continue
                audio = entry.name.lower().endswith(AUDIO_EXTENSIONS)
                if hidden or not (audio or entry.is_symlink()):
                    continue
                mode = entry.stat().st_mode  # follows a link; raises if it leads nowhere
            except OSError as exc:
                if not hidden:
                    skipped.broken.append(_unfollowable(entry.path, exc))
                continue
            if not audio:
                continue
            if stat.S_ISREG(mode):
                found.append(entry.path)
            else:
                skipped.special.append(f"{entry.path} ({_file_kind(mode)})")
        stack.extend(reversed(subdirs))
    return found, skipped


def _from_paths(paths: Iterable[str | os.PathLike[str]], notice: Notice) -> list[_Entry]:
    entries: list[_Entry] = []
    for listing, given in enumerate(paths):
        path = os.path.abspath(os.fspath(given))
        if os.path.isdir(path):
            if not os.access(path, os.R_OK | os.X_OK):
                raise ParameterError(
                    f"cannot read directory {path}: Permission denied; fix its permissions or"
                    " leave it out"
                )
            found, skipped = _audio_in(path)
            for line in skipped.notices(path):
                notice(line)
            if not found:
                also = (
                    f"; {_counted(len(skipped), 'entry was', 'entries were')} skipped (loops,"
                    " files that are not regular, broken links)"
                    if len(skipped)
                    else ""
                )
                raise ParameterError(
                    f"no audio files under {path} (looked for"
                    f" {', '.join(AUDIO_EXTENSIONS)}, in every subdirectory){also}"
                )
            origin = f"under {os.fspath(given)}"
            entries += [_Entry(f, origin, path, listing=listing) for f in found]
        elif os.path.exists(path):
            mode = os.stat(path).st_mode
            if not stat.S_ISREG(mode):
                raise ParameterError(
                    f"input {os.fspath(given)} is {_file_kind(mode)}, not a regular file: a job"
                    " reads each input twice (its SHA-256 for the record, then its audio) and"
                    " cannot resume a stream; process it on its own (--audio"
                    f" {os.fspath(given)} --output DIR) or save it to a file first"
                )
            entries.append(_Entry(path, "--audio", None, listing=listing))
        else:
            raise ParameterError(f"input not found: {os.fspath(given)}")
    return entries


def _read_manifest(manifest: str) -> str:
    """The text of ``manifest``: at most `MAX_MANIFEST_BYTES`, UTF-8, a byte order mark dropped."""
    try:
        with open(manifest, "rb") as f:
            data = f.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise ParameterError(f"manifest not found: {manifest}") from None
    except OSError as exc:
        raise ParameterError(f"cannot read manifest {manifest}: {exc.strerror}") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise ParameterError(
            f"manifest {manifest} is longer than {MAX_MANIFEST_BYTES >> 20} MiB, the most one"
            " manifest may hold; split it into smaller manifests and run one job on each, or"
            " give the directories holding the inputs with --audio"
        )
    try:
        return data.decode("utf-8-sig")  # a byte order mark (Excel, Notepad) is not text
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ParameterError(
            f"manifest {manifest} is not UTF-8 text (line {line}); save it as UTF-8"
        ) from None


def _manifest_rows(manifest: str) -> list[tuple[int, str, str | None]]:
    """(line number, input, output or None) for every row of ``manifest``."""
    text = _read_manifest(manifest)
    lower = manifest.lower()
    rows: list[tuple[int, str, str | None]] = []
    if lower.endswith(".csv"):
        reader = csv.reader(text.splitlines())
        header = next(reader, None)
        names = [n.strip().lower() for n in header] if header else []
        if INPUT_KEY not in names:
            raise ParameterError(
                f"manifest {manifest}: its first line must name the columns, with an"
                f" '{INPUT_KEY}' column (and optionally '{OUTPUT_KEY}'); got {header!r}"
            )
        col_in = names.index(INPUT_KEY)
        col_out = names.index(OUTPUT_KEY) if OUTPUT_KEY in names else None
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if col_in >= len(row) or not row[col_in].strip():
                raise ParameterError(f"manifest {manifest} line {line}: no {INPUT_KEY} value")
            out = row[col_out].strip() if col_out is not None and col_out < len(row) else ""
            rows.append((line, row[col_in].strip(), out or None))
    elif lower.endswith((".jsonl", ".ndjson")):
        for line, raw in enumerate(text.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ParameterError(
                    f"manifest {manifest} line {line}: not JSON ({exc.msg})"
                ) from None
            value = obj.get(INPUT_KEY) if isinstance(obj, dict) else None
            if not isinstance(value, str) or not value.strip():
                raise ParameterError(
                    f"manifest {manifest} line {line}: expected an object with an"
                    f' "{INPUT_KEY}" path, e.g. {{"{INPUT_KEY}": "clips/a.wav"}}'
                )
            out = obj.get(OUTPUT_KEY)
            if out is not None and not isinstance(out, str):
                raise ParameterError(
                    f'manifest {manifest} line {line}: "{OUTPUT_KEY}" must be a path string'
                )
            rows.append((line, value.strip(), out.strip() if out and out.strip() else None))
    else:
        for line, raw in enumerate(text.splitlines(), 1):
            value = raw.strip()
            if value and not value.startswith("#"):
                rows.append((line, value, None))
    if not rows:
        raise ParameterError(f"manifest {manifest} lists no inputs")
    for line, value, output_value in rows:
        for key, given in ((INPUT_KEY, value), (OUTPUT_KEY, output_value)):
            if given is not None and "\0" in given:
                raise ParameterError(
                    f"manifest {manifest} line {line}: the {key} value holds a NUL character"
                    " (\\0), which no path can hold; fix that line"
                )
    return rows


def _from_manifest(manifest: str) -> list[_Entry]:
    manifest = os.path.abspath(manifest)
    base = os.path.dirname(manifest)
    entries: list[_Entry] = []
    missing: list[str] = []
    for line, value, output in _manifest_rows(manifest):
        path = os.path.join(base, os.path.expanduser(value))
        origin = f"manifest line {line}"
        try:
            mode: int | None = os.stat(path).st_mode
        except OSError:
            mode = None
        if mode is None or not stat.S_ISREG(mode):
            why = "not found" if mode is None else f"{_file_kind(mode)}, not a regular file"
            missing.append(f"line {line}: {value} ({why})")
            continue
        entries.append(_Entry(os.path.abspath(path), origin, None, output, listing=-1))
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise ParameterError(
            f"manifest {manifest}: {len(missing)} input(s) are not files, {missing[0]}{more};"
            " fix those lines (relative paths are relative to the manifest's directory)"
        )
    return entries


def _warn(line: str) -> None:
    warnings.warn(line, UserWarning, stacklevel=3)


def _check_listed_once(entries: Sequence[_Entry], notice: Notice) -> None:
    """No file is listed twice; one found twice in one directory search is fine (an alias).

    A directory's aliases (``alias.wav -> clip00.wav``, a linked directory)
    mirror the tree as it is named: each name is an input with its own
    output, and one notice says so. Anything else naming one file twice
    (two ``--audio`` paths, two manifest lines, a file inside a listed
    directory) is refused, naming both listings.
    """
    seen: dict[str, _Entry] = {}
    aliases: dict[str, list[str]] = {}
    for entry in entries:
        real = os.path.realpath(entry.path)
        first = seen.get(real)
        if first is None:
            seen[real] = entry
        elif first.root is not None and entry.listing == first.listing:
            aliases.setdefault(first.root, []).append(f"{first.path} = {entry.path}")
        elif first.path == entry.path:
            raise ParameterError(
                f"input {entry.path} is listed twice ({first.origin} and {entry.origin});"
                " list each input once"
            )
        else:
            raise ParameterError(
                f"input {real} is listed twice, as {first.path} ({first.origin}) and as"
                f" {entry.path} ({entry.origin}, the same file); list each input once"
            )
    for root, found in aliases.items():
        notice(
            f"{_counted(len(found), 'file', 'files')} under {root}"
            f" {'has' if len(found) == 1 else 'have'} two names (symbolic links):"
            f" {_examples(found)}; each name gets its own output, as the tree names it"
        )


def _strip_extension(relative: str) -> str:
    stem, ext = os.path.splitext(relative)
    return stem if ext and stem and not stem.endswith(os.sep) else relative


def _checked_output(value: str, entry: _Entry, output: str, manifest: str) -> str:
    """The absolute output of a manifest output value; ParameterError if it leaves ``output``."""
    where = f"manifest {manifest} {entry.origin}"
    if os.path.isabs(value) or os.path.splitdrive(value)[0]:
        raise ParameterError(
            f"{where}: output {value!r} is an absolute path; give a path relative to --output"
        )
    path = os.path.normpath(os.path.join(output, value))
    if not _is_within(path, output) or path == output:
        raise ParameterError(
            f"{where}: output {value!r} is not inside --output {output}; give a path relative"
            " to --output, without '..'"
        )
    return path


def _check_no_escape(items: Sequence[JobItem], output: str) -> None:
    """No item output may lead out of ``output`` through a symbolic link."""
    real_output = os.path.realpath(output)
    for item in items:
        real = os.path.realpath(item.output)
        if not _is_within(real, real_output):
            raise ParameterError(
                f"output {item.key} of {item.input} leads to {real}, outside --output"
                f" {output} (through a symbolic link); remove the link or choose another"
                " output"
            )


def _check_distinct(items: Sequence[JobItem], output: str) -> None:
    """No two items share an output, nest one in another, or use the record's name."""
    record = os.path.join(output, RECORD_NAME)
    by_output: dict[str, JobItem] = {}
    for item in sorted(items, key=lambda i: i.output):
        if item.output == record:
            raise ParameterError(
                f"{item.input} would write {item.output}, the job record's name; rename the"
                " input or give it another output in a manifest"
            )
        other = by_output.get(item.output)
        if other is not None:
            raise ParameterError(
                f"{other.input} and {item.input} would both write {item.output}; give them"
                " distinct names, or distinct outputs in a manifest's output column"
            )
        by_output[item.output] = item
    ordered = sorted(by_output)
    for before, after in zip(ordered, ordered[1:], strict=False):
        if _is_within(after, before):
            raise ParameterError(
                f"the output of {by_output[after].input} ({after}) would be inside the output"
                f" of {by_output[before].input} ({before}); give them outputs that do not"
                " nest, e.g. in a manifest's output column"
            )


def plan_job(
    output: str | os.PathLike[str],
    inputs: Sequence[str | os.PathLike[str]] = (),
    *,
    manifest: str | os.PathLike[str] | None = None,
    notice: Notice | None = None,
) -> list[JobItem]:
    """The job's items: every input and its output directory under ``output``.

    Parameters
    ----------
    output : str or os.PathLike
        The job's output directory.
    inputs : sequence of str or os.PathLike
        Audio files and directories (searched recursively for
        `AUDIO_EXTENSIONS`).
    manifest : str or os.PathLike, optional
        A manifest file (plain list, CSV or JSON Lines; see the module
        docstring), instead of or besides ``inputs``.
    notice : callable, optional
        Called with one line for each thing worth knowing that is not an
        error: what a directory search skipped (loops, files that are not
        regular, broken links; one line per reason and directory) and files
        found under two names. When None, each line is a `UserWarning`.

    Returns
    -------
    list of JobItem
        In the order the inputs were given (directories sorted by path).

    Raises
    ------
    ParameterError
        For every problem the module docstring lists; nothing is written.

    Examples
    --------
    >>> import os, tempfile
    >>> from synctalk_audio.jobs.plan import plan_job
    >>> root = tempfile.mkdtemp()
    >>> os.makedirs(os.path.join(root, "clips", "a"))
    >>> open(os.path.join(root, "clips", "a", "x.wav"), "wb").close()
    >>> [item.key for item in plan_job(os.path.join(root, "out"), [os.path.join(root, "clips")])]
    ['a/x']
    """
    if not os.fspath(output):
        raise ParameterError("the output path is empty; give a directory, e.g. --output output")
    out = os.path.abspath(os.fspath(output))
    if notice is None:
        notice = _warn
    entries = _from_paths(inputs, notice)
    manifest_path = os.path.abspath(os.fspath(manifest)) if manifest is not None else ""
    if manifest is not None:
        entries += _from_manifest(manifest_path)
    if not entries:
        raise ParameterError("no inputs: give --audio PATH (files or directories) or --manifest")

    _check_listed_once(entries, notice)

    real_out = os.path.realpath(out)
    for entry in entries:
        if entry.root is not None and _is_within(real_out, os.path.realpath(entry.root)):
            raise ParameterError(
                f"--output {out} is inside the input directory {entry.root}; choose an output"
                " directory outside it (a rerun would find the outputs as inputs)"
            )
        if _is_within(os.path.realpath(entry.path), real_out):
            raise ParameterError(
                f"input {entry.path} is inside --output {out}; keep inputs and outputs apart"
                " (choose another --output)"
            )

    listed = [e.path for e in entries if e.root is None and e.output is None]
    common = os.path.commonpath([os.path.dirname(p) for p in listed]) if listed else ""
    items: list[JobItem] = []
    for entry in entries:
        if entry.output is not None:
            path = _checked_output(entry.output, entry, out, manifest_path)
        else:
            root = entry.root if entry.root is not None else common
            path = os.path.join(out, _strip_extension(os.path.relpath(entry.path, root)))
        key = os.path.relpath(path, out).replace(os.sep, "/")
        items.append(JobItem(entry.path, path, key, entry.origin))
    _check_distinct(items, out)
    _check_no_escape(items, out)
    return items
