"""Resuming a job: which items are finished, from their outputs and the record.

An item is finished, and left as it is, when its output directory holds a
complete output: metadata.json written by this tool for this input (the
same absolute path), with the job's settings and model SHA-256, beside the
mode's feature file (outputs appear whole: they are renamed into place).
And that output must prove it was made from the input as it is now:

- metadata.json's ``input`` holds the ``size``, ``mtime_ns`` and ``sha256``
  the worker read before processing (`jobs.work.source_facts`): the input's
  size and modification time now must be those, and then its SHA-256
  (computed again only when they are) must be that one; or
- for an output without those facts (from a version that did not write
  them), the record's latest line for the item is ``done``, with the same
  input, settings and model, and the input's size and SHA-256 now.

The first needs no record: an output renamed into place by a run that was
killed before it wrote the item's ``done`` line is kept, and a ``done``
line is written for it (the item is *adopted*). So a job killed at any
moment and run again redoes no item whose output was in place.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..encoders import file_sha256
from ..outputs.directory import is_marked
from .plan import JobItem
from .record import Entry

__all__ = ["Resume", "complete_output", "resume"]

#: The input facts an output's metadata.json proves its input by.
FACTS = ("size", "mtime_ns", "sha256")


@dataclasses.dataclass(frozen=True)
class Resume:
    """What a run has left to do.

    Attributes
    ----------
    todo : list of JobItem
        Items to process, in the job's order.
    finished : list of JobItem
        Items left as they are.
    adopted : list of dict
        ``done`` record lines for finished items the record did not show as
        done (their run was stopped before it wrote the line).
    """

    todo: list[JobItem]
    finished: list[JobItem]
    adopted: list[Entry]


def complete_output(
    item: JobItem, settings: Mapping[str, Any], model_sha256: str, feature_file: str
) -> dict[str, Any] | None:
    """metadata.json of ``item.output`` when it is a whole output of ``item.input`` with these
    settings and model, and the feature file is there; else None."""
    meta_path = os.path.join(item.output, "metadata.json")
    if not is_marked(meta_path):
        return None
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or not isinstance(meta.get("input"), dict):
        return None
    model = meta.get("model")
    if (
        meta["input"].get("path") == item.input
        and meta.get("settings") == dict(settings)
        and isinstance(model, dict)
        and model.get("sha256") == model_sha256
        and os.path.isfile(os.path.join(item.output, feature_file))
    ):
        return meta
    return None


def _facts_hold(facts: Mapping[str, Any], path: str) -> bool:
    """The input at ``path`` has the size and mtime of ``facts``, and then its SHA-256."""
    try:
        stat = os.stat(path)
    except OSError:
        return False
    if facts.get("size") != stat.st_size or facts.get("mtime_ns") != stat.st_mtime_ns:
        return False
    try:
        return bool(facts.get("sha256") == file_sha256(path))
    except OSError:
        return False


def _record_proves(
    item: JobItem, previous: Entry | None, settings: Mapping[str, Any], model_sha256: str
) -> bool:
    """The record's latest line says ``item`` is done from the input as it is now."""
    if (
        previous is None
        or previous.get("status") != "done"
        or previous.get("input") != item.input
        or previous.get("settings") != dict(settings)
        or previous.get("model_sha256") != model_sha256
    ):
        return False
    try:
        if previous.get("size") != os.stat(item.input).st_size:
            return False
        return bool(previous.get("sha256") == file_sha256(item.input))
    except OSError:
        return False


def _adoption(
    item: JobItem, meta: Mapping[str, Any], settings: Mapping[str, Any], model_sha256: str
) -> Entry:
    """The ``done`` line of an item whose output proves itself (the record lacked it)."""
    source = meta["input"]
    counts = meta.get("counts")
    return {
        "status": "done",
        "input": item.input,
        "output": item.key,
        **{fact: source.get(fact) for fact in FACTS},
        "settings": dict(settings),
        "model_sha256": model_sha256,
        "error": None,
        "duration_s": source.get("duration_s"),
        "frames": counts.get("frames") if isinstance(counts, dict) else None,
        "timings": {"adopted": time.time()},
    }


def _recorded_done(previous: Entry | None, meta: Mapping[str, Any], model_sha256: str) -> bool:
    """The record already holds this output's ``done`` line."""
    return (
        previous is not None
        and previous.get("status") == "done"
        and previous.get("input") == meta["input"].get("path")
        and previous.get("sha256") == meta["input"].get("sha256")
        and previous.get("settings") == meta.get("settings")
        and previous.get("model_sha256") == model_sha256
    )


def resume(
    items: Sequence[JobItem],
    previous: Mapping[str, Entry],
    settings: Mapping[str, Any],
    model_sha256: str,
    feature_file: str,
    *,
    force: bool = False,
) -> Resume:
    """Split ``items`` into those to do and those finished (the module docstring's rule).

    Parameters
    ----------
    items : sequence of JobItem
        The job's items, their outputs absolute.
    previous : mapping of str to dict
        The record's latest line of each item, by key (`JobRecord.load`).
    settings : mapping
        metadata.json's ``settings`` of this run (`RunSpec.describe`).
    model_sha256 : str
        The model's SHA-256.
    feature_file : str
        The mode's feature file name (``aud_ave.npy``).
    force : bool
        Redo every item.

    Returns
    -------
    Resume
    """
    if force:
        return Resume(todo=list(items), finished=[], adopted=[])
    todo: list[JobItem] = []
    finished: list[JobItem] = []
    adopted: list[Entry] = []
    for item in items:
        meta = complete_output(item, settings, model_sha256, feature_file)
        entry = previous.get(item.key)
        if meta is None:
            todo.append(item)
        elif all(fact in meta["input"] for fact in FACTS):
            if not _facts_hold(meta["input"], item.input):
                todo.append(item)
                continue
            finished.append(item)
            if not _recorded_done(entry, meta, model_sha256):
                adopted.append(_adoption(item, meta, settings, model_sha256))
        elif _record_proves(item, entry, settings, model_sha256):
            finished.append(item)
        else:
            todo.append(item)
    return Resume(todo=todo, finished=finished, adopted=adopted)
