"""Reading PCM from a byte stream (stdin): a WAV header of unknown size, or raw.

Live sources write WAV headers before they know the length (data size
0xFFFFFFFF or 0), so the header is parsed here and the data read to the end
of the stream. Samples are converted to float32 exactly as libsndfile (and so
``librosa.load``) converts them: u8 (x - 128) / 128, s16 x / 2^15,
s24 x / 2^23, s32 float32(x) / 2^31, float as stored.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import BinaryIO

import numpy as np

from ..errors import AudioLoadError
from .audio import _container

__all__ = ["PcmFormat", "read_wav_header", "PcmDecoder"]

_EXTENSIBLE = 0xFFFE
_PCM = 1
_FLOAT = 3


@dataclasses.dataclass(frozen=True)
class PcmFormat:
    """Layout of interleaved PCM samples.

    Attributes
    ----------
    sample_rate : int
    channels : int
    encoding : str
        One of ``u8``, ``s16le``, ``s24le``, ``s32le``, ``f32le``, ``f64le``.
    """

    sample_rate: int
    channels: int
    encoding: str

    @property
    def bytes_per_sample(self) -> int:
        return {"u8": 1, "s16le": 2, "s24le": 3, "s32le": 4, "f32le": 4, "f64le": 8}[self.encoding]

    @property
    def frame_bytes(self) -> int:
        return self.bytes_per_sample * self.channels


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    data = b""
    while len(data) < size:
        block = stream.read(size - len(data))
        if not block:
            break
        data += block
    return data


def _not_wav_message(head: bytes) -> str:
    """What to say when standard input does not start with a RIFF/WAVE header."""
    if not head:
        return "standard input is empty: no audio arrived (pipe a WAV stream or raw PCM into it)"
    kind = _container(head)
    if kind is not None:
        return (
            f"standard input looks like {kind}, not a WAV stream: decode it first, e.g."
            " `ffmpeg -i input -f wav - | synctalk-audio stream ...`"
        )
    return (
        "standard input is not a WAV stream (no RIFF/WAVE header); for headerless PCM"
        " pass --raw s16le|f32le with --rate and --channels"
    )


def read_wav_header(stream: BinaryIO) -> tuple[PcmFormat, int | None]:
    """Parse a RIFF/WAVE header up to the start of the data chunk.

    Returns
    -------
    format : PcmFormat
    data_bytes : int or None
        The data chunk's size, or None when the writer did not know it
        (0xFFFFFFFF or 0): read to the end of the stream.

    Raises
    ------
    AudioLoadError
        If the stream is not a WAV stream or uses an unsupported encoding.
    """
    head = _read_exact(stream, 12)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        raise AudioLoadError(_not_wav_message(head))
    fmt: PcmFormat | None = None
    while True:
        chunk = _read_exact(stream, 8)
        if len(chunk) < 8:
            raise AudioLoadError("WAV stream ended before its data chunk (truncated header)")
        cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if cid == b"fmt ":
            body = _read_exact(stream, size + (size & 1))
            if len(body) < 16:
                raise AudioLoadError("WAV stream has a truncated fmt chunk")
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == _EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack("<H", body[24:26])[0]
            encoding = {
                (_PCM, 8): "u8",
                (_PCM, 16): "s16le",
                (_PCM, 24): "s24le",
                (_PCM, 32): "s32le",
                (_FLOAT, 32): "f32le",
                (_FLOAT, 64): "f64le",
            }.get((tag, bits))
            if encoding is None or channels < 1 or rate < 1:
                raise AudioLoadError(
                    f"unsupported WAV encoding in stream: format tag {tag}, {bits} bits,"
                    f" {channels} channels; use PCM 8/16/24/32-bit or float 32/64-bit"
                )
            fmt = PcmFormat(rate, channels, encoding)
        elif cid == b"data":
            if fmt is None:
                raise AudioLoadError("WAV stream has its data chunk before the fmt chunk")
            return fmt, (None if size in (0, 0xFFFFFFFF) else size)
        else:
            skipped = _read_exact(stream, size + (size & 1))
            if len(skipped) < size:
                raise AudioLoadError("WAV stream ended inside a header chunk")


class PcmDecoder:
    """Turns arbitrary byte chunks into float32 (frames, channels) arrays.

    Keeps the bytes of an incomplete frame for the next chunk.
    """

    def __init__(self, fmt: PcmFormat) -> None:
        self.format = fmt
        self._rest = b""

    def decode(self, data: bytes) -> np.ndarray:
        """Decode whole frames of ``self._rest + data``; keep the remainder."""
        data = self._rest + data
        usable = len(data) - len(data) % self.format.frame_bytes
        self._rest = data[usable:]
        return self._convert(data[:usable])

    @property
    def leftover(self) -> int:
        """Bytes of an incomplete frame still held."""
        return len(self._rest)

    def _convert(self, raw: bytes) -> np.ndarray:
        enc, ch = self.format.encoding, self.format.channels
        if enc == "u8":
            x = (np.frombuffer(raw, np.uint8).astype(np.float32) - np.float32(128)) / np.float32(
                128
            )
        elif enc == "s16le":
            x = np.frombuffer(raw, "<i2").astype(np.float32) / np.float32(32768)
        elif enc == "s24le":
            b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
            v = (b[:, 0] << 8) | (b[:, 1] << 16) | (b[:, 2] << 24)  # sign in bit 31
            x = (v >> 8).astype(np.float32) / np.float32(2**23)
        elif enc == "s32le":
            x = np.frombuffer(raw, "<i4").astype(np.float32) / np.float32(2**31)
        elif enc == "f32le":
            x = np.frombuffer(raw, "<f4").astype(np.float32)
        else:
            x = np.frombuffer(raw, "<f8").astype(np.float32)
        frames: np.ndarray = x.reshape(-1, ch)
        return frames
