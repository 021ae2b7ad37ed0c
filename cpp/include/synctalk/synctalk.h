/* The C API of the synctalk core: the SyncTalk_2D mel spectrogram and the
 * Kaldi fbank, whole clips and streams, from C, Swift or any language with a
 * C foreign-function interface. Plain C99; docs/C_API.md describes its use.
 *
 * Conventions:
 *  - Every object is an opaque handle made by a *_create function and freed
 *    by the matching *_destroy (which accepts NULL). A handle may be used by
 *    one thread at a time; a synctalk_mel or synctalk_fbank is read-only
 *    after creation and may be shared by threads.
 *  - Every function that can fail returns a synctalk_status (SYNCTALK_OK is
 *    0) and takes as its last argument a synctalk_error* that receives the
 *    code and a message saying what is wrong; pass NULL to get the code
 *    only. No function aborts, throws or writes past a buffer on a bad
 *    argument: NULL handles and buffers, capacities too small for the
 *    output, invalid options and calls in the wrong order return an error.
 *    On error, output arguments are left unchanged except handles, which
 *    are set to NULL, and no half-computed result is written to `out`.
 *  - Outputs go into buffers the caller provides, with their capacity in
 *    elements (floats).
 *  - The C API reads no environment variable. The SIMD level is the
 *    options' `simd` field; synctalk_simd_apply_environment applies the
 *    SYNCTALK_AUDIO_SIMD cap the Python package honours, if the caller
 *    wants it. Every SIMD level gives the same bits.
 */
#ifndef SYNCTALK_SYNCTALK_H_
#define SYNCTALK_SYNCTALK_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header's API; raised on any incompatible change. */
#define SYNCTALK_C_API_VERSION 1

/* The C API version the library was built with (SYNCTALK_C_API_VERSION). */
int synctalk_c_api_version(void);
/* The core's version, e.g. "0.1.0" (the Python package's version). */
const char* synctalk_version(void);

typedef enum synctalk_status {
  SYNCTALK_OK = 0,
  SYNCTALK_ERROR_NULL_POINTER = 1,      /* a required pointer argument is NULL */
  SYNCTALK_ERROR_INVALID_ARGUMENT = 2,  /* an option, count or level out of range */
  SYNCTALK_ERROR_INVALID_AUDIO = 3,     /* empty, or a NaN or infinite sample */
  SYNCTALK_ERROR_BUFFER_TOO_SMALL = 4,  /* the output capacity is below what is needed */
  SYNCTALK_ERROR_BAD_STATE = 5,         /* a call in the wrong order (e.g. after input_finished) */
  SYNCTALK_ERROR_OUT_OF_MEMORY = 6,
  SYNCTALK_ERROR_INTERNAL = 7           /* a bug: please report it with the message */
} synctalk_status;

/* The name of a status code, e.g. "SYNCTALK_ERROR_NULL_POINTER". */
const char* synctalk_status_name(synctalk_status status);

#define SYNCTALK_ERROR_MESSAGE_SIZE 512

/* Filled in by every failing call given one (status SYNCTALK_OK and an empty
 * message after a successful call). Caller-owned: no global state. */
typedef struct synctalk_error {
  synctalk_status status;
  char message[SYNCTALK_ERROR_MESSAGE_SIZE]; /* NUL-terminated, truncated if longer */
} synctalk_error;

/* The message of `error` ("" for NULL). */
const char* synctalk_error_message(const synctalk_error* error);

/* --- SIMD levels ---------------------------------------------------------- */

typedef enum synctalk_simd_level {
  SYNCTALK_SIMD_AUTO = 0, /* the best level this CPU and build support */
  SYNCTALK_SIMD_SCALAR = 1,
  SYNCTALK_SIMD_SSE2 = 2,
  SYNCTALK_SIMD_AVX2 = 3,
  SYNCTALK_SIMD_AVX512 = 4,
  SYNCTALK_SIMD_NEON = 5
} synctalk_simd_level;

/* "auto", "scalar", "sse2", "avx2", "avx512", "neon"; NULL for another value. */
const char* synctalk_simd_level_name(synctalk_simd_level level);
/* The levels compiled in and supported by this CPU, scalar first, best last:
 * up to `capacity` of them into `levels`, their number into `*count`
 * (SYNCTALK_ERROR_BUFFER_TOO_SMALL if capacity < count; 6 always suffices). */
synctalk_status synctalk_simd_levels(synctalk_simd_level* levels, size_t capacity, size_t* count,
                                     synctalk_error* error);
/* Applies the environment variable SYNCTALK_AUDIO_SIMD (scalar, sse2, avx2,
 * avx512, neon; auto or unset: no cap) to `*level`, as the Python package
 * does for every processor: *level becomes the level that would run, the
 * requested one capped by the variable. Errors for an unknown value or a
 * level this CPU lacks. */
synctalk_status synctalk_simd_apply_environment(synctalk_simd_level* level, synctalk_error* error);

/* --- The mel spectrogram (synctalk_audio.MelOptions) ------------------------ */

typedef enum synctalk_pad_mode {
  SYNCTALK_PAD_CONSTANT = 0, /* zeros: librosa >= 0.10 (the default) */
  SYNCTALK_PAD_REFLECT = 1   /* numpy.pad(mode="reflect"): librosa < 0.10 */
} synctalk_pad_mode;

/* Field for field the C++ synctalk::MelOptions and the Python MelOptions;
 * synctalk_mel_options_init sets SyncTalk_2D's values. */
typedef struct synctalk_mel_options {
  int32_t sample_rate;  /* Hz (16000) */
  int32_t n_fft;        /* 800 */
  int32_t hop_length;   /* 200 */
  int32_t win_length;   /* 800 */
  int32_t n_mels;       /* 80 */
  double fmin;          /* 55 Hz */
  double fmax;          /* 7600 Hz */
  double preemphasis;   /* 0.97 */
  double ref_level_db;  /* 20 */
  double min_level_db;  /* -100 */
  double max_abs_value; /* 4 */
  synctalk_pad_mode pad_mode;
  synctalk_simd_level simd;
} synctalk_mel_options;

synctalk_status synctalk_mel_options_init(synctalk_mel_options* options, synctalk_error* error);

/* The window, FFT plan, filterbank and SIMD lanes for one set of options. */
typedef struct synctalk_mel synctalk_mel;

/* Validates the options (SYNCTALK_ERROR_INVALID_ARGUMENT naming the first
 * bad field and its range) and builds the processor. */
synctalk_status synctalk_mel_create(const synctalk_mel_options* options, synctalk_mel** mel,
                                    synctalk_error* error);
void synctalk_mel_destroy(synctalk_mel* mel);
/* The options it was built with (simd: as requested). */
synctalk_status synctalk_mel_get_options(const synctalk_mel* mel, synctalk_mel_options* options,
                                         synctalk_error* error);
/* The SIMD level it runs (never SYNCTALK_SIMD_AUTO). */
synctalk_status synctalk_mel_simd_level(const synctalk_mel* mel, synctalk_simd_level* level,
                                        synctalk_error* error);
/* Frames of a clip of num_samples samples: 1 + num_samples / hop_length for an even n_fft. */
synctalk_status synctalk_mel_num_frames(const synctalk_mel* mel, int64_t num_samples,
                                        int64_t* num_frames, synctalk_error* error);
/* The mel spectrogram of a whole clip into `out`: n_mels x num_frames,
 * row-major (band after band, as the Python melspectrogram's (80, T)),
 * float32, on `threads` threads (1 to 256; the values do not depend on it).
 * out_capacity: floats `out` holds, at least n_mels * num_frames. */
synctalk_status synctalk_mel_compute(const synctalk_mel* mel, const float* samples,
                                     int64_t num_samples, float* out, int64_t out_capacity,
                                     int threads, synctalk_error* error);

/* A stream: samples in, each frame out as soon as no later sample can change
 * it; the frames equal synctalk_mel_compute's bit for bit for any chunking. */
typedef struct synctalk_online_mel synctalk_online_mel;

/* Shares `mel` (which may be destroyed first). threads: 1 to 256. */
synctalk_status synctalk_online_mel_create(const synctalk_mel* mel, int threads,
                                           synctalk_online_mel** online, synctalk_error* error);
void synctalk_online_mel_destroy(synctalk_online_mel* online);
/* Appends samples and computes every frame that became final. `samples`
 * may be NULL if num_samples is 0. A NaN or infinite sample appends nothing
 * (SYNCTALK_ERROR_INVALID_AUDIO); after input_finished: SYNCTALK_ERROR_BAD_STATE. */
synctalk_status synctalk_online_mel_accept_waveform(synctalk_online_mel* online,
                                                    const float* samples, int64_t num_samples,
                                                    synctalk_error* error);
/* Marks the end of input and computes the remaining (padded) frames.
 * Idempotent. With no samples received: SYNCTALK_ERROR_BAD_STATE. */
synctalk_status synctalk_online_mel_input_finished(synctalk_online_mel* online,
                                                   synctalk_error* error);
/* Frames computed and not yet popped. */
synctalk_status synctalk_online_mel_frames_pending(const synctalk_online_mel* online,
                                                   int64_t* num_frames, synctalk_error* error);
/* Moves up to out_capacity / n_mels pending frames into `out`, frame after
 * frame (n_mels floats each: the transpose of synctalk_mel_compute's layout),
 * and their number into `*popped`. SYNCTALK_ERROR_BUFFER_TOO_SMALL if frames
 * are pending and out_capacity < n_mels. */
synctalk_status synctalk_online_mel_pop_frames(synctalk_online_mel* online, float* out,
                                               int64_t out_capacity, int64_t* popped,
                                               synctalk_error* error);
/* Back to the state after creation. */
synctalk_status synctalk_online_mel_reset(synctalk_online_mel* online, synctalk_error* error);

/* --- The Kaldi fbank (synctalk_audio.FbankOptions) -------------------------- */

/* Field for field the C++ synctalk::FbankOptions and the Python FbankOptions;
 * synctalk_fbank_options_init sets WeNet's values. */
typedef struct synctalk_fbank_options {
  int32_t sample_rate;      /* Hz (16000) */
  int32_t frame_length;     /* 400 samples (25 ms) */
  int32_t frame_shift;      /* 160 samples (10 ms) */
  int32_t num_bins;         /* 80 */
  double low_freq;          /* 20 Hz */
  double high_freq;         /* 8000 Hz */
  double preemphasis;       /* 0.97 */
  int32_t remove_dc_offset; /* 1: subtract each frame's mean; 0 or 1 */
  synctalk_simd_level simd;
} synctalk_fbank_options;

synctalk_status synctalk_fbank_options_init(synctalk_fbank_options* options,
                                            synctalk_error* error);

typedef struct synctalk_fbank synctalk_fbank;

synctalk_status synctalk_fbank_create(const synctalk_fbank_options* options,
                                      synctalk_fbank** fbank, synctalk_error* error);
void synctalk_fbank_destroy(synctalk_fbank* fbank);
synctalk_status synctalk_fbank_get_options(const synctalk_fbank* fbank,
                                           synctalk_fbank_options* options,
                                           synctalk_error* error);
synctalk_status synctalk_fbank_simd_level(const synctalk_fbank* fbank, synctalk_simd_level* level,
                                          synctalk_error* error);
/* Whole frames only (snip_edges): 0 below frame_length samples. */
synctalk_status synctalk_fbank_num_frames(const synctalk_fbank* fbank, int64_t num_samples,
                                          int64_t* num_frames, synctalk_error* error);
/* The log mel energies of a whole clip (samples on the int16 scale, as
 * Kaldi) into `out`: num_frames x num_bins, row-major (frame after frame),
 * float32. out_capacity: at least num_bins * num_frames (0 is fine when no
 * frame fits). */
synctalk_status synctalk_fbank_compute(const synctalk_fbank* fbank, const float* samples,
                                       int64_t num_samples, float* out, int64_t out_capacity,
                                       int threads, synctalk_error* error);

typedef struct synctalk_online_fbank synctalk_online_fbank;

synctalk_status synctalk_online_fbank_create(const synctalk_fbank* fbank,
                                             synctalk_online_fbank** online,
                                             synctalk_error* error);
void synctalk_online_fbank_destroy(synctalk_online_fbank* online);
synctalk_status synctalk_online_fbank_accept_waveform(synctalk_online_fbank* online,
                                                      const float* samples, int64_t num_samples,
                                                      synctalk_error* error);
/* Marks the end of input; adds no frame (snip_edges). Idempotent. */
synctalk_status synctalk_online_fbank_input_finished(synctalk_online_fbank* online,
                                                     synctalk_error* error);
synctalk_status synctalk_online_fbank_frames_pending(const synctalk_online_fbank* online,
                                                     int64_t* num_frames, synctalk_error* error);
/* Frame after frame, num_bins floats each (synctalk_fbank_compute's layout). */
synctalk_status synctalk_online_fbank_pop_frames(synctalk_online_fbank* online, float* out,
                                                 int64_t out_capacity, int64_t* popped,
                                                 synctalk_error* error);
synctalk_status synctalk_online_fbank_reset(synctalk_online_fbank* online, synctalk_error* error);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SYNCTALK_SYNCTALK_H_ */
