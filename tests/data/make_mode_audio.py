#!/usr/bin/env python3
"""Create the extra audio the ``hubert`` / ``wenet`` mode references read (tests/data/modes/).

How to run (from the repository root; needs espeak-ng and sox on PATH, and
numpy + soundfile in the Python environment):

    python tests/data/make_mode_audio.py            # (re)write the files
    python tests/data/make_mode_audio.py --check    # only verify the committed files

then regenerate the mode golden data with the upstream references:

    python tests/golden/make_golden_modes.py

The files live in their own folder so that tests/golden/make_golden.py (the
``ave`` golden data, one case per file in tests/data) does not pick them up.
The mode goldens also use the files of tests/data (other rates, stereo, 8-bit,
float beyond full scale); see tests/golden/make_golden_modes.py.

Cases (file name: what it exercises):

- speech_16k_long_21s.wav: 341 520 samples (21.345 s) of espeak-ng speech,
  16 kHz PCM_16 mono. HuBERT cuts its input into 20 s pieces: here one piece
  of 320 080 samples (1000 frames) and a remainder of 21 520 samples
  (67 frames); T = (341 520 - 80) // 320 = 1067 is odd, so the last
  ``aud_hu.npy`` row is half zero (current upstream) or dropped (mid-2025
  upstream). WeNet: F = 2200 fbank frames, K = 428 chunks.
- speech_16k_400samples.wav: 400 samples, the shortest input HuBERT accepts
  (its receptive field): T = 1 (odd), one ``aud_hu.npy`` row (half zero), or
  none at all with the mid-2025 upstream that drops the odd row. WeNet: with
  the zero padding F = 68 frames, K = 2.

Generation is deterministic (fixed espeak-ng voice, speed, pitch, amplitude
and text; sox in repeatable mode without dither), with the same tools and
settings as tests/data/make_test_audio.py, whose helpers this script uses.
tests/data/modes/MANIFEST.txt records each file's size, format, rate,
channels, frames and SHA-256; ``--check`` regenerates everything into a
temporary directory and exits non-zero if any line differs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

import soundfile as sf

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_test_audio import _describe, _espeak, _read_int16, _sox_rate  # noqa: E402

OUT = os.path.join(HERE, "modes")
MANIFEST = os.path.join(OUT, "MANIFEST.txt")

PARAGRAPH = (
    "A talking head has to move its lips in time with the voice. "
    "The audio is cut into short frames, and each frame becomes a feature vector. "
    "Twenty five video frames a second need one feature row every forty milliseconds; "
    "twenty frames a second need one every fifty. "
    "Long recordings are split into pieces of twenty seconds before the transformer sees them, "
    "so this clip is a little longer than that, to cross the boundary once."
)
SENTENCE_SHORT = "Speech in, features out, sample for sample."
LONG_SAMPLES = 341_520  # 21.345 s: one 20 s HuBERT piece and a remainder of 21 520 samples
SHORT_SAMPLES = 400  # HuBERT's receptive field: the shortest input it accepts

FILES = ("speech_16k_long_21s.wav", "speech_16k_400samples.wav")


def make_all(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="make_mode_audio-")
    try:
        _make_all(out_dir, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _make_all(out: str, tmp: str) -> None:
    raw_long = os.path.join(tmp, "long_22050.wav")
    raw_short = os.path.join(tmp, "short_22050.wav")
    _espeak(PARAGRAPH, raw_long)
    _espeak(SENTENCE_SHORT, raw_short)
    long16_path = os.path.join(tmp, "long_16000.wav")
    short16_path = os.path.join(tmp, "short_16000.wav")
    _sox_rate(raw_long, long16_path, 16000)
    _sox_rate(raw_short, short16_path, 16000)
    long16, _ = _read_int16(long16_path)
    short16, _ = _read_int16(short16_path)
    if long16.shape[0] < LONG_SAMPLES:
        raise SystemExit(
            f"espeak-ng gave {long16.shape[0]} samples, fewer than {LONG_SAMPLES}:"
            " lengthen PARAGRAPH"
        )
    sf.write(os.path.join(out, FILES[0]), long16[:LONG_SAMPLES], 16000, subtype="PCM_16")
    # 400 samples from the loudest part of the sentence (not silence)
    peak = int(abs(short16.astype("int32")).argmax())
    start = max(0, peak - SHORT_SAMPLES // 2)
    sf.write(
        os.path.join(out, FILES[1]),
        short16[start : start + SHORT_SAMPLES],
        16000,
        subtype="PCM_16",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=OUT, help="output directory (default: %(default)s)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="regenerate into a temporary directory and compare with modes/MANIFEST.txt",
    )
    args = parser.parse_args(argv)
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not on PATH (Debian: apt-get install {tool})")

    if args.check:
        with tempfile.TemporaryDirectory() as scratch:
            make_all(scratch)
            fresh = manifest_lines(scratch)
        with open(MANIFEST, encoding="utf-8") as f:
            committed = f.read().splitlines()
        if fresh == committed:
            print("all files regenerate byte for byte")
            return 0
        for line in sorted(set(fresh) ^ set(committed)):
            print(("fresh    " if line in fresh else "committed ") + line)
        return 1

    make_all(args.out)
    written = manifest_lines(args.out)
    if os.path.abspath(args.out) == OUT:
        with open(MANIFEST, "w", encoding="utf-8") as f:
            f.write("\n".join(written) + "\n")
    total = sum(os.path.getsize(os.path.join(args.out, n)) for n in FILES)
    for line in written:
        print(line)
    print(f"{len(FILES)} files, {total / 1e6:.3f} MB in {args.out}")
    return 0


def manifest_lines(folder: str) -> list[str]:
    """MANIFEST lines of this script's files (same columns as tests/data/MANIFEST.txt)."""
    header = "# name\tbytes\tformat/subtype\trate\tchannels\tframes\tsha256"
    return [header] + [_describe(os.path.join(folder, name)) for name in FILES]


if __name__ == "__main__":
    sys.exit(main())
