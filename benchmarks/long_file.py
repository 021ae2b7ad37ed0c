"""Wall time and peak memory of ``synctalk-audio process`` on hours of audio.

Generates speech-like audio itself: tests/data/speech_16k_s16_mono.wav tiled
with a slowly varying gain and a little noise, written block by block as a
16 kHz PCM_16 WAV (1 h = 110 MiB, never held in memory). Then, for each
``--hours``, runs in a fresh process

- new: ``python -m synctalk_audio process`` (block by block), and
- old (with ``--old``): the whole-file path the command used before,
  ``Pipeline.process`` then ``write_features``,

and reports wall time, CPU time and peak RSS (``os.wait4``: the child's
maximum resident set size). With both, it checks that aud_ave.npy and every 50th
frame file are byte-for-byte equal. Outputs go to a temporary directory
(``--workdir``) that is deleted at the end: 1 h of frames is 90,002 files,
2.9 GB.

    python benchmarks/long_file.py --model models/audio_encoder.onnx --hours 0.25 1 --old
    python benchmarks/long_file.py --model models/audio_encoder.onnx --hours 10 --no-frames
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile as sf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEECH = os.path.join(ROOT, "tests", "data", "speech_16k_s16_mono.wav")

#: The command's former path: the whole file in memory, then the files.
OLD_PATH = """
import sys
from synctalk_audio.outputs.directory import atomic_output_dir
from synctalk_audio.outputs.files import write_features, write_metadata
from synctalk_audio.pipeline import Pipeline
audio, model, out, frames = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
with Pipeline(model) as pipe:
    features = pipe.process(audio)
    with atomic_output_dir(out) as staging:
        write_features(staging, features, frames=frames)
        write_metadata(staging, features.metadata)
"""


def write_speech(path: str, hours: float, seed: int = 0) -> int:
    """Write ``hours`` of tiled, varied speech as a 16 kHz PCM_16 WAV; return its samples."""
    speech, rate = sf.read(SPEECH, dtype="float32")
    assert rate == 16000
    rng = np.random.default_rng(seed)
    total = int(round(hours * 3600 * rate))
    written = 0
    with sf.SoundFile(path, "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
        while written < total:
            count = min(speech.shape[0], total - written)
            gain = np.float32(rng.uniform(0.3, 1.0))
            noise = rng.normal(0.0, 0.003, count).astype(np.float32)
            f.write(np.clip(gain * speech[:count] + noise, -1.0, 1.0))
            written += count
    return total


def measure(cmd: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        error = child.stderr.read().decode() if child.stderr else ""
        raise RuntimeError(f"{' '.join(cmd)} failed: {error}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # Linux: KiB


def same_output(a: str, b: str, every: int = 50) -> str:
    """Compare aud_ave.npy and every ``every``-th frame file, byte for byte."""

    def read(path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    if read(os.path.join(a, "aud_ave.npy")) != read(os.path.join(b, "aud_ave.npy")):
        return "aud_ave.npy DIFFERS"
    frames_a = os.path.join(a, "frames")
    if not os.path.isdir(frames_a):
        return "aud_ave.npy identical"
    names = sorted(os.listdir(frames_a))
    if names != sorted(os.listdir(os.path.join(b, "frames"))):
        return "frame file lists DIFFER"
    for name in names[::every] + names[-1:]:
        if read(os.path.join(frames_a, name)) != read(os.path.join(b, "frames", name)):
            return f"{name} DIFFERS"
    return f"aud_ave.npy and {len(names[::every]) + 1} of {len(names)} frame files identical"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "audio_encoder.onnx"))
    parser.add_argument("--hours", type=float, nargs="+", default=[0.25, 1.0])
    parser.add_argument("--no-frames", action="store_true", help="pass --no-frames")
    parser.add_argument("--old", action="store_true", help="also run the whole-file path")
    parser.add_argument("--workdir", default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="synctalk-long-", dir=args.workdir)
    frames_flag = [] if not args.no_frames else ["--no-frames"]
    rows = []
    try:
        for hours in args.hours:
            audio = os.path.join(work, f"speech_{hours:g}h.wav")
            t = time.perf_counter()
            samples = write_speech(audio, hours)
            print(
                f"{hours:g} h: wrote {samples} samples ({os.path.getsize(audio) / 2**20:.0f} MiB)"
                f" in {time.perf_counter() - t:.1f} s",
                file=sys.stderr,
            )
            new_out = os.path.join(work, "new")
            cmd = [sys.executable, "-m", "synctalk_audio", "process", "--audio", audio]
            wall, cpu, peak = measure(
                [*cmd, "--model", args.model, "--output", new_out, "-q", *frames_flag]
            )
            rows.append((hours, "new: block by block", wall, cpu, peak, ""))
            print(f"  new: {wall:.1f} s, CPU {cpu:.1f} s, {peak:.0f} MiB", file=sys.stderr)
            if args.old:
                old_out = os.path.join(work, "old")
                frames = "0" if args.no_frames else "1"
                old_cmd = [sys.executable, "-c", OLD_PATH, audio, args.model, old_out, frames]
                wall, cpu, peak = measure(old_cmd)
                check = same_output(old_out, new_out)
                rows.append((hours, "old: whole file in memory", wall, cpu, peak, check))
                print(
                    f"  old: {wall:.1f} s, CPU {cpu:.1f} s, {peak:.0f} MiB; {check}",
                    file=sys.stderr,
                )
                shutil.rmtree(old_out)
            shutil.rmtree(new_out)
            os.unlink(audio)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    frames_note = "without frame files" if args.no_frames else "with frame files"
    print(f"\n| audio ({frames_note}) | path | wall | CPU | peak RSS | output |")
    print("| --- | --- | --- | --- | --- | --- |")
    for hours, path, wall, cpu, peak, check in rows:
        print(f"| {hours:g} h | {path} | {wall:.1f} s | {cpu:.1f} s | {peak:.0f} MiB | {check} |")


if __name__ == "__main__":
    main()
