"""Bad input to `load_audio`: clear errors, never a crash or a silent empty array.

Each bad file is written into ``tmp_path`` by the test and read both by path
and as an ``io.BytesIO``. Expected: `AudioLoadError` (a ValueError) whose
message names the input (the path, or "<file object>") and says what is
wrong; `FileNotFoundError` for a path that does not exist.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile as sf

from synctalk_audio import AudioLoadError, load_audio, load_audio_with_info


def _riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _chunk(tag: bytes, payload: bytes) -> bytes:
    return tag + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) % 2 else b"")


def _fmt(
    tag: int, channels: int = 1, rate: int = 16000, bits: int = 16, extra: bytes = b""
) -> bytes:
    align = channels * bits // 8
    payload = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    if extra:
        payload += struct.pack("<H", len(extra)) + extra
    return _chunk(b"fmt ", payload)


def _good_wav() -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.zeros(1000, dtype=np.int16), 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


SILENT_DATA = _chunk(b"data", b"\x00" * 400)
UNKNOWN_GUID = bytes.fromhex("0123456789abcdef0123456789abcdef")

# name -> (file bytes, a fragment the message must contain)
BAD_FILES = {
    "empty": (b"", None),
    "text": (b"This is a text file, not audio.\n" * 20, "could not decode"),
    "riff_magic_only": (_good_wav()[:4], "could not decode"),
    "header_cut_in_fmt": (_good_wav()[:20], "could not decode"),
    "header_cut_before_data": (_good_wav()[:36], "could not decode"),
    "unknown_format_tag": (
        _riff(_fmt(0x1234), SILENT_DATA),
        "unsupported WAV codec (format tag 0x1234)",
    ),
    "extensible_unknown_subformat": (
        _riff(_fmt(0xFFFE, extra=struct.pack("<HI", 16, 0x4) + UNKNOWN_GUID), SILENT_DATA),
        "unimplemented format",
    ),
    "no_data_chunk": (_riff(_fmt(1)), "could not decode"),
    "zero_samples": (_riff(_fmt(1), _chunk(b"data", b"")), "no samples"),
    "zero_samples_44k1_stereo": (_riff(_fmt(1, 2, 44100), _chunk(b"data", b"")), "no samples"),
    "header_only_44_bytes": (_good_wav()[:44], "no samples"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_by_path(tmp_path, name):
    blob, fragment = BAD_FILES[name]
    path = tmp_path / f"{name}.wav"
    path.write_bytes(blob)
    with pytest.raises(AudioLoadError) as info:
        load_audio(str(path))
    message = str(info.value)
    assert str(path) in message, f"{name}: the message should name the file: {message!r}"
    if fragment is not None:
        assert fragment in message, f"{name}: expected {fragment!r} in {message!r}"
    with pytest.raises(AudioLoadError):
        load_audio(path)  # pathlib.Path too


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_as_bytesio(name):
    blob, fragment = BAD_FILES[name]
    with pytest.raises(AudioLoadError) as info:
        load_audio(io.BytesIO(blob))
    message = str(info.value)
    assert "<file object>" in message, message
    if fragment is not None and name != "empty":
        assert fragment in message, f"{name}: expected {fragment!r} in {message!r}"


def test_empty_file_message(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioLoadError, match="empty"):
        load_audio(path)


def test_error_is_a_value_error(tmp_path):
    path = tmp_path / "text.wav"
    path.write_text("not audio\n")
    with pytest.raises(ValueError):
        load_audio(path)
    with pytest.raises(AudioLoadError):
        load_audio_with_info(path)


def test_missing_path(tmp_path):
    missing = tmp_path / "does_not_exist.wav"
    for source in (str(missing), missing):
        with pytest.raises(FileNotFoundError) as info:
            load_audio(source)
        assert str(missing) in str(info.value)
        assert not isinstance(info.value, AudioLoadError)


def test_directory(tmp_path):
    with pytest.raises(AudioLoadError, match="directory"):
        load_audio(tmp_path)


def test_nan_float_wav(tmp_path):
    path = tmp_path / "nan.wav"
    wav = np.zeros(4000, dtype=np.float32)
    wav[100] = np.nan
    sf.write(path, wav, 16000, subtype="FLOAT")
    with pytest.raises(AudioLoadError, match="NaN"):
        load_audio(path)
