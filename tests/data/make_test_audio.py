#!/usr/bin/env python3
"""Create the small audio files the golden tests read (tests/data/*.wav ...).

How to run (from the repository root; needs espeak-ng and sox on PATH, and
numpy + soundfile in the Python environment):

    python tests/data/make_test_audio.py            # (re)write every file
    python tests/data/make_test_audio.py --check    # only verify the committed files

then regenerate the golden data from them with the real reference:

    python tests/golden/make_golden.py

Every file is short (<= 2 s) and the whole directory stays well under 2.5 MB.
Generation is deterministic: fixed espeak-ng voice, speed, pitch, amplitude and
text; sox in repeatable mode (-R) without dither (-D); fixed NumPy seeds; the
hand-written RIFF files are assembled with `struct`. The float WAVs are written by hand
too (libsndfile would add a PEAK chunk holding a timestamp); the OGG file is
written by sox (fixed stream serial in -R mode), the MP3 by soundfile
(libsndfile + LAME). The lossy files depend on the libvorbis / LAME versions, so
regenerating them elsewhere may change their bytes (the golden data must then
be regenerated too). tests/data/MANIFEST.txt records each file's size,
format, rate, channels, frames and SHA-256; `--check` regenerates everything
into a temporary directory and exits non-zero if any line differs from it.

Cases (file name: what it exercises):

- speech_16k_s16_mono.wav: plain espeak-ng speech, 16 kHz PCM_16 mono, with
  the synthesiser's own leading/trailing silence.
- speech_16k_s16_loud_edges.wav: speech cut so that the first and the last
  samples are loud (no silence at either end) and the length is not a
  multiple of the hop (200): the constant and reflect pad modes differ there.
- speech_44k1_stereo_s24.wav: 44.1 kHz, 2 channels that differ, PCM_24.
- speech_48k_float32.wav: 48 kHz IEEE float32, peak 1.1 (float samples
  beyond +-1 are kept as stored, never clipped).
- speech_8k_u8.wav: 8 kHz unsigned 8-bit PCM.
- speech_22k05_stereo_extensible_chunks.wav: hand-written RIFF,
  WAVE_FORMAT_EXTENSIBLE (PCM sub-format, 16-bit, 2 channels, 22.05 kHz),
  with a LIST/INFO chunk, an odd-sized JUNK chunk (pad byte) and a private 'stka'
  chunk before the data chunk.
- speech_16k_0p25s.wav: 0.25 s (4000 samples) at 16 kHz: 21 mel frames,
  3 encoder windows at 25 fps.
- speech_16k_stream_size_ffffffff.wav: hand-written 16 kHz PCM_16 RIFF whose
  RIFF size and data chunk size fields are 0xFFFFFFFF, as streaming writers
  (ffmpeg/sox to a pipe) emit.
- speech_16k.flac, speech_22k05_vorbis.ogg, speech_24k.mp3: the same sentence
  as FLAC (16 kHz, soundfile), OGG Vorbis (22.05 kHz, sox quality 3) and MP3
  (24 kHz, MPEG-2 layer III, soundfile).
- chirp_noise_16k_float32.wav: 2 s logarithmic chirp 60 Hz -> 7.8 kHz plus
  white noise (seed 20240611), 16 kHz IEEE float32.
- silence_then_tone_16k.wav: 1 s of digital silence (mel at the -100 dB
  floor) then 1 s of a 440 Hz + 1760 Hz tone, 16 kHz PCM_16.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import soundfile as sf

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFEST = os.path.join(HERE, "MANIFEST.txt")

ESPEAK_VOICE = "en-us"
ESPEAK_SPEED = "165"  # words per minute
ESPEAK_PITCH = "50"
ESPEAK_AMPLITUDE = "120"
SENTENCE_A = "The quick brown fox jumps over the lazy dog."
SENTENCE_B = "Speech in, features out, sample for sample."
NOISE_SEED = 20240611

# Every file this script writes, in the order it writes them.
FILES = (
    "speech_16k_s16_mono.wav",
    "speech_16k_s16_loud_edges.wav",
    "speech_44k1_stereo_s24.wav",
    "speech_48k_float32.wav",
    "speech_8k_u8.wav",
    "speech_22k05_stereo_extensible_chunks.wav",
    "speech_16k_0p25s.wav",
    "speech_16k_stream_size_ffffffff.wav",
    "speech_16k.flac",
    "speech_22k05_vorbis.ogg",
    "speech_24k.mp3",
    "chirp_noise_16k_float32.wav",
    "silence_then_tone_16k.wav",
)


# ----------------------------------------------------------------------------
# tools


def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _espeak(text: str, path: str) -> None:
    """espeak-ng speech: 22050 Hz, PCM_16, mono."""
    _run(
        [
            "espeak-ng",
            "-v",
            ESPEAK_VOICE,
            "-s",
            ESPEAK_SPEED,
            "-p",
            ESPEAK_PITCH,
            "-a",
            ESPEAK_AMPLITUDE,
            "-w",
            path,
            text,
        ]
    )


def _sox_rate(src: str, dst: str, rate: int, *, float_out: bool = False) -> None:
    """Resample with sox (repeatable mode, no dither), mono, PCM_16 or float32."""
    if float_out:
        encoding = ["-e", "floating-point", "-b", "32"]
    else:
        encoding = ["-e", "signed-integer", "-b", "16"]
    _run(["sox", "-R", "-D", src, "-c", "1", *encoding, dst, "rate", "-h", str(rate)])


def _read_int16(path: str) -> tuple[np.ndarray, int]:
    data, rate = sf.read(path, dtype="int16", always_2d=False)
    return np.asarray(data), int(rate)


def _read_float(path: str) -> tuple[np.ndarray, int]:
    data, rate = sf.read(path, dtype="float32", always_2d=False)
    return np.asarray(data), int(rate)


def _loud_span(x: np.ndarray, start_level: float, length: int) -> tuple[int, int]:
    """[begin, end) of ``length`` samples starting at the first sample whose
    magnitude reaches ``start_level`` x peak, end moved back to a loud sample."""
    mag = np.abs(x.astype(np.float64))
    peak = mag.max()
    begin = int(np.argmax(mag >= start_level * peak))
    end = min(begin + length, x.shape[0])
    # finish on a loud sample too: walk back to the last sample >= start_level * peak
    loud = np.nonzero(mag[begin:end] >= start_level * peak)[0]
    end = begin + int(loud[-1]) + 1
    return begin, end


# ----------------------------------------------------------------------------
# hand-written RIFF


def _chunk(tag: bytes, payload: bytes) -> bytes:
    """One RIFF chunk, with the pad byte an odd payload needs."""
    assert len(tag) == 4
    pad = b"\x00" if len(payload) % 2 else b""
    return tag + struct.pack("<I", len(payload)) + payload + pad


KSDATAFORMAT_SUBTYPE_PCM = bytes.fromhex("0100000000001000800000aa00389b71")


def _fmt_extensible(rate: int, channels: int, bits: int, channel_mask: int) -> bytes:
    block_align = channels * bits // 8
    return struct.pack(
        "<HHIIHHHHI16s",
        0xFFFE,  # WAVE_FORMAT_EXTENSIBLE
        channels,
        rate,
        rate * block_align,
        block_align,
        bits,
        22,  # cbSize
        bits,  # wValidBitsPerSample
        channel_mask,
        KSDATAFORMAT_SUBTYPE_PCM,
    )


def _fmt_pcm(rate: int, channels: int, bits: int) -> bytes:
    block_align = channels * bits // 8
    return struct.pack("<HHIIHH", 0x0001, channels, rate, rate * block_align, block_align, bits)


def _list_info(items: list[tuple[bytes, str]]) -> bytes:
    body = b"INFO"
    for tag, text in items:
        body += _chunk(tag, text.encode("ascii") + b"\x00")
    return body


def write_extensible_with_chunks(path: str, pcm: np.ndarray, rate: int) -> None:
    """Stereo int16 -> WAVE_FORMAT_EXTENSIBLE RIFF with chunks before 'data'."""
    assert pcm.dtype == np.int16 and pcm.ndim == 2 and pcm.shape[1] == 2
    body = b"WAVE"
    body += _chunk(b"fmt ", _fmt_extensible(rate, 2, 16, 0x3))
    body += _chunk(
        b"LIST",
        _list_info(
            [
                (b"INAM", "synctalk_audio test: extensible with chunks"),  # odd -> pad byte
                (b"ISFT", "make_test_audio.py"),
                (b"ICMT", "LIST/INFO, JUNK and a private chunk precede the data chunk"),
            ]
        ),
    )
    body += _chunk(b"JUNK", b"\x00" * 27)  # odd size: followed by a pad byte
    body += _chunk(b"stka", b"private chunk readers must skip\x00")
    body += _chunk(b"data", pcm.astype("<i2").tobytes())
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(body)) + body)


def write_float32_wav(path: str, samples: np.ndarray, rate: int) -> None:
    """Mono IEEE float32 RIFF (format tag 3 + 'fact'), written by hand.

    libsndfile would add a PEAK chunk holding the current time, which makes
    the bytes differ from run to run.
    """
    data = np.ascontiguousarray(samples, dtype="<f4")
    assert data.ndim == 1
    fmt = struct.pack("<HHIIHHH", 0x0003, 1, rate, rate * 4, 4, 32, 0)  # cbSize 0
    body = b"WAVE" + _chunk(b"fmt ", fmt)
    body += _chunk(b"fact", struct.pack("<I", data.shape[0]))
    body += _chunk(b"data", data.tobytes())
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(body)) + body)


def write_streaming_ffffffff(path: str, pcm: np.ndarray, rate: int) -> None:
    """Mono int16 RIFF whose RIFF and data sizes are 0xFFFFFFFF (unknown length)."""
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    header = b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE"
    header += _chunk(b"fmt ", _fmt_pcm(rate, 1, 16))
    header += b"data" + struct.pack("<I", 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(header + pcm.astype("<i2").tobytes())


# ----------------------------------------------------------------------------
# the cases


def make_all(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="make_test_audio-")
    try:
        _make_all(out_dir, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _make_all(out: str, tmp: str) -> None:
    def o(name: str) -> str:
        assert name in FILES, name
        return os.path.join(out, name)

    raw_a = os.path.join(tmp, "a_22050.wav")
    raw_b = os.path.join(tmp, "b_22050.wav")
    _espeak(SENTENCE_A, raw_a)
    _espeak(SENTENCE_B, raw_b)
    a22, r = _read_int16(raw_a)
    assert r == 22050, r

    # 16 kHz PCM_16 versions of both sentences, and float versions at other rates
    a16_path = os.path.join(tmp, "a_16000.wav")
    b16_path = os.path.join(tmp, "b_16000.wav")
    _sox_rate(raw_a, a16_path, 16000)
    _sox_rate(raw_b, b16_path, 16000)
    a16, _ = _read_int16(a16_path)
    b16, _ = _read_int16(b16_path)

    # plain 16 kHz speech, 2.0 s with the synthesiser's leading silence
    sf.write(o("speech_16k_s16_mono.wav"), a16[:32000], 16000, subtype="PCM_16")

    # loud at both ends, 23 457 samples (not a multiple of 200)
    begin, end = _loud_span(b16, 0.3, 23457)
    sf.write(o("speech_16k_s16_loud_edges.wav"), b16[begin:end], 16000, subtype="PCM_16")

    # 44.1 kHz stereo 24-bit: left = speech, right = quieter delayed speech + noise
    a44_path = os.path.join(tmp, "a_44100.wav")
    _sox_rate(raw_a, a44_path, 44100, float_out=True)
    a44, _ = _read_float(a44_path)
    a44 = a44[int(0.25 * 44100) : int(0.25 * 44100) + int(1.2 * 44100)].astype(np.float64)
    rng = np.random.default_rng(NOISE_SEED)
    delayed = np.concatenate([np.zeros(37), a44[:-37]])
    right = 0.6 * delayed + 0.01 * rng.standard_normal(a44.shape[0])
    stereo = np.stack([a44, right], axis=1)
    stereo *= 0.9 / np.abs(stereo).max()
    sf.write(o("speech_44k1_stereo_s24.wav"), stereo, 44100, subtype="PCM_24")

    # 48 kHz float32, peak 1.1 (beyond full scale on purpose)
    b48_path = os.path.join(tmp, "b_48000.wav")
    _sox_rate(raw_b, b48_path, 48000, float_out=True)
    b48, _ = _read_float(b48_path)
    b48 = b48[int(0.2 * 48000) : int(0.2 * 48000) + int(1.2 * 48000)].astype(np.float64)
    b48 = (b48 * (1.1 / np.abs(b48).max())).astype(np.float32)
    write_float32_wav(o("speech_48k_float32.wav"), b48, 48000)

    # 8 kHz unsigned 8-bit
    a8_path = os.path.join(tmp, "a_8000.wav")
    _sox_rate(raw_a, a8_path, 8000, float_out=True)
    a8, _ = _read_float(a8_path)
    a8 = a8[: 2 * 8000].astype(np.float64)
    a8 *= 0.95 / np.abs(a8).max()
    sf.write(o("speech_8k_u8.wav"), a8, 8000, subtype="PCM_U8")

    # 22.05 kHz stereo WAVE_FORMAT_EXTENSIBLE with chunks before the data
    seg = a22[int(0.2 * 22050) : int(0.2 * 22050) + int(1.5 * 22050)].astype(np.int32)
    t = np.arange(seg.shape[0]) / 22050.0
    tone = np.round(3000.0 * np.sin(2 * np.pi * 330.0 * t)).astype(np.int32)
    delayed = np.concatenate([np.zeros(50, dtype=np.int32), seg[:-50]])
    right16 = np.clip(-(delayed // 2) + tone, -32768, 32767)
    pcm = np.stack([seg, right16], axis=1).astype(np.int16)
    write_extensible_with_chunks(o("speech_22k05_stereo_extensible_chunks.wav"), pcm, 22050)

    # 0.25 s at 16 kHz (4000 samples), starting on the first loud sample
    first, _ = _loud_span(a16, 0.3, 4000)
    sf.write(o("speech_16k_0p25s.wav"), a16[first : first + 4000], 16000, subtype="PCM_16")

    # streaming writer: RIFF and data sizes 0xFFFFFFFF, 1.5 s
    write_streaming_ffffffff(o("speech_16k_stream_size_ffffffff.wav"), b16[:24000].copy(), 16000)

    # compressed versions of sentence B
    sf.write(o("speech_16k.flac"), b16[:32000], 16000, format="FLAC", subtype="PCM_16")
    # OGG Vorbis through sox: with -R its Ogg stream serial number is fixed
    # (libsndfile picks a random one, so its files differ from run to run)
    ogg_frames = f"{int(1.8 * 22050)}s"
    ogg = o("speech_22k05_vorbis.ogg")
    _run(["sox", "-R", "-D", raw_b, "-C", "3", ogg, "trim", "0s", ogg_frames])
    b24_path = os.path.join(tmp, "b_24000.wav")
    _sox_rate(raw_b, b24_path, 24000)
    b24, _ = _read_int16(b24_path)
    sf.write(
        o("speech_24k.mp3"), b24[: int(1.8 * 24000)], 24000, format="MP3", subtype="MPEG_LAYER_III"
    )

    # chirp + white noise, 16 kHz float32
    n = 2 * 16000
    t = np.arange(n) / 16000.0
    f0, f1, dur = 60.0, 7800.0, n / 16000.0
    k = np.log(f1 / f0)
    phase = 2 * np.pi * f0 * dur / k * (np.exp(k * t / dur) - 1.0)
    noise = np.random.default_rng(NOISE_SEED + 1).standard_normal(n)
    chirp = (0.5 * np.sin(phase) + 0.02 * noise).astype(np.float32)
    write_float32_wav(o("chirp_noise_16k_float32.wav"), chirp, 16000)

    # 1 s of digital silence, then 1 s of tone
    t = np.arange(16000) / 16000.0
    tone = 0.4 * np.sin(2 * np.pi * 440.0 * t) + 0.1 * np.sin(2 * np.pi * 1760.0 * t)
    sig = np.concatenate([np.zeros(16000), tone])
    sf.write(o("silence_then_tone_16k.wav"), sig, 16000, subtype="PCM_16")


# ----------------------------------------------------------------------------
# manifest


def _describe(path: str) -> str:
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    info = sf.info(path)
    return (
        f"{os.path.basename(path)}\t{os.path.getsize(path)}\t{info.format}/{info.subtype}"
        f"\t{info.samplerate}\t{info.channels}\t{info.frames}\t{digest}"
    )


def manifest_lines(out_dir: str) -> list[str]:
    header = "# name\tbytes\tformat/subtype\trate\tchannels\tframes\tsha256"
    return [header] + [_describe(os.path.join(out_dir, name)) for name in FILES]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=HERE, help="output directory (default: %(default)s)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="regenerate into a temporary directory and compare with MANIFEST.txt",
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
    lines = manifest_lines(args.out)
    if os.path.abspath(args.out) == HERE:
        with open(MANIFEST, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    total = sum(os.path.getsize(os.path.join(args.out, n)) for n in FILES)
    for line in lines:
        print(line)
    print(f"{len(FILES)} files, {total / 1e6:.3f} MB in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
