"""A port's stage dumps compared with reference vectors, stage by stage.

The reference is a directory written by ``synctalk-audio vectors``
(`reference.write_vectors`): ``index.json`` lists the stages in order with
their files, shapes and tolerances. The candidate is a directory of ``.npy``
files a port dumped, named as the reference's (``03_magnitude.npy``) or by
the stage alone (``magnitude.npy``); a port may dump only some stages. Each
stage present is compared with its reference: the same shape, and a max abs
difference within the stage's tolerance (``tolerance.abs``, or
``tolerance.float32`` with ``tier="float32"``). The first stage that departs
is where the port went wrong: every later stage inherits its error.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ParameterError
from .reference import INDEX_FILE, VECTORS_FORMAT

__all__ = ["TIERS", "ConformError", "ConformResult", "StageVerdict", "conform", "load_index"]

#: The tolerance tiers: parity (``abs``) or a float32 front end's budget (``float32``).
TIERS = ("parity", "float32")


class ConformError(ValueError):
    """The reference or candidate directory cannot be compared (nothing was judged)."""


@dataclass
class StageVerdict:
    """One stage's comparison.

    Attributes
    ----------
    stage : str
        Stage name.
    file : str
        The candidate's file name ("" when it dumped none).
    shape : tuple of int
        The reference's shape.
    status : str
        ``"pass"``, ``"FAIL"`` or ``"absent"`` (not dumped by the candidate).
    max_abs : float
        max |candidate - reference| (NaN when not compared; inf when the
        candidate holds NaN or infinity where the reference does not).
    tolerance : float
        The tolerance applied.
    where : tuple of int
        Index of the largest difference.
    detail : str
        Why a stage failed, when it is not the size of the difference.
    """

    stage: str
    file: str
    shape: tuple[int, ...]
    status: str
    max_abs: float = math.nan
    tolerance: float = math.nan
    where: tuple[int, ...] = ()
    detail: str = ""


@dataclass
class ConformResult:
    """Every stage's verdict, in the reference path's order."""

    reference: str
    candidate: str
    tier: str
    mode: str
    stages: list[StageVerdict] = field(default_factory=list)
    #: .npy files of the candidate that name no stage of the reference (not compared).
    unmatched: list[str] = field(default_factory=list)

    @property
    def compared(self) -> list[StageVerdict]:
        """The stages the candidate dumped."""
        return [s for s in self.stages if s.status != "absent"]

    @property
    def passed(self) -> bool:
        """Every stage the candidate dumped is within its tolerance."""
        return all(s.status == "pass" for s in self.compared)

    @property
    def first_failure(self) -> StageVerdict | None:
        """The first stage, in the path's order, that departs from the reference."""
        return next((s for s in self.stages if s.status == "FAIL"), None)

    def table(self) -> str:
        """The verdicts as a text table, then one line naming the outcome."""
        head = ("stage", "shape", "max abs error", "tolerance", "verdict")
        rows = [head]
        for s in self.stages:
            shape = "x".join(str(n) for n in s.shape) or "scalar"
            error = "-" if math.isnan(s.max_abs) else f"{s.max_abs:.3e}"
            tol = "-" if s.status == "absent" else f"{s.tolerance:.3e}"
            verdict = "not dumped" if s.status == "absent" else s.status
            rows.append((s.stage, shape, error, tol, verdict))
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        if self.unmatched:
            lines.append(
                "not compared (no stage of that name in the reference): "
                + ", ".join(self.unmatched)
            )
        lines.append(self.summary())
        return "\n".join(lines)

    def summary(self) -> str:
        """One line: every dumped stage passes, or the first that departs and how."""
        done = len(self.compared)
        tier = "" if self.tier == "parity" else f" ({self.tier} tier)"
        bad = self.first_failure
        if bad is None:
            return f"PASS{tier}: all {done} dumped stages of {len(self.stages)} within tolerance"
        if bad.detail:
            how = bad.detail
        else:
            how = (
                f"max abs error {bad.max_abs:.3e} at index {list(bad.where)}, tolerance"
                f" {bad.tolerance:.3e} ({bad.max_abs / bad.tolerance:.3g}x)"
                if bad.tolerance > 0
                else f"max abs error {bad.max_abs:.3e} at index {list(bad.where)}, must be exact"
            )
        failed = sum(s.status == "FAIL" for s in self.stages)
        return (
            f"FAIL{tier}: first departs at stage '{bad.stage}' ({bad.file}): {how};"
            f" {failed} of {done} dumped stages fail"
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "reference": self.reference,
            "candidate": self.candidate,
            "tier": self.tier,
            "mode": self.mode,
            "passed": self.passed,
            "first_failure": None if self.first_failure is None else self.first_failure.stage,
            "unmatched": list(self.unmatched),
            "stages": [
                {
                    "stage": s.stage,
                    "file": s.file,
                    "shape": list(s.shape),
                    "status": s.status,
                    "max_abs": None if math.isnan(s.max_abs) else s.max_abs,
                    "tolerance": None if math.isnan(s.tolerance) else s.tolerance,
                    "where": list(s.where),
                    "detail": s.detail,
                }
                for s in self.stages
            ],
        }


def load_index(reference: str) -> dict[str, Any]:
    """The ``index.json`` of a vectors directory, checked.

    Raises
    ------
    FileNotFoundError
        If the directory does not exist.
    ConformError
        If it has no index.json, or one that is not a vectors index.
    """
    if not os.path.isdir(reference):
        if os.path.exists(reference):
            raise ConformError(f"reference {reference} is a file; give the vectors directory")
        raise FileNotFoundError(f"reference directory not found: {reference}")
    path = os.path.join(reference, INDEX_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            index = json.load(f)
    except FileNotFoundError:
        raise ConformError(
            f"{reference} has no {INDEX_FILE}: not a vectors directory (write one with"
            " `synctalk-audio vectors --mode MODE --model MODEL --audio FILE --output DIR`)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConformError(f"cannot read {path}: {exc}") from None
    if not isinstance(index, dict) or index.get("format") != VECTORS_FORMAT:
        found = index.get("format") if isinstance(index, dict) else type(index).__name__
        raise ConformError(
            f"{path} is not a vectors index (format {found!r}, expected {VECTORS_FORMAT!r})"
        )
    stages = index.get("stages")
    if not isinstance(stages, list) or not stages:
        raise ConformError(f"{path} lists no stages")
    for entry in stages:
        if not isinstance(entry, dict) or not {"name", "file", "shape", "tolerance"} <= set(entry):
            raise ConformError(
                f"{path}: a stage entry lacks name, file, shape or tolerance: {entry!r}"
            )
    return index


def _candidate_file(candidate: str, entry: dict[str, Any]) -> str | None:
    for name in (entry["file"], f"{entry['name']}.npy"):
        path = os.path.join(candidate, name)
        if os.path.exists(path):
            return path
    return None


def _tolerance(entry: dict[str, Any], tier: str) -> float:
    tol = entry["tolerance"]
    value = tol.get("float32", tol["abs"]) if tier == "float32" else tol["abs"]
    return float(value)


def _compare(reference: np.ndarray, got: np.ndarray) -> tuple[float, tuple[int, ...]]:
    """max |got - reference| and where; NaN/inf in got where the reference is finite: inf."""
    ref = reference.astype(np.float64)
    cand = got.astype(np.float64)
    if ref.size == 0:
        return 0.0, ()
    diff = np.abs(cand - ref)
    same_special = (ref == cand) | (np.isnan(ref) & np.isnan(cand))
    diff = np.where(same_special, 0.0, diff)
    diff = np.where(np.isnan(diff), np.inf, diff)
    flat = int(np.argmax(diff))
    return float(diff.flat[flat]), tuple(int(i) for i in np.unravel_index(flat, diff.shape))


def conform(
    reference: str,
    candidate: str,
    *,
    tier: str = "parity",
    stages: Sequence[str] | None = None,
) -> ConformResult:
    """Compare a port's dumps in ``candidate`` with the vectors in ``reference``.

    Parameters
    ----------
    reference : str
        A directory written by ``synctalk-audio vectors``.
    candidate : str
        A directory of the port's ``.npy`` dumps, named as the reference's
        files or ``<stage>.npy``; any subset of the stages.
    tier : {"parity", "float32"}
        The tolerances: the reference's ``abs`` (a float64 port), or the
        ``float32`` budget of a float32 front end where the index gives one.
    stages : sequence of str, optional
        Only these stages (by name); all by default.

    Returns
    -------
    ConformResult
        The verdicts; ``result.passed``, ``result.first_failure``,
        ``result.table()``.

    Raises
    ------
    FileNotFoundError
        If a directory does not exist.
    ConformError
        If the reference is not a vectors directory or lacks a stage file, or
        the candidate holds none of the reference's stages.
    ParameterError
        If ``tier`` or a name in ``stages`` is unknown.
    """
    if tier not in TIERS:
        raise ParameterError(f"tier must be one of {', '.join(TIERS)}, got {tier!r}")
    index = load_index(reference)
    if not os.path.isdir(candidate):
        if os.path.exists(candidate):
            raise ConformError(f"candidate {candidate} is a file; give the directory of dumps")
        raise FileNotFoundError(f"candidate directory not found: {candidate}")
    entries = index["stages"]
    names = [e["name"] for e in entries]
    if stages is not None:
        unknown = [s for s in stages if s not in names]
        if unknown:
            raise ParameterError(
                f"unknown stage(s) {', '.join(unknown)}; the reference has {', '.join(names)}"
            )
        entries = [e for e in entries if e["name"] in stages]
    result = ConformResult(reference, candidate, tier, str(index.get("mode", "?")))
    for entry in entries:
        shape = tuple(int(n) for n in entry["shape"])
        ref_path = os.path.join(reference, entry["file"])
        if not os.path.isfile(ref_path):
            raise ConformError(f"the reference lacks {ref_path}, listed in its {INDEX_FILE}")
        found = _candidate_file(candidate, entry)
        if found is None:
            result.stages.append(StageVerdict(entry["name"], "", shape, "absent"))
            continue
        verdict = StageVerdict(
            entry["name"], os.path.basename(found), shape, "FAIL", tolerance=_tolerance(entry, tier)
        )
        result.stages.append(verdict)
        want = np.load(ref_path, allow_pickle=False)
        try:
            got = np.load(found, allow_pickle=False)
        except (OSError, ValueError) as exc:
            verdict.detail = f"cannot read it as a .npy file: {exc}"
            continue
        if not isinstance(got, np.ndarray) or got.dtype.kind not in "biuf":
            verdict.detail = (
                f"holds {getattr(got, 'dtype', type(got).__name__)}; expected real numbers"
                f" ({entry.get('dtype', want.dtype.name)})"
            )
            continue
        if got.shape != want.shape:
            verdict.detail = (
                f"shape {list(got.shape)}, the reference's is {list(want.shape)}"
                f" ({entry.get('formula', '')})".replace(" ()", "")
            )
            continue
        verdict.max_abs, verdict.where = _compare(want, got)
        if verdict.max_abs <= verdict.tolerance:
            verdict.status = "pass"
    used = {s.file for s in result.stages}
    known = {e["file"] for e in index["stages"]} | {f"{e['name']}.npy" for e in index["stages"]}
    result.unmatched = sorted(
        name
        for name in os.listdir(candidate)
        if name.endswith(".npy") and name not in used and name not in known
    )
    if not result.compared:
        expected = ", ".join(e["file"] for e in entries[:3])
        raise ConformError(
            f"{candidate} holds none of the reference's stages: expected files named as the"
            f" reference's ({expected}, ...) or <stage>.npy"
        )
    return result
