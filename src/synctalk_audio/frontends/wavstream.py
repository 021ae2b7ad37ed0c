"""Reading PCM from a byte stream (stdin): a WAV header of unknown size, or raw.

Live sources write WAV headers before they know the length (data size
0xFFFFFFFF or 0), so the header is parsed here and the data read to the end
of the stream; a size the header does give (RIFF's data size, RF64's
``ds64``) is where the audio ends, so chunks after it are not audio.
Samples are converted to float32 exactly as libsndfile (and so
``librosa.load``) converts them: u8 (x - 128) / 128, s16 x / 2^15, s24 x /
2^23, s32 float32(x) / 2^31, float as stored.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import BinaryIO

import numpy as np

from ..errors import AudioLoadError
from ..limits import check_channels, check_sample_rate
from .audio import _container

__all__ = ["MAX_HEADER_BYTES", "PcmFormat", "read_wav_header", "PcmDecoder"]

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


#: Most bytes of chunks before the audio (LIST, bext, JUNK, ...) a stream may
#: skip. They are read and dropped as they arrive, never held; a chunk that
#: claims more is a damaged header, refused before anything is read.
MAX_HEADER_BYTES = 64 << 20
#: Most bytes of a ``fmt `` or ``ds64`` chunk (both are read whole; real ones
#: are under 100 bytes, WAVE_FORMAT_EXTENSIBLE's 40 included).
_MAX_FORMAT_CHUNK = 1 << 16
_SKIP_BLOCK = 1 << 16
#: A 32-bit data size that says "unknown" (live writers) or "see ds64" (RF64).
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


def _skip(stream: BinaryIO, size: int) -> int:
    """Read and drop ``size`` bytes, a block at a time; how many there were."""
    skipped = 0
    while skipped < size:
        block = stream.read(min(_SKIP_BLOCK, size - skipped))
        if not block:
            break
        skipped += len(block)
    return skipped


def _chunk_name(cid: bytes) -> str:
    """A chunk id as a message shows it: ``'LIST'``, or its bytes in hex if not text."""
    if all(32 <= b < 127 for b in cid):
        return repr(cid.decode("ascii"))
    return f"0x{cid.hex()}"


def _ds64_data_size(body: bytes) -> int | None:
    """The data size an RF64 ``ds64`` chunk gives, or None when it does not know it.

    A live writer leaves the sizes 0 (it cannot seek back to fill them in);
    all ones is no size either.
    """
    if len(body) < 16:
        raise AudioLoadError("WAV stream has a truncated ds64 chunk (RF64 sizes)")
    size: int = struct.unpack("<Q", body[8:16])[0]
    return None if size in (0, 0xFFFFFFFFFFFFFFFF) else size


def read_wav_header(stream: BinaryIO) -> tuple[PcmFormat, int | None]:
    """Parse a RIFF/WAVE or RF64 header up to the start of the data chunk.

    Chunks before the data (LIST, bext, JUNK, ...) are skipped as they arrive,
    up to `MAX_HEADER_BYTES` in all. An RF64 stream's data size is its
    ``ds64`` chunk's, as libsndfile reads it (the 32-bit field is
    0xFFFFFFFF); so for RIFF and RF64 alike, chunks after the data are never
    taken for audio when the header gives the data's size.

    Parameters
    ----------
    stream : binary file object
        Positioned at the start of the stream; left at the first byte of the
        audio.

    Returns
    -------
    format : PcmFormat
        With a sample rate and channel count within `limits`.
    data_bytes : int or None
        The data chunk's size, or None when the writer did not know it (a
        32-bit size of 0 or 0xFFFFFFFF with no ``ds64`` size): read to the end
        of the stream.

    Raises
    ------
    AudioLoadError
        If the stream is not a WAV stream, is truncated before its audio, has
        a damaged header (a chunk larger than the bounds above) or uses an
        unsupported encoding.
    ParameterError
        If the header's sample rate or channel count is out of range
        (`limits.check_sample_rate`, `limits.check_channels`): 0 Hz, say.
    """
    head = _read_exact(stream, 12)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        raise AudioLoadError(_not_wav_message(head))
    rf64 = head[:4] == b"RF64"
    fmt: PcmFormat | None = None
    ds64_size: int | None = None
    skipped = 0
    while True:
        chunk = _read_exact(stream, 8)
        if len(chunk) < 8:
            raise AudioLoadError("WAV stream ended before its data chunk (truncated header)")
        cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        name = _chunk_name(cid)
        if cid == b"data":
            if fmt is None:
                raise AudioLoadError("WAV stream has its data chunk before the fmt chunk")
            if rf64 and ds64_size is not None:
                return fmt, ds64_size
            return fmt, (None if size in _UNKNOWN_SIZES else size)
        padded = size + (size & 1)
        if cid in (b"fmt ", b"ds64"):
            if padded > _MAX_FORMAT_CHUNK:
                raise AudioLoadError(
                    f"WAV stream has a {name} chunk of {size} bytes (at most"
                    f" {_MAX_FORMAT_CHUNK} expected): its header is damaged; repair or"
                    " re-encode the input"
                )
            body = _read_exact(stream, padded)
            if len(body) < size:
                raise AudioLoadError("WAV stream ended inside a header chunk")
            if cid == b"ds64":
                ds64_size = _ds64_data_size(body)
            else:
                fmt = _parse_fmt(body)
            continue
        skipped += padded
        if skipped > MAX_HEADER_BYTES:
            raise AudioLoadError(
                f"WAV stream has a {name} chunk of {size} bytes before its audio, more than"
                f" the {MAX_HEADER_BYTES >> 20} MiB of header chunks a stream may have: its"
                " header is damaged; repair or re-encode the input"
            )
        if _skip(stream, padded) < size:
            raise AudioLoadError("WAV stream ended inside a header chunk")


def _parse_fmt(body: bytes) -> PcmFormat:
    """The layout a ``fmt `` chunk's body gives; its rate and channels checked."""
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
    if encoding is None:
        raise AudioLoadError(
            f"unsupported WAV encoding in stream: format tag {tag}, {bits} bits,"
            f" {channels} channels; use PCM 8/16/24/32-bit or float 32/64-bit"
        )
    check_sample_rate(rate, name="the sample rate in the WAV header")
    check_channels(channels, name="the channel count in the WAV header")
    return PcmFormat(rate, channels, encoding)


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
