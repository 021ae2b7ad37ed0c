/* The C API (synctalk/synctalk.h) from C99:
 *   capi_test [CLIP.f32 ...]
 * 1. Every bad argument (NULL handles and buffers, too-small capacities,
 *    invalid options, calls in the wrong order, NaN samples) returns the
 *    expected error code and a message, and leaves the handles usable.
 * 2. For each CLIP.f32 (raw float32 samples) with the C++ API's outputs
 *    beside it (CLIP.f32.mel, .mel_reflect, .fbank, written by
 *    cxx_reference): the C API's mel (both pad modes) and fbank, whole-clip
 *    at every SIMD level this CPU runs and on 1 and 3 threads, and streamed
 *    in chunks of several sizes, are bitwise the C++ API's.
 * Prints what it checked; exit status 0 if all passed, 1 otherwise. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synctalk/synctalk.h"

typedef struct Report {
  int checks;
  int failures;
} Report;

static void check(Report* report, int ok, const char* what, const char* detail) {
  ++report->checks;
  if (!ok) {
    ++report->failures;
    fprintf(stderr, "FAIL: %s%s%s\n", what, detail[0] ? ": " : "", detail);
  }
}

/* A call that must fail with `want` and a non-empty message. */
static void expect_error(Report* report, synctalk_status got, const synctalk_error* error,
                         synctalk_status want, const char* what) {
  char detail[SYNCTALK_ERROR_MESSAGE_SIZE + 128];
  int ok = got == want && error->status == want && strlen(error->message) > 0;
  snprintf(detail, sizeof(detail), "got %s (\"%s\"), expected %s", synctalk_status_name(got),
           error->message, synctalk_status_name(want));
  check(report, ok, what, ok ? "" : detail);
}

static void expect_ok(Report* report, synctalk_status got, const synctalk_error* error,
                      const char* what) {
  char detail[SYNCTALK_ERROR_MESSAGE_SIZE + 64];
  snprintf(detail, sizeof(detail), "%s: %s", synctalk_status_name(got), error->message);
  check(report, got == SYNCTALK_OK && error->message[0] == '\0', what, got ? detail : "");
}

/* --- 1. Bad arguments ------------------------------------------------------ */

static void test_bad_mel_options(Report* report) {
  synctalk_error e;
  synctalk_mel* mel = (synctalk_mel*)&e; /* must come back NULL */
  synctalk_mel_options o;
  synctalk_simd_level levels[8];
  size_t count = 0, i;
  int has_neon = 0;

  expect_error(report, synctalk_mel_options_init(NULL, &e), &e, SYNCTALK_ERROR_NULL_POINTER,
               "mel_options_init(NULL)");
  expect_error(report, synctalk_mel_create(NULL, &mel, &e), &e, SYNCTALK_ERROR_NULL_POINTER,
               "mel_create(NULL options)");
  check(report, mel == NULL, "mel_create sets the handle to NULL on error", "");
  synctalk_mel_options_init(&o, &e);
  expect_error(report, synctalk_mel_create(&o, NULL, &e), &e, SYNCTALK_ERROR_NULL_POINTER,
               "mel_create(NULL handle)");

#define BAD_MEL(field, value, name)                                                          \
  do {                                                                                      \
    synctalk_mel_options_init(&o, NULL);                                                    \
    o.field = value;                                                                        \
    mel = NULL;                                                                             \
    expect_error(report, synctalk_mel_create(&o, &mel, &e), &e,                             \
                 SYNCTALK_ERROR_INVALID_ARGUMENT, "mel_create with " name);                 \
    check(report, mel == NULL && strstr(e.message, #field) != NULL,                         \
          "the message names " #field, e.message);                                          \
  } while (0)
  BAD_MEL(sample_rate, 0, "sample_rate 0");
  BAD_MEL(n_fft, 0, "n_fft 0");
  BAD_MEL(n_fft, 1031 * 2, "n_fft with the prime factor 1031");
  BAD_MEL(hop_length, 0, "hop_length 0");
  BAD_MEL(win_length, 801, "win_length > n_fft");
  BAD_MEL(n_mels, 0, "n_mels 0");
  BAD_MEL(fmax, 8001.0, "fmax above Nyquist");
  BAD_MEL(fmin, NAN, "fmin NaN");
  BAD_MEL(preemphasis, 2.0, "preemphasis 2");
  BAD_MEL(min_level_db, 0.0, "min_level_db 0");
  BAD_MEL(max_abs_value, INFINITY, "max_abs_value inf");
  BAD_MEL(pad_mode, (synctalk_pad_mode)7, "pad_mode 7");
  BAD_MEL(simd, (synctalk_simd_level)99, "simd 99");
#undef BAD_MEL
  /* A level this CPU or build lacks: NEON on x86-64, SSE2 elsewhere. */
  synctalk_simd_levels(levels, 8, &count, NULL);
  for (i = 0; i < count; ++i) has_neon |= levels[i] == SYNCTALK_SIMD_NEON;
  synctalk_mel_options_init(&o, NULL);
  o.simd = has_neon ? SYNCTALK_SIMD_SSE2 : SYNCTALK_SIMD_NEON;
  expect_error(report, synctalk_mel_create(&o, &mel, &e), &e, SYNCTALK_ERROR_INVALID_ARGUMENT,
               "mel_create with a SIMD level this CPU lacks");
  /* No error struct: the code alone. */
  o.n_fft = -5;
  check(report, synctalk_mel_create(&o, &mel, NULL) == SYNCTALK_ERROR_INVALID_ARGUMENT,
        "mel_create(bad options, error NULL) returns the code", "");

  expect_error(report, synctalk_simd_levels(NULL, 8, &count, &e), &e,
               SYNCTALK_ERROR_NULL_POINTER, "simd_levels(NULL levels)");
  expect_error(report, synctalk_simd_levels(levels, 8, NULL, &e), &e,
               SYNCTALK_ERROR_NULL_POINTER, "simd_levels(NULL count)");
  expect_error(report, synctalk_simd_levels(levels, 0, &count, &e), &e,
               SYNCTALK_ERROR_BUFFER_TOO_SMALL, "simd_levels(capacity 0)");
  expect_error(report, synctalk_simd_apply_environment(NULL, &e), &e,
               SYNCTALK_ERROR_NULL_POINTER, "simd_apply_environment(NULL)");
  check(report, synctalk_simd_level_name((synctalk_simd_level)42) == NULL,
        "simd_level_name of a non-level is NULL", "");
  check(report, strcmp(synctalk_error_message(NULL), "") == 0, "error_message(NULL) is \"\"", "");
}

static void test_bad_mel_calls(Report* report) {
  synctalk_error e;
  synctalk_mel_options o;
  synctalk_mel* mel = NULL;
  synctalk_online_mel* online = (synctalk_online_mel*)&e;
  float x[1000], out[80 * 6], tiny[79];
  int64_t frames = -1, popped = -1, pending = -1;
  int i;
  synctalk_simd_level level;

  for (i = 0; i < 1000; ++i) x[i] = 0.1f * (float)sin(0.05 * i);
  synctalk_mel_options_init(&o, NULL);
  expect_ok(report, synctalk_mel_create(&o, &mel, &e), &e, "mel_create(defaults)");
  if (mel == NULL) return;

  expect_error(report, synctalk_mel_num_frames(NULL, 10, &frames, &e), &e,
               SYNCTALK_ERROR_NULL_POINTER, "mel_num_frames(NULL mel)");
  expect_error(report, synctalk_mel_num_frames(mel, 10, NULL, &e), &e,
               SYNCTALK_ERROR_NULL_POINTER, "mel_num_frames(NULL out)");
  expect_error(report, synctalk_mel_num_frames(mel, -1, &frames, &e), &e,
               SYNCTALK_ERROR_INVALID_ARGUMENT, "mel_num_frames(-1 samples)");
  expect_ok(report, synctalk_mel_num_frames(mel, 1000, &frames, &e), &e, "mel_num_frames(1000)");
  check(report, frames == 6, "1000 samples make 6 mel frames", "");
  expect_error(report, synctalk_mel_simd_level(NULL, &level, &e), &e,
               SYNCTALK_ERROR_NULL_POINTER, "mel_simd_level(NULL mel)");
  expect_error(report, synctalk_mel_get_options(mel, NULL, &e), &e, SYNCTALK_ERROR_NULL_POINTER,
               "mel_get_options(NULL options)");

  expect_error(report, synctalk_mel_compute(NULL, x, 1000, out, 480, 1, &e), &e,
               SYNCTALK_ERROR_NULL_POINTER, "mel_compute(NULL mel)");
  expect_error(report, synctalk_mel_compute(mel, NULL, 1000, out, 480, 1, &e), &e,
               SYNCTALK_ERROR_NULL_POINTER, "mel_compute(NULL samples)");
  expect_error(report, synctalk_mel_compute(mel, x, 1000, NULL, 480, 1, &e), &e,
               SYNCTALK_ERROR_NULL_POINTER, "mel_compute(NULL out)");
  expect_error(report, synctalk_mel_compute(mel, x, 1000, out, 479, 1, &e), &e,
               SYNCTALK_ERROR_BUFFER_TOO_SMALL, "mel_compute(capacity one float short)");
  expect_error(report, synctalk_mel_compute(mel, x, 0, out, 480, 1, &e), &e,
               SYNCTALK_ERROR_INVALID_AUDIO, "mel_compute(0 samples)");
  expect_error(report, synctalk_mel_compute(mel, x, -3, out, 480, 1, &e), &e,
               SYNCTALK_ERROR_INVALID_AUDIO, "mel_compute(-3 samples)");
  expect_error(report, synctalk_mel_compute(mel, x, 1000, out, 480, 0, &e), &e,
               SYNCTALK_ERROR_INVALID_ARGUMENT, "mel_compute(0 threads)");
  expect_error(report, synctalk_mel_compute(mel, x, 1000, out, 480, 257, &e), &e,
               SYNCTALK_ERROR_INVALID_ARGUMENT, "mel_compute(257 threads)");
  for (i = 0; i < 480; ++i) out[i] = 123.0f;
  x[500] = NAN;
  expect_error(report, synctalk_mel_compute(mel, x, 1000, out, 480, 1, &e), &e,
               SYNCTALK_ERROR_INVALID_AUDIO, "mel_compute(NaN sample)");
  check(report, strstr(e.message, "sample 500") != NULL, "the message names sample 500", e.message);
  for (i = 0; i < 480 && out[i] == 123.0f; ++i) continue;
  check(report, i == 480, "a failed mel_compute writes nothing", "");
  x[500] = INFINITY;
  expect_error(report, synctalk_online_mel_create(NULL, 1, &online, &e), &e,
               SYNCTALK_ERROR_NULL_POINTER, "online_mel_create(NULL mel)");
  check(report, online == NULL, "online_mel_create sets the handle to NULL on error", "");
  expect_error(report, synctalk_online_mel_create(mel, 0, &online, &e), &e,
               SYNCTALK_ERROR_INVALID_ARGUMENT, "online_mel_create(0 threads)");
  expect_error(report, synctalk_online_mel_create(mel, 1, NULL, &e), &e,
               SYNCTALK_ERROR_NULL_POINTER, "online_mel_create(NULL handle)");
  expect_ok(report, synctalk_online_mel_create(mel, 1, &online, &e), &e, "online_mel_create");
  /* The stream shares the processor: destroying the mel first is fine. */
  synctalk_mel_destroy(mel);
  if (online == NULL) return;

  expect_error(report, synctalk_online_mel_input_finished(online, &e), &e,
               SYNCTALK_ERROR_BAD_STATE, "online_mel_input_finished before any sample");
  expect_error(report, synctalk_online_mel_accept_waveform(NULL, x, 10, &e), &e,
               SYNCTALK_ERROR_NULL_POINTER, "online_mel_accept_waveform(NULL online)");
  expect_error(report, synctalk_online_mel_accept_waveform(online, NULL, 10, &e), &e,
               SYNCTALK_ERROR_NULL_POINTER, "online_mel_accept_waveform(NULL samples)");
  expect_ok(report, synctalk_online_mel_accept_waveform(online, NULL, 0, &e), &e,
            "online_mel_accept_waveform(NULL, 0 samples)");
  expect_error(report, synctalk_online_mel_accept_waveform(online, x, -1, &e), &e,
               SYNCTALK_ERROR_INVALID_ARGUMENT, "online_mel_accept_waveform(-1 samples)");
  expect_error(report, synctalk_online_mel_accept_waveform(online, x, 1000, &e), &e,
               SYNCTALK_ERROR_INVALID_AUDIO, "online_mel_accept_waveform(inf sample)");
  check(report, strstr(e.message, "sample 500") != NULL, "the message names sample 500", e.message);
  expect_ok(report, synctalk_online_mel_accept_waveform(online, x, 500, &e), &e,
            "online_mel_accept_waveform(500 finite samples) after the error");
  expect_ok(report, synctalk_online_mel_input_finished(online, &e), &e, "online_mel_input_finished");
  expect_ok(report, synctalk_online_mel_input_finished(online, &e), &e,
            "online_mel_input_finished twice");
  expect_error(report, synctalk_online_mel_accept_waveform(online, x, 10, &e), &e,
               SYNCTALK_ERROR_BAD_STATE, "online_mel_accept_waveform after input_finished");
  expect_error(report, synctalk_online_mel_frames_pending(online, NULL, &e), &e,
               SYNCTALK_ERROR_NULL_POINTER, "online_mel_frames_pending(NULL out)");
  expect_ok(report, synctalk_online_mel_frames_pending(online, &pending, &e), &e,
            "online_mel_frames_pending");
  check(report, pending == 3, "500 samples make 3 pending mel frames", "");
  expect_error(report, synctalk_online_mel_pop_frames(online, tiny, 79, &popped, &e), &e,
               SYNCTALK_ERROR_BUFFER_TOO_SMALL, "online_mel_pop_frames(79 floats)");
  expect_error(report, synctalk_online_mel_pop_frames(online, NULL, 480, &popped, &e), &e,
               SYNCTALK_ERROR_NULL_POINTER, "online_mel_pop_frames(NULL out)");
  expect_error(report, synctalk_online_mel_pop_frames(online, out, 480, NULL, &e), &e,
               SYNCTALK_ERROR_NULL_POINTER, "online_mel_pop_frames(NULL popped)");
  expect_error(report, synctalk_online_mel_pop_frames(online, out, -80, &popped, &e), &e,
               SYNCTALK_ERROR_INVALID_ARGUMENT, "online_mel_pop_frames(capacity -80)");
  expect_ok(report, synctalk_online_mel_pop_frames(online, out, 80 * 2 + 79, &popped, &e), &e,
            "online_mel_pop_frames(2.99 frames of room)");
  check(report, popped == 2, "a capacity of 2.99 frames pops 2", "");
  expect_ok(report, synctalk_online_mel_pop_frames(online, out, 480, &popped, &e), &e,
            "online_mel_pop_frames(the rest)");
  check(report, popped == 1, "then the last one", "");
  expect_ok(report, synctalk_online_mel_pop_frames(online, NULL, 0, &popped, &e), &e,
            "online_mel_pop_frames(NULL, 0) with nothing pending");
  check(report, popped == 0, "nothing pending pops 0", "");
  expect_error(report, synctalk_online_mel_reset(NULL, &e), &e, SYNCTALK_ERROR_NULL_POINTER,
               "online_mel_reset(NULL)");
  expect_ok(report, synctalk_online_mel_reset(online, &e), &e, "online_mel_reset");
  expect_ok(report, synctalk_online_mel_accept_waveform(online, x, 10, &e), &e,
            "online_mel_accept_waveform after reset");
  synctalk_online_mel_destroy(online);
  synctalk_online_mel_destroy(NULL);
  synctalk_mel_destroy(NULL);
}

static void test_bad_fbank(Report* report) {
  synctalk_error e;
  synctalk_fbank_options o;
  synctalk_fbank* fbank = NULL;
  synctalk_online_fbank* online = NULL;
  float x[1000], out[80 * 4], tiny[79];
  int64_t frames = -1, popped = -1;
  int i;

  for (i = 0; i < 1000; ++i) x[i] = 3000.0f * (float)sin(0.05 * i);
  expect_error(report, synctalk_fbank_options_init(NULL, &e), &e, SYNCTALK_ERROR_NULL_POINTER,
               "fbank_options_init(NULL)");
#define BAD_FBANK(field, value, name)                                                        \
  do {                                                                                      \
    synctalk_fbank_options_init(&o, NULL);                                                  \
    o.field = value;                                                                        \
    fbank = NULL;                                                                           \
    expect_error(report, synctalk_fbank_create(&o, &fbank, &e), &e,                         \
                 SYNCTALK_ERROR_INVALID_ARGUMENT, "fbank_create with " name);               \
    check(report, fbank == NULL && strstr(e.message, #field) != NULL,                       \
          "the message names " #field, e.message);                                          \
  } while (0)
  BAD_FBANK(sample_rate, 999, "sample_rate 999");
  BAD_FBANK(frame_length, 1, "frame_length 1");
  BAD_FBANK(frame_shift, 0, "frame_shift 0");
  BAD_FBANK(num_bins, 3, "num_bins 3");
  BAD_FBANK(high_freq, 8000.5, "high_freq above Nyquist");
  BAD_FBANK(low_freq, -1.0, "low_freq -1");
  BAD_FBANK(preemphasis, NAN, "preemphasis NaN");
  BAD_FBANK(remove_dc_offset, 2, "remove_dc_offset 2");
  BAD_FBANK(simd, (synctalk_simd_level)-1, "simd -1");
#undef BAD_FBANK
  synctalk_fbank_options_init(&o, NULL);
  expect_error(report, synctalk_fbank_create(NULL, &fbank, &e), &e, SYNCTALK_ERROR_NULL_POINTER,
               "fbank_create(NULL options)");
  expect_error(report, synctalk_fbank_create(&o, NULL, &e), &e, SYNCTALK_ERROR_NULL_POINTER,
               "fbank_create(NULL handle)");
  expect_ok(report, synctalk_fbank_create(&o, &fbank, &e), &e, "fbank_create(defaults)");
  if (fbank == NULL) return;
  expect_ok(report, synctalk_fbank_num_frames(fbank, 1000, &frames, &e), &e, "fbank_num_frames");
  check(report, frames == 4, "1000 samples make 4 fbank frames", "");
  expect_error(report, synctalk_fbank_num_frames(NULL, 1000, &frames, &e), &e,
               SYNCTALK_ERROR_NULL_POINTER, "fbank_num_frames(NULL fbank)");
  expect_error(report, synctalk_fbank_compute(NULL, x, 1000, out, 320, 1, &e), &e,
               SYNCTALK_ERROR_NULL_POINTER, "fbank_compute(NULL fbank)");
  expect_error(report, synctalk_fbank_compute(fbank, NULL, 1000, out, 320, 1, &e), &e,
               SYNCTALK_ERROR_NULL_POINTER, "fbank_compute(NULL samples)");
  expect_error(report, synctalk_fbank_compute(fbank, x, 1000, NULL, 320, 1, &e), &e,
               SYNCTALK_ERROR_NULL_POINTER, "fbank_compute(NULL out)");
  expect_error(report, synctalk_fbank_compute(fbank, x, 1000, out, 319, 1, &e), &e,
               SYNCTALK_ERROR_BUFFER_TOO_SMALL, "fbank_compute(capacity one float short)");
  expect_error(report, synctalk_fbank_compute(fbank, x, 1000, out, 320, -1, &e), &e,
               SYNCTALK_ERROR_INVALID_ARGUMENT, "fbank_compute(-1 threads)");
  expect_ok(report, synctalk_fbank_compute(fbank, x, 399, NULL, 0, 1, &e), &e,
            "fbank_compute(399 samples: no frame, no buffer)");
  x[700] = NAN;
  expect_error(report, synctalk_fbank_compute(fbank, x, 1000, out, 320, 1, &e), &e,
               SYNCTALK_ERROR_INVALID_AUDIO, "fbank_compute(NaN sample)");
  check(report, strstr(e.message, "sample 700") != NULL, "the message names sample 700", e.message);

  expect_error(report, synctalk_online_fbank_create(NULL, &online, &e), &e,
               SYNCTALK_ERROR_NULL_POINTER, "online_fbank_create(NULL fbank)");
  expect_ok(report, synctalk_online_fbank_create(fbank, &online, &e), &e, "online_fbank_create");
  synctalk_fbank_destroy(fbank);
  if (online == NULL) return;
  expect_error(report, synctalk_online_fbank_accept_waveform(online, x, 1000, &e), &e,
               SYNCTALK_ERROR_INVALID_AUDIO, "online_fbank_accept_waveform(NaN sample)");
  expect_error(report, synctalk_online_fbank_accept_waveform(online, NULL, 5, &e), &e,
               SYNCTALK_ERROR_NULL_POINTER, "online_fbank_accept_waveform(NULL samples)");
  expect_ok(report, synctalk_online_fbank_accept_waveform(online, x, 700, &e), &e,
            "online_fbank_accept_waveform(700 samples)");
  expect_error(report, synctalk_online_fbank_pop_frames(online, tiny, 79, &popped, &e), &e,
               SYNCTALK_ERROR_BUFFER_TOO_SMALL, "online_fbank_pop_frames(79 floats)");
  expect_error(report, synctalk_online_fbank_pop_frames(NULL, out, 320, &popped, &e), &e,
               SYNCTALK_ERROR_NULL_POINTER, "online_fbank_pop_frames(NULL online)");
  expect_ok(report, synctalk_online_fbank_input_finished(online, &e), &e,
            "online_fbank_input_finished");
  expect_error(report, synctalk_online_fbank_accept_waveform(online, x, 10, &e), &e,
               SYNCTALK_ERROR_BAD_STATE, "online_fbank_accept_waveform after input_finished");
  expect_ok(report, synctalk_online_fbank_pop_frames(online, out, 320, &popped, &e), &e,
            "online_fbank_pop_frames");
  check(report, popped == 2, "700 samples make 2 fbank frames", "");
  expect_error(report, synctalk_online_fbank_input_finished(NULL, &e), &e,
               SYNCTALK_ERROR_NULL_POINTER, "online_fbank_input_finished(NULL)");
  synctalk_online_fbank_destroy(online);
  synctalk_fbank_destroy(NULL);
  synctalk_online_fbank_destroy(NULL);
}

static void test_basics(Report* report) {
  synctalk_error e;
  synctalk_simd_level levels[8], level = SYNCTALK_SIMD_AUTO;
  size_t count = 0;
  char detail[256];
  const char* message;
  synctalk_mel_options o;
  check(report, synctalk_c_api_version() == SYNCTALK_C_API_VERSION,
        "the library's C API version is the header's", "");
  check(report, strlen(synctalk_version()) > 0, "synctalk_version is not empty", "");
  expect_ok(report, synctalk_simd_levels(levels, 8, &count, &e), &e, "simd_levels");
  check(report, count >= 1 && levels[0] == SYNCTALK_SIMD_SCALAR, "scalar is the first level", "");
  expect_ok(report, synctalk_simd_apply_environment(&level, &e), &e, "simd_apply_environment");
  snprintf(detail, sizeof(detail), "%s", synctalk_simd_level_name(level));
  check(report, level != SYNCTALK_SIMD_AUTO, "simd_apply_environment resolves auto", detail);
  /* A message longer than the buffer is truncated and NUL-terminated. */
  synctalk_mel_options_init(&o, NULL);
  o.fmax = 1e300;
  synctalk_mel_create(&o, NULL, &e);
  message = synctalk_error_message(&e);
  check(report, strlen(message) < SYNCTALK_ERROR_MESSAGE_SIZE, "messages fit their buffer", "");
}

/* --- 2. The golden clips: the C API == the C++ API, bit for bit ------------ */

/* Reads a whole file of float32 values; NULL (and a message) on failure. */
static float* read_floats(const char* path, long* count) {
  FILE* file = fopen(path, "rb");
  float* values;
  long bytes;
  if (file == NULL || fseek(file, 0, SEEK_END) != 0 || (bytes = ftell(file)) < 0 ||
      fseek(file, 0, SEEK_SET) != 0) {
    fprintf(stderr, "capi_test: cannot read %s\n", path);
    if (file != NULL) fclose(file);
    return NULL;
  }
  *count = bytes / (long)sizeof(float);
  values = (float*)malloc((size_t)(*count > 0 ? *count : 1) * sizeof(float));
  if (values == NULL || fread(values, sizeof(float), (size_t)*count, file) != (size_t)*count) {
    fprintf(stderr, "capi_test: cannot read %s\n", path);
    free(values);
    fclose(file);
    return NULL;
  }
  fclose(file);
  return values;
}

static int same_bytes(const float* a, const float* b, long count) {
  return memcmp(a, b, (size_t)count * sizeof(float)) == 0;
}

/* Streams `x` through `online` in chunks of `chunk`, popping after each; the
 * frames (frame-major) go into `got` (capacity floats). Returns the frames. */
static long stream_mel(synctalk_online_mel* online, const float* x, long n, long chunk, float* got,
                       long capacity, synctalk_error* e) {
  long at = 0, frames = 0;
  int64_t popped = 0;
  synctalk_online_mel_reset(online, e);
  for (at = 0; at < n; at += chunk) {
    long count = n - at < chunk ? n - at : chunk;
    if (synctalk_online_mel_accept_waveform(online, x + at, count, e) != SYNCTALK_OK) return -1;
    if (synctalk_online_mel_pop_frames(online, got + frames * 80, capacity - frames * 80, &popped,
                                       e) != SYNCTALK_OK) {
      return -1;
    }
    frames += (long)popped;
  }
  if (synctalk_online_mel_input_finished(online, e) != SYNCTALK_OK) return -1;
  if (synctalk_online_mel_pop_frames(online, got + frames * 80, capacity - frames * 80, &popped,
                                     e) != SYNCTALK_OK) {
    return -1;
  }
  return frames + (long)popped;
}

static long stream_fbank(synctalk_online_fbank* online, const float* x, long n, long chunk,
                         float* got, long capacity, synctalk_error* e) {
  long at = 0, frames = 0;
  int64_t popped = 0;
  synctalk_online_fbank_reset(online, e);
  for (at = 0; at < n; at += chunk) {
    long count = n - at < chunk ? n - at : chunk;
    if (synctalk_online_fbank_accept_waveform(online, x + at, count, e) != SYNCTALK_OK) return -1;
    if (synctalk_online_fbank_pop_frames(online, got + frames * 80, capacity - frames * 80,
                                         &popped, e) != SYNCTALK_OK) {
      return -1;
    }
    frames += (long)popped;
  }
  if (synctalk_online_fbank_input_finished(online, e) != SYNCTALK_OK) return -1;
  return frames;
}

static const long kChunks[] = {160, 333, 4001};

/* The mel of one clip, one pad mode, at every level: whole-clip (1 and 3
 * threads) and streamed, against the C++ API's bytes `want` (80 x T). */
static void check_mel_clip(Report* report, const char* name, const float* x, long n,
                           const float* want, long want_count, synctalk_pad_mode pad,
                           const synctalk_simd_level* levels, size_t num_levels) {
  synctalk_error e;
  size_t li;
  char what[512];
  const char* pad_name = pad == SYNCTALK_PAD_REFLECT ? "reflect" : "constant";
  for (li = 0; li < num_levels; ++li) {
    synctalk_mel_options o;
    synctalk_mel* mel = NULL;
    synctalk_online_mel* online = NULL;
    synctalk_simd_level ran = SYNCTALK_SIMD_AUTO;
    int64_t frames = 0;
    float *got, *streamed;
    int threads, c;
    long t, m, count;
    synctalk_mel_options_init(&o, NULL);
    o.pad_mode = pad;
    o.simd = levels[li];
    snprintf(what, sizeof(what), "%s: mel_create pad %s simd %s", name, pad_name,
             synctalk_simd_level_name(levels[li]));
    expect_ok(report, synctalk_mel_create(&o, &mel, &e), &e, what);
    if (mel == NULL) continue;
    synctalk_mel_simd_level(mel, &ran, NULL);
    snprintf(what, sizeof(what), "%s: mel simd %s runs %s", name,
             synctalk_simd_level_name(levels[li]), synctalk_simd_level_name(ran));
    check(report, ran == levels[li], what, "");
    synctalk_mel_num_frames(mel, n, &frames, NULL);
    snprintf(what, sizeof(what), "%s: mel frames %ld x 80 == the C++ API's %ld floats", name,
             (long)frames, want_count);
    check(report, frames * 80 == want_count, what, "");
    if (frames * 80 != want_count) {
      synctalk_mel_destroy(mel);
      continue;
    }
    got = (float*)malloc((size_t)want_count * sizeof(float));
    streamed = (float*)malloc((size_t)want_count * sizeof(float));
    for (threads = 1; threads <= 3; threads += 2) {
      snprintf(what, sizeof(what), "%s: C mel == C++ mel, pad %s, simd %s, %d threads", name,
               pad_name, synctalk_simd_level_name(ran), threads);
      expect_ok(report, synctalk_mel_compute(mel, x, n, got, want_count, threads, &e), &e, what);
      check(report, same_bytes(got, want, want_count), what, "");
    }
    synctalk_online_mel_create(mel, 1, &online, NULL);
    for (c = 0; online != NULL && c < 3; ++c) {
      snprintf(what, sizeof(what),
               "%s: C online mel == C++ mel, pad %s, simd %s, chunks of %ld", name, pad_name,
               synctalk_simd_level_name(ran), kChunks[c]);
      count = stream_mel(online, x, n, kChunks[c], streamed, want_count, &e);
      check(report, count == frames, what, e.message);
      if (count != frames) continue;
      /* streamed: (T, 80); want: (80, T). */
      for (t = 0; t < frames; ++t) {
        for (m = 0; m < 80; ++m) got[m * frames + t] = streamed[t * 80 + m];
      }
      check(report, same_bytes(got, want, want_count), what, "");
    }
    synctalk_online_mel_destroy(online);
    synctalk_mel_destroy(mel);
    free(got);
    free(streamed);
  }
}

static void check_fbank_clip(Report* report, const char* name, const float* x, long n,
                             const float* want, long want_count, const synctalk_simd_level* levels,
                             size_t num_levels) {
  synctalk_error e;
  size_t li;
  char what[512];
  float* wave = (float*)malloc((size_t)n * sizeof(float));
  float* got = (float*)malloc((size_t)(want_count > 0 ? want_count : 1) * sizeof(float));
  long i;
  for (i = 0; i < n; ++i) wave[i] = x[i] * 32768.0f; /* as cxx_reference */
  for (li = 0; li < num_levels; ++li) {
    synctalk_fbank_options o;
    synctalk_fbank* fbank = NULL;
    synctalk_online_fbank* online = NULL;
    int64_t frames = 0;
    int c;
    long count;
    synctalk_fbank_options_init(&o, NULL);
    o.simd = levels[li];
    snprintf(what, sizeof(what), "%s: fbank_create simd %s", name,
             synctalk_simd_level_name(levels[li]));
    expect_ok(report, synctalk_fbank_create(&o, &fbank, &e), &e, what);
    if (fbank == NULL) continue;
    synctalk_fbank_num_frames(fbank, n, &frames, NULL);
    snprintf(what, sizeof(what), "%s: fbank frames %ld x 80 == the C++ API's %ld floats", name,
             (long)frames, want_count);
    check(report, frames * 80 == want_count, what, "");
    if (frames * 80 == want_count) {
      snprintf(what, sizeof(what), "%s: C fbank == C++ fbank, simd %s, 2 threads", name,
               synctalk_simd_level_name(levels[li]));
      expect_ok(report, synctalk_fbank_compute(fbank, wave, n, got, want_count, 2, &e), &e, what);
      check(report, same_bytes(got, want, want_count), what, "");
      synctalk_online_fbank_create(fbank, &online, NULL);
      for (c = 0; online != NULL && c < 3; ++c) {
        snprintf(what, sizeof(what), "%s: C online fbank == C++ fbank, simd %s, chunks of %ld",
                 name, synctalk_simd_level_name(levels[li]), kChunks[c]);
        count = stream_fbank(online, wave, n, kChunks[c], got, want_count, &e);
        check(report, count == frames && same_bytes(got, want, want_count), what, e.message);
      }
      synctalk_online_fbank_destroy(online);
    }
    synctalk_fbank_destroy(fbank);
  }
  free(wave);
  free(got);
}

static int check_clip(Report* report, const char* path, const synctalk_simd_level* levels,
                      size_t num_levels) {
  char reference[4096];
  const char* suffixes[] = {".mel", ".mel_reflect", ".fbank"};
  float* want[3] = {NULL, NULL, NULL};
  long counts[3] = {0, 0, 0}, n = 0;
  float* x = read_floats(path, &n);
  int i, ok = x != NULL && n > 0;
  const char* name = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
  for (i = 0; ok && i < 3; ++i) {
    snprintf(reference, sizeof(reference), "%s%s", path, suffixes[i]);
    want[i] = read_floats(reference, &counts[i]);
    ok = want[i] != NULL;
  }
  if (ok) {
    check_mel_clip(report, name, x, n, want[0], counts[0], SYNCTALK_PAD_CONSTANT, levels,
                   num_levels);
    check_mel_clip(report, name, x, n, want[1], counts[1], SYNCTALK_PAD_REFLECT, levels,
                   num_levels);
    check_fbank_clip(report, name, x, n, want[2], counts[2], levels, num_levels);
    printf("capi_test: %s (%ld samples): C mel, mel reflect, fbank == C++ (%ld, %ld, %ld floats)\n",
           name, n, counts[0], counts[1], counts[2]);
  }
  check(report, ok, "read the clip and its C++ references", path);
  free(x);
  for (i = 0; i < 3; ++i) free(want[i]);
  return ok;
}

int main(int argc, char** argv) {
  Report report = {0, 0};
  synctalk_simd_level levels[8];
  size_t num_levels = 0, i;
  int clips = 0, k;
  char names[128] = "";

  test_basics(&report);
  test_bad_mel_options(&report);
  test_bad_mel_calls(&report);
  test_bad_fbank(&report);
  printf("capi_test: %d bad-argument and basic checks, %d failed\n", report.checks,
         report.failures);

  synctalk_simd_levels(levels, 8, &num_levels, NULL);
  for (i = 0; i < num_levels; ++i) {
    strcat(names, i ? ", " : "");
    strcat(names, synctalk_simd_level_name(levels[i]));
  }
  printf("capi_test: synctalk %s, C API %d, SIMD levels %s\n", synctalk_version(),
         synctalk_c_api_version(), names);
  for (k = 1; k < argc; ++k) clips += check_clip(&report, argv[k], levels, num_levels);
  printf("capi_test: %d golden clips, every level (%s), whole and streamed\n", clips, names);
  if (report.failures == 0) {
    printf("capi_test: all %d checks passed\n", report.checks);
    return 0;
  }
  printf("capi_test: FAILED, %d of %d checks\n", report.failures, report.checks);
  return 1;
}
