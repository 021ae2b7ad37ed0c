"""Comparing two output directories (``synctalk-audio validate``)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import ParameterError

__all__ = ["compare_outputs"]


def _note_nonfinite(invalid: list[str], path: str, values: np.ndarray) -> None:
    """Add a line to ``invalid`` if ``values`` hold NaN or infinity."""
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        invalid.append(f"{path} holds {bad} NaN/inf values of {values.size}")


def _feature_file(directory: str) -> str:
    """The feature array of an output directory: its one ``aud_*.npy`` (a mode's feature file)."""
    from ..modes import REGISTRY

    names = sorted({m.feature_file for m in REGISTRY.values()})
    found = [n for n in names if os.path.isfile(os.path.join(directory, n))]
    if len(found) != 1:
        what = "no" if not found else "more than one"
        raise ParameterError(
            f"{directory} is not an output directory: {what} feature file ({', '.join(names)})"
        )
    return os.path.join(directory, found[0])


def compare_outputs(reference: str, candidate: str) -> dict[str, Any]:
    """Compare two output directories; see ``synctalk-audio validate``.

    ``report["feature_files"]`` names each side's feature file (the mode's:
    ``aud_ave.npy``, ``aud_hu.npy``, ...); the keys about it keep the
    ``aud_ave_`` prefix of the first mode whatever the mode (``aud_ave_max_abs``,
    ...), so that reports stay comparable. ``report["invalid"]`` lists every
    file of either directory that holds NaN or infinity: such output is never
    valid, whatever the other side holds.
    """
    from ..outputs.files import read_frame_file

    report: dict[str, Any] = {"reference": reference, "candidate": candidate}
    invalid: list[str] = []
    report["invalid"] = invalid
    ref_path, cand_path = _feature_file(reference), _feature_file(candidate)
    names = [os.path.basename(ref_path), os.path.basename(cand_path)]
    report["feature_files"] = names
    if names[0] != names[1]:
        report["match"] = False
        report["problem"] = f"feature files differ: {names[0]} vs {names[1]} (different modes)"
        return report
    ref = np.load(ref_path)
    cand = np.load(cand_path)
    _note_nonfinite(invalid, ref_path, ref)
    _note_nonfinite(invalid, cand_path, cand)
    report["aud_ave_shape"] = [list(ref.shape), list(cand.shape)]
    if ref.shape != cand.shape:
        report["match"] = False
        report["problem"] = f"{names[0]} shapes differ: {ref.shape} vs {cand.shape}"
        return report
    diff = np.abs(ref.astype(np.float64) - cand.astype(np.float64))
    report["aud_ave_max_abs"] = float(diff.max())
    # Relative to the reference's largest value: the fair yardstick for a real
    # encoder whose features are much larger than the test encoder's.
    report["reference_max_abs_value"] = float(np.abs(ref).max())
    report["aud_ave_mean_abs"] = float(diff.mean())
    ref_frames = (
        sorted(os.listdir(os.path.join(reference, "frames")))
        if os.path.isdir(os.path.join(reference, "frames"))
        else []
    )
    cand_frames = (
        sorted(os.listdir(os.path.join(candidate, "frames")))
        if os.path.isdir(os.path.join(candidate, "frames"))
        else []
    )
    report["frame_counts"] = [len(ref_frames), len(cand_frames)]
    worst, total, count, cos_min = 0.0, 0.0, 0, 1.0
    if ref_frames != cand_frames:
        report["problem"] = "frame file lists differ"
    else:
        for name in ref_frames:
            a = read_frame_file(os.path.join(reference, "frames", name)).astype(np.float64)
            b = read_frame_file(os.path.join(candidate, "frames", name)).astype(np.float64)
            _note_nonfinite(invalid, os.path.join(reference, "frames", name), a)
            _note_nonfinite(invalid, os.path.join(candidate, "frames", name), b)
            if a.shape != b.shape:
                report["problem"] = f"{name}: {a.size} vs {b.size} values"
                break
            d = np.abs(a - b)
            worst = max(worst, float(d.max()))
            total += float(d.sum())
            count += d.size
            na, nb = np.linalg.norm(a), np.linalg.norm(b)
            if na > 0 and nb > 0:
                cos_min = min(cos_min, float(a @ b / (na * nb)))
    report["frames_max_abs"] = worst
    report["frames_mean_abs"] = total / count if count else 0.0
    ref64, cand64 = ref.astype(np.float64), cand.astype(np.float64)
    row_cos = np.sum(ref64 * cand64, axis=1) / np.maximum(
        np.linalg.norm(ref64, axis=1) * np.linalg.norm(cand64, axis=1), 1e-300
    )
    report["aud_ave_min_cosine"] = float(row_cos.min())
    report["frames_min_cosine"] = cos_min
    return report
