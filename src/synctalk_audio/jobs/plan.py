"""Planning a job: which inputs, and the output directory each one gets.

Inputs come from paths (audio files and directories, searched recursively
for `AUDIO_EXTENSIONS`) or from a manifest: a plain list (one path per line;
blank lines and lines starting with ``#`` are skipped), a CSV file with a
header naming an ``input`` column and optionally an ``output`` column, or
JSON Lines (``.jsonl``/``.ndjson``) objects with an ``input`` and optionally
an ``output`` key. Relative paths in a manifest are relative to the
manifest's directory.

Each input gets one output directory under the job's output directory: a
manifest's output value (a relative path under it), or else the input's path
relative to its root with the extension removed: the directory it was found
in for directory inputs, the deepest directory holding every other listed
file for files. ``clips/a/x.wav`` found under ``clips`` is written to
``OUTPUT/a/x/``.

Everything is checked before any work starts, and a problem is a
`ParameterError` whose message names the input and says what to do: a
missing input, an unreadable directory, a directory without audio, a
manifest that cannot be read, an input listed twice, two inputs mapping to
the same (or a nested) output, an output directory inside an input
directory (or an input inside the output directory), and a manifest output
that would leave the output directory (absolute, ``..``, or through a
symbolic link).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from collections.abc import Iterable, Sequence

from ..errors import ParameterError

__all__ = ["AUDIO_EXTENSIONS", "RECORD_NAME", "JobItem", "plan_job"]

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


def _is_within(path: str, folder: str) -> bool:
    try:
        return os.path.commonpath([path, folder]) == folder
    except ValueError:
        return False


def _walk_error(exc: OSError) -> None:
    raise ParameterError(
        f"cannot read directory {exc.filename}: {exc.strerror}; fix its permissions or leave it out"
    )


def _audio_in(directory: str) -> list[str]:
    found: list[str] = []
    for top, dirs, files in os.walk(directory, onerror=_walk_error, followlinks=True):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(AUDIO_EXTENSIONS) and not name.startswith("."):
                found.append(os.path.join(top, name))
    return found


def _from_paths(paths: Iterable[str | os.PathLike[str]]) -> list[_Entry]:
    entries: list[_Entry] = []
    for given in paths:
        path = os.path.abspath(os.fspath(given))
        if os.path.isdir(path):
            if not os.access(path, os.R_OK | os.X_OK):
                raise ParameterError(
                    f"cannot read directory {path}: Permission denied; fix its permissions or"
                    " leave it out"
                )
            found = _audio_in(path)
            if not found:
                raise ParameterError(
                    f"no audio files under {path} (looked for"
                    f" {', '.join(AUDIO_EXTENSIONS)}, in every subdirectory)"
                )
            entries += [_Entry(f, f"under {os.fspath(given)}", path) for f in found]
        elif os.path.exists(path):
            entries.append(_Entry(path, "--audio", None))
        else:
            raise ParameterError(f"input not found: {os.fspath(given)}")
    return entries


def _manifest_rows(manifest: str) -> list[tuple[int, str, str | None]]:
    """(line number, input, output or None) for every row of ``manifest``."""
    try:
        with open(manifest, encoding="utf-8", newline="") as f:
            text = f.read()
    except FileNotFoundError:
        raise ParameterError(f"manifest not found: {manifest}") from None
    except UnicodeDecodeError:
        raise ParameterError(f"manifest {manifest} is not UTF-8 text") from None
    except OSError as exc:
        raise ParameterError(f"cannot read manifest {manifest}: {exc.strerror}") from None
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
    return rows


def _from_manifest(manifest: str) -> list[_Entry]:
    manifest = os.path.abspath(manifest)
    base = os.path.dirname(manifest)
    entries: list[_Entry] = []
    missing: list[str] = []
    for line, value, output in _manifest_rows(manifest):
        path = os.path.join(base, os.path.expanduser(value))
        origin = f"manifest line {line}"
        if not os.path.isfile(path):
            why = "is a directory" if os.path.isdir(path) else "not found"
            missing.append(f"line {line}: {value} ({why})")
            continue
        entries.append(_Entry(os.path.abspath(path), origin, None, output))
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise ParameterError(
            f"manifest {manifest}: {len(missing)} input(s) are not files, {missing[0]}{more};"
            " fix those lines (relative paths are relative to the manifest's directory)"
        )
    return entries


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
    entries = _from_paths(inputs)
    manifest_path = os.path.abspath(os.fspath(manifest)) if manifest is not None else ""
    if manifest is not None:
        entries += _from_manifest(manifest_path)
    if not entries:
        raise ParameterError("no inputs: give --audio PATH (files or directories) or --manifest")

    seen: dict[str, _Entry] = {}
    for entry in entries:
        real = os.path.realpath(entry.path)
        first = seen.get(real)
        if first is not None:
            raise ParameterError(
                f"input {entry.path} is listed twice ({first.origin} and {entry.origin});"
                " list each input once"
            )
        seen[real] = entry

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
