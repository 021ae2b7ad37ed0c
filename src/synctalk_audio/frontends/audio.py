"""Audio loading equal to ``librosa.load(path, sr=16000)``, sample for sample.

librosa decodes with soundfile (libsndfile), averages the channels, resamples
with soxr at 'HQ' quality and fixes the length to ``ceil(n * sr / sr_native)``.
This module does exactly that with the same libraries, without importing
librosa (whose first call costs about 3 s).

Any path the system accepts opens, whatever bytes its name holds. A path that
is not a regular file (a FIFO, ``<(command)``, /dev/stdin, a device) is a
stream: libsndfile needs to seek, so it is copied first, no further than the
duration limit allows (`_spool`); one in which no audio format is recognised
is refused after its first 16 MiB at most.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import io
import math
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from typing import Any, BinaryIO, Union

import numpy as np
import soundfile as sf
import soxr

from ..errors import AudioLoadError, ParameterError
from ..limits import check_count, check_duration, check_sample_rate

__all__ = [
    "AudioBlocks",
    "AudioInfo",
    "AudioSource",
    "StreamingResampler",
    "check_info",
    "declared_duration",
    "is_regular_audio_file",
    "load_audio",
    "load_audio_with_info",
    "load_first_channel_with_info",
]

AudioSource = Union[str, "os.PathLike[str]", BinaryIO]

TARGET_RATE = 16000


@dataclasses.dataclass(frozen=True)
class AudioInfo:
    """What the decoder reported about the input.

    Attributes
    ----------
    source : str
        The path, or ``"<file object>"``.
    sample_rate : int
        The file's own sample rate, Hz.
    channels : int
        The file's channel count (averaged to mono).
    frames : int
        Samples per channel in the file.
    format : str
        libsndfile's container and subtype, e.g. ``"WAV/PCM_16"``.
    """

    source: str
    sample_rate: int
    channels: int
    frames: int
    format: str

    @property
    def duration(self) -> float:
        """Duration of the input in seconds."""
        return self.frames / self.sample_rate


def _describe(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return "<file object>"


def _opened_by_libsndfile(source: AudioSource) -> AudioSource | bytes:
    """What to hand soundfile for ``source``: a path as bytes, a file object as it is.

    soundfile encodes a str path strictly, so a name the OS allows but that
    is not valid UTF-8 (bytes such as ``\\xff``, which Python holds as
    surrogates) fails with a UnicodeEncodeError naming no file; its bytes
    (`os.fsencode`) open it. Windows paths stay str (soundfile opens them as
    wide strings).
    """
    if isinstance(source, (str, os.PathLike)) and os.name != "nt":
        return os.fsencode(source)
    return source


def declared_duration(path: str | os.PathLike[str]) -> float:
    """Seconds of audio the header of the regular file ``path`` declares; 0 if unknown.

    Only a regular file is opened: a FIFO or a device would block or never
    end, so it counts 0, as does a file whose header cannot be read (it
    fails later, when decoded, with its own message).

    Examples
    --------
    >>> declared_duration("/dev/null")
    0.0
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return 0.0
        info = sf.info(_opened_by_libsndfile(path))
        return float(info.frames) / float(info.samplerate) if info.samplerate > 0 else 0.0
    except Exception:  # an unreadable file fails later, when decoded, with its own message
        return 0.0


def _remaining_bytes(stream: object) -> int | None:
    """Bytes left in a seekable file object, or None when it cannot tell."""
    try:
        here = stream.tell()  # type: ignore[attr-defined]
        end = stream.seek(0, os.SEEK_END)  # type: ignore[attr-defined]
        stream.seek(here)  # type: ignore[attr-defined]
        return int(end - here)
    except (AttributeError, OSError, ValueError):
        return None


# WAVE format tags libsndfile decodes (PCM, ADPCM, float, A-law, mu-law,
# IMA ADPCM, GSM 6.10, G.721, MPEG, extensible).
_KNOWN_WAV_TAGS = {
    0x0001,
    0x0002,
    0x0003,
    0x0006,
    0x0007,
    0x0011,
    0x0031,
    0x0040,
    0x0050,
    0x0055,
    0xFFFE,
}


def _read_head(source: AudioSource, size: int = 4096) -> bytes:
    """The first ``size`` bytes of a path or seekable file object; b"" if unreadable."""
    try:
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as f:
                return f.read(size)
        here = source.tell()
        source.seek(0)
        head = source.read(size)
        source.seek(here)
        return head
    except (OSError, AttributeError, ValueError):
        return b""


def _wav_codec_problem(head: bytes) -> str | None:
    """For a WAV libsndfile refused: name the codec if that is why, else None."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(head):
        size = int.from_bytes(head[pos + 4 : pos + 8], "little")
        if head[pos : pos + 4] == b"fmt " and pos + 10 <= len(head):
            tag = int.from_bytes(head[pos + 8 : pos + 10], "little")
            if tag not in _KNOWN_WAV_TAGS:
                return f"unsupported WAV codec (format tag 0x{tag:04x})"
            return None
        pos += 8 + size + (size & 1)
    return None


def check_info(info: AudioInfo, max_duration: float | None) -> None:
    """Refuse an input by what its header declares, before anything is decoded.

    Raises
    ------
    AudioLoadError
        If the declared sample rate is outside 1000 to 768000 Hz.
    ParameterError
        If the declared duration is above ``max_duration`` seconds (None:
        no limit); the message gives the duration, the rate and the frames.
    """
    try:
        check_sample_rate(info.sample_rate, name=f"{info.source}: the sample rate in its header")
    except ParameterError as exc:
        raise AudioLoadError(str(exc)) from None
    check_duration(info.frames, info.sample_rate, max_duration, source=info.source)


def _container(head: bytes) -> str | None:
    """The container a file's first bytes announce, or None if none is recognised."""
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "WAV"
    if head[:4] == b"fLaC":
        return "FLAC"
    if head[:4] == b"OggS":
        return "OGG"
    if head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "MP3"
    return None


def _decode_problem(source: AudioSource, error_string: str) -> str:
    """Why libsndfile refused ``source``, in words that fit the file.

    libsndfile reports a file whose format it recognised but whose data its
    decoder could not start on (a truncated MP3, say) as "File does not exist
    or is not a regular file", which is wrong for a file that is there.
    """
    head = _read_head(source)
    codec = _wav_codec_problem(head)
    if codec is not None:
        return codec
    if "does not exist or is not a regular file" in error_string:
        kind = _container(head)
        return f"its {kind + ' ' if kind else ''}data is truncated or corrupt (no decodable frame)"
    return error_string.rstrip(".")


@contextlib.contextmanager
def _open_for_reading(path: str) -> Iterator[BinaryIO]:
    """``open(path, "rb")``, with a PermissionError that says what to check."""
    try:
        f = open(path, "rb")  # noqa: SIM115  (closed below)
    except PermissionError:
        raise PermissionError(
            f"permission denied: cannot read audio file {path} (check its permissions)"
        ) from None
    with f:
        yield f


def _check_path(path: str) -> bool:
    """Refuse a path that cannot be audio, saying why; True if it is a regular file.

    libsndfile would call an unreadable file a "System error"; a pipe or FIFO
    (which reports a size of 0) is not refused: the caller reads it through.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"audio file not found: {path}")
    if os.path.isdir(path):
        raise AudioLoadError(f"{path} is a directory, not an audio file")
    if not stat.S_ISREG(os.stat(path).st_mode):
        return False
    with _open_for_reading(path):
        pass
    if os.path.getsize(path) == 0:
        raise AudioLoadError(f"{path} is empty (0 bytes): not an audio file")
    return True


#: A pipe's bytes are held in memory up to this size, then in a temporary file.
_SPOOL_IN_MEMORY = 64 << 20

#: How much of a stream is read, at most, to recognise its format: a header
#: and, for MP3, a tag that may hold cover art.
_PROBE_SIZES = (64 << 10, 1 << 20, 16 << 20)

#: Bytes per sample of libsndfile's PCM subtypes; other (compressed) subtypes
#: count 4, more than any of their codecs spends.
_SAMPLE_BYTES = {
    "PCM_S8": 1,
    "PCM_U8": 1,
    "ULAW": 1,
    "ALAW": 1,
    "DPCM_8": 1,
    "PCM_16": 2,
    "DPCM_16": 2,
    "DWVW_16": 2,
    "PCM_24": 3,
    "DWVW_24": 3,
    "PCM_32": 4,
    "FLOAT": 4,
    "DOUBLE": 8,
}

#: Room a stream may take beyond its audio at the limit: trailing chunks and tags.
_STREAM_SLACK = 1 << 20


def _stream_byte_limit(
    head_bytes: int, sample_rate: int, channels: int, subtype: str, max_duration: float
) -> int:
    """The most bytes a stream of at most ``max_duration`` seconds can take.

    Its head (the bytes read to recognise it: header, tags), then the audio
    at ``subtype``'s bytes per sample (`_SAMPLE_BYTES`; 4 for compressed
    subtypes) with an eighth more for container framing (FLAC frame
    headers, interleaved chunks), then `_STREAM_SLACK` for what may follow
    the audio. A stream longer than this holds more than ``max_duration``
    seconds whatever its encoding.

    >>> _stream_byte_limit(44, 16000, 1, "PCM_16", 10.0) - 44 - (1 << 20)
    360000
    """
    per_second = sample_rate * channels * _SAMPLE_BYTES.get(subtype, 4) * 9 / 8
    return head_bytes + math.ceil(max_duration * per_second) + _STREAM_SLACK


def _recognised(head: bytes) -> Any:
    """What libsndfile makes of a stream's first bytes, or None if it recognises nothing."""
    try:
        return sf.info(io.BytesIO(head))
    except Exception:  # not (yet) a format libsndfile knows
        return None


def _spool(source: BinaryIO, copy: BinaryIO, name: str, max_duration: float | None) -> None:
    """Copy the stream ``source`` into ``copy``, no further than ``max_duration`` allows.

    The first bytes are read until libsndfile recognises a format
    (`_PROBE_SIZES`); that tells the stream's rate, channels and sample
    format, hence the most bytes ``max_duration`` seconds can take
    (`_stream_byte_limit`). Reading stops there: the copy never holds more.

    Raises
    ------
    AudioLoadError
        If no audio format is recognised in the first 16 MiB (a device such
        as /dev/zero, random bytes).
    ParameterError
        If the stream goes on past the bytes ``max_duration`` allows.
    """
    head = b""
    info = None
    for size in _PROBE_SIZES:
        while len(head) < size:
            chunk = source.read(size - len(head))
            if not chunk:
                copy.write(head)  # the whole stream, shorter than a probe: decode it as it is
                return
            head += chunk
        info = _recognised(head)
        if info is not None:
            break
    if info is None:
        _decode(io.BytesIO(head), name=name)  # raises the decoder's own message
        raise AudioLoadError(f"could not decode {name}: no audio format in its first bytes")
    copy.write(head)
    if max_duration is None:
        shutil.copyfileobj(source, copy)
        return
    limit = _stream_byte_limit(
        len(head), int(info.samplerate), int(info.channels), str(info.subtype), max_duration
    )
    copied = len(head)
    while True:
        chunk = source.read(min(1 << 20, limit + 1 - copied))
        if not chunk:
            return
        copy.write(chunk)
        copied += len(chunk)
        if copied > limit:
            raise ParameterError(
                f"{name} holds more than {max_duration:g} s of audio: it goes on past {limit}"
                f" bytes, the most {max_duration:g} s of {info.format}/{info.subtype} at"
                f" {info.samplerate} Hz x {info.channels} channel(s) can take; the limit is"
                f" {max_duration:g} s: pass a larger --max-duration (max_duration in Python) to"
                " allow it"
            )


@contextlib.contextmanager
def _read_through(path: str, max_duration: float | None = None) -> Iterator[BinaryIO]:
    """The content of a pipe, FIFO or device ``path`` as a seekable file object.

    libsndfile needs to seek; a named pipe or ``<(command)`` cannot, so it is
    copied first (in memory up to 64 MiB, then in a temporary file), no
    further than ``max_duration`` seconds of its audio allow (`_spool`).

    Raises
    ------
    OSError
        ENOSPC when the temporary folder has no room for the copy; the
        message names the folder and the stream and says what to do.
    """
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as copy:
        with _open_for_reading(path) as f:
            try:
                _spool(f, copy, path, max_duration)  # type: ignore[arg-type]
            except OSError as exc:
                if exc.errno not in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
                    raise
                folder = tempfile.gettempdir()
                full = OSError(
                    f"no space left in {folder} for the copy of {path} that decoding needs"
                    f" ({exc.strerror}); free space there or set TMPDIR to a folder with room"
                )
                full.errno = exc.errno
                raise full from None
        copy.seek(0)
        yield copy  # type: ignore[misc]


def _decode(
    source: AudioSource,
    max_duration: float | None = None,
    name: str | None = None,
    dtype: str = "float32",
) -> tuple[np.ndarray, AudioInfo]:
    """Decode to ``dtype`` (channels, frames) or (frames,), as librosa does (float32)."""
    name = name or _describe(source)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not _check_path(path):  # a FIFO, <(command), /dev/stdin: read it through
            with _read_through(path, max_duration) as copy:
                return _decode(copy, max_duration, name=path, dtype=dtype)
    elif _remaining_bytes(source) == 0:
        raise AudioLoadError(f"{name} is empty (0 bytes left to read): not an audio file")
    try:
        with sf.SoundFile(_opened_by_libsndfile(source)) as f:
            info = AudioInfo(
                source=name,
                sample_rate=int(f.samplerate),
                channels=int(f.channels),
                frames=int(f.frames),
                format=f"{f.format}/{f.subtype}",
            )
            check_info(info, max_duration)
            # librosa: sf_desc.read(frames=-1, dtype="float32", always_2d=False).T
            samples = f.read(frames=-1, dtype=dtype, always_2d=False).T
    except sf.LibsndfileError as exc:
        reason = _decode_problem(source, exc.error_string)
        raise AudioLoadError(
            f"could not decode {name}: {reason}. Supported: WAV (PCM, float,"
            " extensible), FLAC, OGG/Vorbis/Opus, MP3 and the other formats of libsndfile"
            f" {sf.__libsndfile_version__}; convert other files first, e.g."
            " `ffmpeg -i input -ar 16000 -ac 1 output.wav`"
        ) from None
    except (RuntimeError, TypeError, EOFError) as exc:
        raise AudioLoadError(f"could not decode {name}: {exc}") from None
    if samples.shape[-1] == 0:
        raise AudioLoadError(f"{name} contains no samples")
    return samples, dataclasses.replace(info, frames=int(samples.shape[-1]))


def _to_mono(samples: np.ndarray) -> np.ndarray:
    # librosa.to_mono: the float32 mean over every axis but the last.
    if samples.ndim > 1:
        samples = np.mean(samples, axis=tuple(range(samples.ndim - 1)))
    return samples


def resampled_length(samples: int, rate: int, target: int) -> int:
    """librosa.resample's length rule (``fix=True``): ``ceil(n * target / rate)``."""
    return int(np.ceil(samples * (float(target) / rate)))


def _fix_length(resampled: np.ndarray, n_samples: int) -> np.ndarray:
    # Cut or zero-pad to the length rule, as librosa.util.fix_length.
    if resampled.shape[-1] > n_samples:
        return resampled[:n_samples]
    if resampled.shape[-1] < n_samples:
        return np.pad(resampled, (0, n_samples - resampled.shape[-1]))
    return resampled


def _resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    # librosa.resample(res_type="soxr_hq", fix=True, scale=False).
    if rate == target:
        return samples
    resampled = soxr.resample(samples, rate, target, quality="soxr_hq")
    n_samples = resampled_length(samples.shape[-1], rate, target)
    return np.asarray(_fix_length(resampled, n_samples), dtype=samples.dtype)


class StreamingResampler:
    """`_resample` (librosa's soxr-HQ resampling) in pieces, to `TARGET_RATE`.

    The concatenation of what `push` and `finish` return equals resampling the
    whole signal at once, bit for bit, for any chunking: soxr's streaming
    resampler gives the samples of its one-shot call, never more than the
    length rule allows (``tests/test_resampler.py`` checks both), so only
    the end needs fixing: `finish` zero-pads to the rule. At `TARGET_RATE`
    the samples pass through unchanged.

    Parameters
    ----------
    rate : int
        Sample rate of the input.
    dtype : numpy dtype
        float32 (the ``ave`` loader) or float64 (Ultralight's loader).
    """

    def __init__(self, rate: int, dtype: type[np.floating[Any]]) -> None:
        self.rate = rate
        self.dtype = np.dtype(dtype)
        self._stream = (
            soxr.ResampleStream(rate, TARGET_RATE, 1, dtype=self.dtype.name, quality="HQ")
            if rate != TARGET_RATE
            else None
        )
        self._input = 0  # input samples so far
        self._output = 0  # resampled samples returned so far

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Resample a piece of mono input; the resampled samples that are final."""
        samples = np.asarray(samples, dtype=self.dtype)
        self._input += samples.shape[0]
        if self._stream is not None:
            samples = self._stream.resample_chunk(samples, last=False)
        self._output += samples.shape[0]
        return samples

    def finish(self) -> np.ndarray:
        """The resampler's tail, zero-padded to the length rule."""
        if self._stream is None:
            return np.zeros(0, self.dtype)
        tail = self._stream.resample_chunk(np.zeros(0, self.dtype), last=True)
        want = resampled_length(self._input, self.rate, TARGET_RATE) - self._output
        tail = np.asarray(_fix_length(tail, max(0, want)), dtype=self.dtype)
        self._output += tail.shape[0]
        return tail


def load_audio_with_info(
    source: AudioSource, *, sr: int = TARGET_RATE, max_duration: float | None = None
) -> tuple[np.ndarray, AudioInfo]:
    """Like `load_audio`, also returning what the decoder reported.

    ``max_duration`` (seconds, None for no limit) refuses a longer input by
    its header, before decoding it (`check_info`); a stream (a FIFO,
    ``<(command)``, /dev/stdin) is copied no further than that many seconds
    of its audio can take (`_spool`), so an endless one stops there.

    Returns
    -------
    samples : numpy.ndarray
        float32 mono samples at ``sr``.
    info : AudioInfo
        The input's own rate, channels, length and format.
    """
    sr = check_sample_rate(sr, name="sr")
    samples, info = _decode(source, max_duration)
    mono = _to_mono(samples)
    out = np.ascontiguousarray(_resample(mono, info.sample_rate, sr), dtype=np.float32)
    if not np.all(np.isfinite(out)):
        raise AudioLoadError(f"{info.source} holds NaN or infinite samples")
    return out, info


def load_first_channel_with_info(
    source: AudioSource, *, sr: int = TARGET_RATE, max_duration: float | None = None
) -> tuple[np.ndarray, AudioInfo]:
    """The loader of Ultralight-Digital-Human's scripts: float64, first channel, soxr HQ.

    ``soundfile.read`` in float64, the FIRST channel (not the mean), then
    ``librosa.resample`` to ``sr`` (soxr 'HQ' on float64, length
    ``ceil(n * sr / rate)``; unchanged at ``sr``). The channel is taken
    BEFORE resampling: upstream resamples the 2-D (frames, channels) array,
    which librosa does along the last axis, i.e. across the channels (a
    documented fix, docs/DECISIONS.md).

    Returns
    -------
    samples : numpy.ndarray
        float64 1-D samples at ``sr``.
    info : AudioInfo
        The input's own rate, channels, length and format.
    """
    sr = check_sample_rate(sr, name="sr")
    samples, info = _decode(source, max_duration, dtype="float64")
    first = samples[0] if samples.ndim > 1 else samples
    out = np.ascontiguousarray(_resample(first, info.sample_rate, sr), dtype=np.float64)
    if not np.all(np.isfinite(out)):
        raise AudioLoadError(f"{info.source} holds NaN or infinite samples")
    return out, info


def load_audio(source: AudioSource, *, sr: int = TARGET_RATE) -> np.ndarray:
    """Read an audio file as float32 mono at ``sr`` Hz, equal to ``librosa.load``.

    The result is identical, sample for sample, to
    ``librosa.load(source, sr=sr)[0]`` for every format libsndfile decodes:
    the same decoder (soundfile), the same channel mean, the same resampler
    (soxr, 'HQ') and the same length rule ``ceil(n * sr / sr_native)``.

    Parameters
    ----------
    source : str, os.PathLike or binary file object
        A path, or an open file object positioned at the start of the file
        (``open(path, "rb")``, ``io.BytesIO``).
    sr : int
        Target sample rate, 1000 to 768000 Hz; 16000 for SyncTalk_2D.

    Returns
    -------
    numpy.ndarray
        1-D float32 samples, nominally in [-1, 1).

    Raises
    ------
    FileNotFoundError
        If the path does not exist.
    AudioLoadError
        If the input is empty, not audio, truncated, in an unsupported codec,
        has zero samples or holds NaN/inf.

    Examples
    --------
    >>> import io, numpy as np, soundfile as sf
    >>> from synctalk_audio import load_audio
    >>> buf = io.BytesIO()
    >>> sf.write(buf, np.zeros((4410, 2), dtype=np.float32), 44100, format="WAV")
    >>> _ = buf.seek(0)
    >>> load_audio(buf).shape
    (1600,)
    """
    return load_audio_with_info(source, sr=sr)[0]


#: Frames per block of `AudioBlocks` (8.2 s at 16 kHz, 2.7 s at 48 kHz): about 200
#: encoder windows per block at 16 kHz, so few encoder calls end in a part batch.
BLOCK_FRAMES = 1 << 17


def is_regular_audio_file(source: object) -> bool:
    """True for a path to a non-empty regular file: what `AudioBlocks` reads.

    Anything else (a file object, a FIFO, a device, a directory, a missing or
    empty file) is left to `load_audio_with_info`, which decodes it or says
    why not.
    """
    if not isinstance(source, (str, os.PathLike)):
        return False
    try:
        st = os.stat(source)
    except (OSError, ValueError):
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size > 0


class AudioBlocks:
    """Decode an audio file block by block, sample for sample as `load_audio` does.

    Iterating yields float32 (frames, channels) blocks of the file's own
    samples (not averaged, not resampled). Concatenated they equal the one
    read ``librosa.load`` makes: libsndfile is called directly
    (``sf_readf_float``), because ``SoundFile.read`` seeks after every read
    and a seek resets the MP3 decoder's bit reservoir (blocks read that way
    differ from one read by up to 0.09 on MP3). As ``SoundFile.read(-1)``
    does, no more than the declared frame count is read.

    Parameters
    ----------
    source : str or os.PathLike
        A regular, non-empty audio file (see `is_regular_audio_file`).
    block_frames : int
        Frames per block.
    max_duration : float, optional
        Refuse a file whose header declares more seconds than this
        (`check_info`); None for no limit.

    Raises
    ------
    AudioLoadError
        If the file cannot be opened (the same error `load_audio` raises),
        fails to decode part-way, holds no samples or holds NaN/inf, or its
        header declares a sample rate out of range.
    ParameterError
        If the header declares more than ``max_duration`` seconds.

    Examples
    --------
    >>> with AudioBlocks("speech.wav") as blocks:  # doctest: +SKIP
    ...     for block in blocks:
    ...         consume(block)
    """

    def __init__(
        self,
        source: str | os.PathLike[str],
        *,
        block_frames: int = BLOCK_FRAMES,
        max_duration: float | None = None,
    ):
        self.block_frames = check_count(block_frames, "block_frames")
        self.source = source
        self.name = _describe(source)
        try:
            self._file = sf.SoundFile(_opened_by_libsndfile(source))
        except (sf.LibsndfileError, RuntimeError, TypeError, EOFError, OSError):
            # Opening failed: let the whole-file loader name the problem, so
            # both paths report the same error.
            _decode(source)
            raise
        sub = self._file
        self.info = AudioInfo(
            source=self.name,
            sample_rate=int(sub.samplerate),
            channels=int(sub.channels),
            frames=int(sub.frames),
            format=f"{sub.format}/{sub.subtype}",
        )
        try:
            check_info(self.info, max_duration)
        except BaseException:
            sub.close()
            raise
        # SoundFile.read(frames=-1) reads the declared count on a seekable file.
        self._limit: int | None = int(sub.frames) if sub.seekable() else None
        #: Frames decoded so far.
        self.frames_read = 0

    def __enter__(self) -> AudioBlocks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __iter__(self) -> Iterator[np.ndarray]:
        from soundfile import _ffi, _snd  # libsndfile itself, see the class docstring

        channels = self.info.channels
        while True:
            want = self.block_frames
            if self._limit is not None:
                want = min(want, self._limit - self.frames_read)
            if want <= 0:
                break
            block = np.empty((want, channels), dtype=np.float32)
            got = int(
                _snd.sf_readf_float(
                    self._file._file, _ffi.cast("float *", _ffi.from_buffer(block)), want
                )
            )
            code = int(_snd.sf_error(self._file._file))
            if code:
                reason = sf.LibsndfileError(code).error_string.rstrip(".")
                raise AudioLoadError(
                    f"could not decode {self.name} after {self.frames_read + max(got, 0)}"
                    f" samples: {reason}; the file is damaged or truncated"
                )
            if got <= 0:
                break
            block = block[:got]
            if not np.all(np.isfinite(block)):
                raise AudioLoadError(f"{self.name} holds NaN or infinite samples")
            self.frames_read += got
            yield block
        if self.frames_read == 0:
            _decode(self.source)  # raises load_audio's error for a file without samples
            raise AudioLoadError(f"{self.name} contains no samples")
