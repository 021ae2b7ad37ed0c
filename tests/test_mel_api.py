"""The mel API's input policy, error messages, robustness and thread safety.

Policy (docs/DECISIONS.md "Input policy at the boundary"): a 1-D NumPy array
of float32 or float64 samples. Integer, float16, complex and object arrays
and non-arrays raise TypeError; other shapes, empty arrays and NaN/inf raise
`ParameterError` (a ValueError) naming what is wrong; non-contiguous and
byte-swapped arrays are copied and give the same result. The raw extension
(`synctalk_audio._core`) refuses garbage with Python exceptions, never a crash.
"""

from __future__ import annotations

import pickle
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from synctalk_audio import MelOptions, ParameterError, _core, melspectrogram, melspectrogram_many
from synctalk_audio.frontends.mel import mel_processor


def clip(n: int = 4000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    return (0.3 * rng.standard_normal(n) + 0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


# ----------------------------------------------------------------------------
# dtypes


@pytest.mark.parametrize("out", [np.float32, np.float64])
def test_float32_and_float64_input_agree_exactly(out):
    """float32 -> float64 is exact and the core widens to float64 first, so the same
    values as float64 input give the identical spectrogram."""
    x32 = clip(16123)
    a = melspectrogram(x32, dtype=out)
    b = melspectrogram(x32.astype(np.float64), dtype=out)
    assert a.dtype == b.dtype == np.dtype(out)
    assert np.array_equal(a, b)


def test_float64_input_keeps_its_precision():
    """float64 input is not rounded to float32 on the way in."""
    x = np.random.default_rng(1).standard_normal(4000) * 0.3
    x32 = x.astype(np.float32)
    assert not np.array_equal(
        melspectrogram(x, dtype=np.float64), melspectrogram(x32, dtype=np.float64)
    )


@pytest.mark.parametrize(
    "dtype",
    [
        np.int16,
        np.int32,
        np.uint8,
        np.float16,
        np.complex64,
        np.complex128,
        object,
        np.bool_,
        np.longdouble,
    ],
)
def test_bad_dtypes_raise_type_error(dtype):
    if np.dtype(dtype) == np.dtype(np.float64):  # longdouble is float64 on some platforms
        pytest.skip("longdouble is float64 here")
    x = np.zeros(1000).astype(dtype)
    with pytest.raises(TypeError, match=r"float32 or float64, got") as info:
        melspectrogram(x)
    assert str(np.dtype(dtype)) in str(info.value)


def test_integer_pcm_error_explains_the_conversion():
    with pytest.raises(TypeError, match=r"int16 samples / 32768"):
        melspectrogram(np.zeros(1000, dtype=np.int16))


@pytest.mark.parametrize(
    "wav",
    [[0.0] * 1000, (0.0,) * 1000, "audio", None, 1.0, np.float32(0.5), memoryview(b"\0" * 4000)],
)
def test_non_arrays_raise_type_error(wav):
    with pytest.raises(TypeError, match="NumPy array"):
        melspectrogram(wav)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "wav, match",
    [
        (np.zeros((2, 1000), dtype=np.float32), r"1-D.*shape \(2, 1000\)"),
        (np.zeros((1000, 1), dtype=np.float32), r"1-D.*shape \(1000, 1\)"),
        (np.array(0.5, dtype=np.float32), r"1-D.*shape \(\)"),
        (np.zeros(0, dtype=np.float32), "empty"),
        (np.zeros(0, dtype=np.float64), "empty"),
        (np.zeros((0, 2), dtype=np.float32), "1-D"),
    ],
    ids=["2d", "column", "0d", "empty32", "empty64", "empty2d"],
)
def test_bad_shapes_raise_parameter_error(wav, match):
    with pytest.raises(ParameterError, match=match):
        melspectrogram(wav)
    assert issubclass(ParameterError, ValueError)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("index", [0, 1, 1234, 3999])
def test_non_finite_samples_name_the_index(dtype, bad, index):
    x = clip(4000).astype(dtype)
    x[index] = bad
    with pytest.raises(ParameterError, match=rf"sample {index} is (-?inf|nan)"):
        melspectrogram(x)


def test_non_finite_names_the_first_bad_index():
    x = clip(4000)
    x[[700, 12, 3000]] = np.nan
    with pytest.raises(ParameterError, match=r"sample 12 is nan"):
        melspectrogram(x)


def test_non_finite_in_many_names_the_clip_or_index():
    clips = [clip(1000), clip(2000)]
    clips[1][5] = np.inf
    with pytest.raises(ParameterError, match=r"sample 5"):
        melspectrogram_many(clips, threads=2)


# ----------------------------------------------------------------------------
# memory layouts


def test_non_contiguous_view_equals_contiguous_copy():
    wav = clip(20000)
    view = wav[::2]
    assert not view.flags.c_contiguous
    assert np.array_equal(melspectrogram(view), melspectrogram(np.ascontiguousarray(view)))
    rev = wav[::-1]
    assert np.array_equal(
        melspectrogram(rev, dtype=np.float64), melspectrogram(rev.copy(), dtype=np.float64)
    )
    col = np.asfortranarray(np.stack([wav, wav], axis=1))[:, 0]
    assert np.array_equal(melspectrogram(col), melspectrogram(wav))


def test_input_is_not_modified():
    wav = clip(5000)
    before = wav.copy()
    melspectrogram(wav)
    mel_processor(MelOptions()).stages(wav)
    assert np.array_equal(wav, before)


def test_read_only_input_is_fine():
    wav = clip(5000)
    wav.setflags(write=False)
    assert melspectrogram(wav).shape == (80, 26)


@pytest.mark.parametrize("dtype", [">f4", ">f8"])
def test_big_endian_equals_native(dtype):
    wav = clip(8000)
    big = wav.astype(dtype)
    assert not big.dtype.isnative
    assert np.array_equal(
        melspectrogram(big, dtype=np.float64),
        melspectrogram(wav.astype(dtype[1:]), dtype=np.float64),
    )


def test_unpickled_array_is_accepted():
    """Arrays that went through pickle (multiprocessing, joblib) are ordinary float32."""
    wav = clip(4000)
    back = pickle.loads(pickle.dumps(wav))
    assert back.dtype == np.float32 and back.dtype.isnative
    assert np.array_equal(melspectrogram(back), melspectrogram(wav))


def test_byte_swapped_native_order_view_is_fine():
    """A big-endian buffer already viewed in native order needs no conversion."""
    wav = clip(4000)
    native = wav.astype(">f4").astype("<f4")  # astype to a canonical dtype string
    assert np.array_equal(melspectrogram(native), melspectrogram(wav))


# ----------------------------------------------------------------------------
# options


@pytest.mark.parametrize(
    "field, value",
    [
        ("sample_rate", 0),
        ("n_fft", 0),
        ("n_fft", -800),
        ("n_fft", 2062),  # 2 x 1031: a prime factor above 1024
        ("n_fft", 70000),  # above 65536
        ("hop_length", 0),
        ("win_length", 0),
        ("win_length", 801),
        ("n_mels", 0),
        ("fmin", -1.0),
        ("fmin", float("nan")),
        ("fmax", 55.0),
        ("fmax", 9000.0),
        ("preemphasis", float("inf")),
        ("ref_level_db", float("nan")),
        ("min_level_db", 0.0),
        ("min_level_db", 10.0),
        ("max_abs_value", 0.0),
        ("max_abs_value", float("inf")),
    ],
)
def test_bad_option_values_name_the_field(field, value):
    with pytest.raises(ParameterError, match=rf"\b{field}\b"):
        MelOptions(**{field: value})


@pytest.mark.parametrize("pad_mode", ["edge", "wrap", "symmetric", "", "Constant"])
def test_unknown_pad_mode_raises(pad_mode):
    with pytest.raises(ParameterError, match="pad_mode"):
        MelOptions(pad_mode=pad_mode)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="pad_mode"):
        melspectrogram(clip(1000), pad_mode=pad_mode)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "field, value", [("n_fft", 800.5), ("sample_rate", "16000"), ("pad_mode", None)]
)
def test_wrong_type_option_names_the_field(field, value):
    with pytest.raises(ParameterError, match=rf"\b{field}\b"):
        MelOptions(**{field: value})


def test_options_must_be_mel_options():
    with pytest.raises(TypeError, match="MelOptions"):
        melspectrogram(clip(1000), options={"n_fft": 800})  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", [np.float16, np.int16, "float128", complex])
def test_bad_output_dtype_raises(dtype):
    with pytest.raises(TypeError):
        melspectrogram(clip(1000), dtype=dtype)


# ----------------------------------------------------------------------------
# melspectrogram_into


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_melspectrogram_into_equals_melspectrogram(dtype):
    proc = mel_processor(MelOptions())
    wav = clip(4321)
    out = np.full((80, 1 + 4321 // 200), np.nan, dtype=dtype)
    assert proc.melspectrogram_into(wav, out) is None
    assert np.array_equal(out, proc.melspectrogram(wav, np.dtype(dtype).name))


@pytest.mark.parametrize(
    "out, exc, match",
    [
        (np.zeros((80, 20)), ValueError, r"shape \(80, 21\)"),
        (np.zeros((21, 80)), ValueError, r"shape \(80, 21\)"),
        (np.zeros(80 * 21), ValueError, "shape"),
        (np.zeros((80, 21), dtype=np.int32), TypeError, "float32 or float64"),
        (np.zeros((80, 21), dtype=np.float16), TypeError, "float32 or float64"),
        (np.zeros((80, 21), dtype=np.complex128), TypeError, "float32 or float64"),
        (np.zeros((21, 80)).T, ValueError, "contiguous"),
        (np.zeros((80, 42))[:, ::2], ValueError, "contiguous"),
    ],
    ids=["short", "transposed-shape", "1d", "int32", "float16", "complex", "fortran", "strided"],
)
def test_melspectrogram_into_bad_out(out, exc, match):
    proc = mel_processor(MelOptions())
    before = out.copy()
    with pytest.raises(exc, match=match):
        proc.melspectrogram_into(clip(4000), out)
    assert np.array_equal(out, before, equal_nan=True), "out was written before the error"


def test_melspectrogram_into_read_only_out():
    proc = mel_processor(MelOptions())
    out = np.zeros((80, 21))
    out.setflags(write=False)
    with pytest.raises(ValueError, match="writeable"):
        proc.melspectrogram_into(clip(4000), out)


def test_melspectrogram_into_nan_input_leaves_out_alone():
    proc = mel_processor(MelOptions())
    wav = clip(4000)
    wav[100] = np.nan
    out = np.full((80, 21), 7.0)
    with pytest.raises(ValueError, match="sample 100"):
        proc.melspectrogram_into(wav, out)
    assert (out == 7.0).all()


# ----------------------------------------------------------------------------
# the raw extension with garbage


GARBAGE = [
    None,
    "abc",
    b"bytes",
    3,
    2.5,
    [1.0, 2.0],
    {"a": 1},
    object(),
    np.zeros((4, 4)),
    np.zeros(8, dtype=np.int64),
    np.zeros(8, dtype=np.complex128),
    np.zeros(0),
    np.array(1.0),
    np.zeros(16)[::2],
    np.array(["a", "b"]),
]


@pytest.mark.parametrize(
    "arg", GARBAGE, ids=lambda a: type(a).__name__ + str(getattr(a, "shape", ""))
)
def test_core_functions_refuse_garbage(arg):
    proc = mel_processor(MelOptions())
    calls = [
        lambda: _core.rfft(arg),
        lambda: proc.melspectrogram(arg),
        lambda: proc.melspectrogram(arg, "float64"),
        lambda: proc.stages(arg),
        lambda: proc.melspectrogram_into(arg, np.zeros((80, 1))),
        lambda: proc.melspectrogram_into(np.zeros(100, np.float32), arg),
        lambda: _core.MelProcessor(arg),
    ]
    for call in calls:
        with pytest.raises((TypeError, ValueError)):
            call()


def test_core_num_frames_refuses_non_integers():
    proc = mel_processor(MelOptions())
    for arg in (None, "abc", 2.5, [1], np.zeros(3)):
        with pytest.raises(TypeError):
            proc.num_frames(arg)  # type: ignore[arg-type]


def test_core_melspectrogram_bad_dtype_string():
    proc = mel_processor(MelOptions())
    for dtype in ("float16", "", "f4", None, 32):
        with pytest.raises(TypeError):
            proc.melspectrogram(clip(1000), dtype)  # type: ignore[arg-type]


def test_core_processor_validates_raw_options():
    raw = _core.MelOptions()
    raw.n_fft = 0
    with pytest.raises(ValueError, match="n_fft"):
        _core.MelProcessor(raw)
    raw = _core.MelOptions()
    raw.win_length = 1000
    with pytest.raises(ValueError, match="win_length"):
        _core.MelProcessor(raw)
    raw = _core.MelOptions()
    with pytest.raises(ValueError, match="pad_mode"):
        raw.pad_mode = "edge"
    with pytest.raises(TypeError):
        raw.n_fft = "800"  # type: ignore[assignment]


def test_core_stages_refuse_nan():
    proc = mel_processor(MelOptions())
    wav = clip(1000)
    wav[999] = np.nan
    with pytest.raises(ValueError, match="sample 999"):
        proc.stages(wav)


# ----------------------------------------------------------------------------
# threads


def test_melspectrogram_many_equals_sequential():
    rng = np.random.default_rng(42)
    lengths = [int(v) for v in rng.integers(1, 40000, size=20)]
    lengths[:3] = [1, 399, 800]
    clips = [clip(n, seed=i) for i, n in enumerate(lengths)]
    for pad_mode in ("constant", "reflect"):
        for dtype in (np.float32, np.float64):
            sequential = [melspectrogram(c, pad_mode=pad_mode, dtype=dtype) for c in clips]
            parallel = melspectrogram_many(clips, pad_mode=pad_mode, dtype=dtype, threads=2)
            assert len(parallel) == len(clips)
            for i, (a, b) in enumerate(zip(sequential, parallel, strict=False)):
                assert a.shape == b.shape == (80, 1 + lengths[i] // 200), i
                assert np.array_equal(a, b), f"clip {i} (n={lengths[i]}) differs between threads"


def test_melspectrogram_many_raises_a_worker_threads_error(monkeypatch):
    import synctalk_audio.frontends.mel as mel_module

    real = mel_module.melspectrogram

    def failing(wav, **kwargs):
        if wav.shape[0] == 4000:
            raise MemoryError("no room for clip 2")
        return real(wav, **kwargs)

    monkeypatch.setattr(mel_module, "melspectrogram", failing)
    clips = [clip(n, seed=n) for n in (16000, 8000, 4000, 2000)]
    with pytest.raises(MemoryError, match="no room for clip 2"):
        melspectrogram_many(clips, threads=2)


def test_shared_processor_hammered_by_a_thread_pool():
    proc = mel_processor(MelOptions())
    clips = [clip(n, seed=n) for n in (3000, 7001, 16000, 250, 12345, 800)]
    want = [proc.melspectrogram(c, "float64") for c in clips]
    want_stages = proc.stages(clips[1])

    def job(i: int):
        c = i % len(clips)
        if i % 7 == 3:
            return c, "stages", proc.stages(clips[1])
        if i % 5 == 2:
            out = np.empty((80, 1 + len(clips[c]) // 200))
            proc.melspectrogram_into(clips[c], out)
            return c, "into", out
        return c, "mel", proc.melspectrogram(clips[c], "float64")

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(job, range(120)))
    for c, kind, got in results:
        if kind == "stages":
            for name, arr in want_stages.items():
                assert np.array_equal(got[name], arr), name
        else:
            assert np.array_equal(got, want[c]), f"{kind} result for clip {c} differs"


def test_gil_is_released_during_compute():
    """While the core computes, another Python thread must be able to run bytecode.

    No timing: the switch interval is made huge, so a thread holding the GIL is
    never pre-empted and the background counter can only advance while the
    main thread has *voluntarily* released the GIL. With the GIL held through
    the C++ call the counter would not move at all between the two reads
    (checked below with a pure-Python loop as the negative control).
    """
    proc = mel_processor(MelOptions())
    counter = [0]
    stop = threading.Event()
    started = threading.Event()

    def spin():
        started.set()
        while not stop.is_set():
            counter[0] += 1
            time.sleep(0)  # releases the GIL so the main thread can get it back

    old = sys.getswitchinterval()
    thread = threading.Thread(target=spin, daemon=True)
    try:
        sys.setswitchinterval(60.0)
        thread.start()
        started.wait()
        # negative control: pure Python holds the GIL, the counter cannot move
        c0 = counter[0]
        s = 0
        for i in range(200000):
            s += i
        assert counter[0] == c0, "control failed: the counter moved while Python held the GIL"
        advanced = 0
        for n in (16000 * 10, 16000 * 30, 16000 * 60):
            wav = clip(n)
            c0 = counter[0]
            proc.melspectrogram(wav, "float32")
            advanced = counter[0] - c0
            if advanced > 0:
                break
    finally:
        sys.setswitchinterval(old)
        stop.set()
        thread.join(timeout=30)
    assert advanced > 0, "no other thread ran while the core computed: is the GIL released?"
