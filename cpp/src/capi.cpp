// The C API (include/synctalk/synctalk.h) over the C++ core. Every entry
// point catches every exception: none crosses into C.
#include "synctalk/synctalk.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>

#include "synctalk/fbank.h"
#include "synctalk/lanes.h"
#include "synctalk/mel.h"
#include "synctalk/online.h"
#include "synctalk/options.h"

#ifndef SYNCTALK_VERSION_STRING
#define SYNCTALK_VERSION_STRING "0.0.0+unknown"
#endif

struct synctalk_mel {
  synctalk_mel_options options;
  std::shared_ptr<const synctalk::MelProcessor> processor;
};

struct synctalk_online_mel {
  std::shared_ptr<const synctalk::MelProcessor> processor;  // outlives `online`
  synctalk::OnlineMel online;
  synctalk_online_mel(std::shared_ptr<const synctalk::MelProcessor> p, int threads)
      : processor(std::move(p)), online(*processor, threads) {}
};

struct synctalk_fbank {
  synctalk_fbank_options options;
  std::shared_ptr<const synctalk::FbankProcessor> processor;
};

struct synctalk_online_fbank {
  std::shared_ptr<const synctalk::FbankProcessor> processor;  // outlives `online`
  synctalk::OnlineFbank online;
  explicit synctalk_online_fbank(std::shared_ptr<const synctalk::FbankProcessor> p)
      : processor(std::move(p)), online(*processor) {}
};

namespace {

// An error to report: thrown inside the entry points, caught by Guard.
struct Failure {
  synctalk_status status;
  std::string message;
};

[[noreturn]] void Fail(synctalk_status status, const std::string& message) {
  throw Failure{status, message};
}

synctalk_status Report(synctalk_error* error, synctalk_status status, const char* message) {
  if (error != nullptr) {
    error->status = status;
    std::snprintf(error->message, sizeof(error->message), "%s", message);
  }
  return status;
}

// Runs `body`, turning every exception into a status and message. `audio`:
// the std::invalid_argument the core throws here is about the samples.
template <typename Body>
synctalk_status Guard(synctalk_error* error, bool audio, Body body) {
  try {
    body();
    return Report(error, SYNCTALK_OK, "");
  } catch (const Failure& f) {
    return Report(error, f.status, f.message.c_str());
  } catch (const std::invalid_argument& e) {
    return Report(error, audio ? SYNCTALK_ERROR_INVALID_AUDIO : SYNCTALK_ERROR_INVALID_ARGUMENT,
                  e.what());
  } catch (const std::bad_alloc&) {
    return Report(error, SYNCTALK_ERROR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return Report(error, SYNCTALK_ERROR_INTERNAL, e.what());
  } catch (...) {
    return Report(error, SYNCTALK_ERROR_INTERNAL, "unknown C++ exception");
  }
}

void NotNull(const void* pointer, const char* function, const char* name) {
  if (pointer == nullptr) {
    Fail(SYNCTALK_ERROR_NULL_POINTER, std::string(function) + ": " + name + " is NULL");
  }
}

synctalk::SimdLevel ToLevel(synctalk_simd_level level, const char* what) {
  switch (level) {
    case SYNCTALK_SIMD_AUTO: return synctalk::SimdLevel::kAuto;
    case SYNCTALK_SIMD_SCALAR: return synctalk::SimdLevel::kScalar;
    case SYNCTALK_SIMD_SSE2: return synctalk::SimdLevel::kSse2;
    case SYNCTALK_SIMD_AVX2: return synctalk::SimdLevel::kAvx2;
    case SYNCTALK_SIMD_AVX512: return synctalk::SimdLevel::kAvx512;
    case SYNCTALK_SIMD_NEON: return synctalk::SimdLevel::kNeon;
  }
  Fail(SYNCTALK_ERROR_INVALID_ARGUMENT,
       std::string(what) + "=" + std::to_string(static_cast<int>(level)) +
           " is not a synctalk_simd_level (SYNCTALK_SIMD_AUTO ... SYNCTALK_SIMD_NEON, 0 to 5)");
}

synctalk_simd_level FromLevel(synctalk::SimdLevel level) {
  switch (level) {
    case synctalk::SimdLevel::kAuto: return SYNCTALK_SIMD_AUTO;
    case synctalk::SimdLevel::kScalar: return SYNCTALK_SIMD_SCALAR;
    case synctalk::SimdLevel::kSse2: return SYNCTALK_SIMD_SSE2;
    case synctalk::SimdLevel::kAvx2: return SYNCTALK_SIMD_AVX2;
    case synctalk::SimdLevel::kAvx512: return SYNCTALK_SIMD_AVX512;
    case synctalk::SimdLevel::kNeon: return SYNCTALK_SIMD_NEON;
  }
  return SYNCTALK_SIMD_SCALAR;
}

synctalk::MelOptions ToCore(const synctalk_mel_options& c) {
  synctalk::MelOptions o;
  o.sample_rate = c.sample_rate;
  o.n_fft = c.n_fft;
  o.hop_length = c.hop_length;
  o.win_length = c.win_length;
  o.n_mels = c.n_mels;
  o.fmin = c.fmin;
  o.fmax = c.fmax;
  o.preemphasis = c.preemphasis;
  o.ref_level_db = c.ref_level_db;
  o.min_level_db = c.min_level_db;
  o.max_abs_value = c.max_abs_value;
  switch (c.pad_mode) {
    case SYNCTALK_PAD_CONSTANT: o.pad_mode = synctalk::PadMode::kConstant; break;
    case SYNCTALK_PAD_REFLECT: o.pad_mode = synctalk::PadMode::kReflect; break;
    default:
      Fail(SYNCTALK_ERROR_INVALID_ARGUMENT,
           "invalid mel option pad_mode=" + std::to_string(static_cast<int>(c.pad_mode)) +
               ": expected SYNCTALK_PAD_CONSTANT (0) or SYNCTALK_PAD_REFLECT (1)");
  }
  o.simd = ToLevel(c.simd, "invalid mel option simd");
  return o;
}

synctalk::FbankOptions ToCore(const synctalk_fbank_options& c) {
  synctalk::FbankOptions o;
  o.sample_rate = c.sample_rate;
  o.frame_length = c.frame_length;
  o.frame_shift = c.frame_shift;
  o.num_bins = c.num_bins;
  o.low_freq = c.low_freq;
  o.high_freq = c.high_freq;
  o.preemphasis = c.preemphasis;
  if (c.remove_dc_offset != 0 && c.remove_dc_offset != 1) {
    Fail(SYNCTALK_ERROR_INVALID_ARGUMENT, "invalid fbank option remove_dc_offset=" +
                                              std::to_string(c.remove_dc_offset) +
                                              ": expected 0 or 1");
  }
  o.remove_dc_offset = c.remove_dc_offset == 1;
  o.simd = ToLevel(c.simd, "invalid fbank option simd");
  return o;
}

void CheckThreadCount(int threads, const char* function) {
  if (threads < 1 || threads > synctalk::kMaxThreads) {
    Fail(SYNCTALK_ERROR_INVALID_ARGUMENT, std::string(function) + ": threads must be in [1, " +
                                              std::to_string(synctalk::kMaxThreads) + "], got " +
                                              std::to_string(threads));
  }
}

void CheckCount(int64_t count, const char* function, const char* name) {
  if (count < 0) {
    Fail(SYNCTALK_ERROR_INVALID_ARGUMENT,
         std::string(function) + ": " + name + " must be >= 0, got " + std::to_string(count));
  }
}

void CheckCapacity(int64_t capacity, int64_t needed, const char* function, const char* shape) {
  if (capacity < needed) {
    Fail(SYNCTALK_ERROR_BUFFER_TOO_SMALL, std::string(function) + ": out_capacity " +
                                              std::to_string(capacity) + " < " +
                                              std::to_string(needed) + " floats (" + shape +
                                              "); pass a larger buffer");
  }
}

// The frames of a stream popped into `out` (shared by the two online types).
template <typename Online>
void PopInto(Online& online, int width, float* out, int64_t capacity, int64_t* popped,
             const char* function) {
  NotNull(popped, function, "popped");
  CheckCount(capacity, function, "out_capacity");
  const int64_t pending = online.NumFramesPending();
  const int64_t fit = capacity / width;
  if (pending > 0 && fit == 0) {
    Fail(SYNCTALK_ERROR_BUFFER_TOO_SMALL,
         std::string(function) + ": out_capacity " + std::to_string(capacity) +
             " holds no frame of " + std::to_string(width) + " floats (" +
             std::to_string(pending) + " pending)");
  }
  if (pending > 0) NotNull(out, function, "out");
  *popped = online.PopFrames(out, std::min(pending, fit));
}

}  // namespace

extern "C" {

int synctalk_c_api_version(void) { return SYNCTALK_C_API_VERSION; }

const char* synctalk_version(void) { return SYNCTALK_VERSION_STRING; }

const char* synctalk_status_name(synctalk_status status) {
  switch (status) {
    case SYNCTALK_OK: return "SYNCTALK_OK";
    case SYNCTALK_ERROR_NULL_POINTER: return "SYNCTALK_ERROR_NULL_POINTER";
    case SYNCTALK_ERROR_INVALID_ARGUMENT: return "SYNCTALK_ERROR_INVALID_ARGUMENT";
    case SYNCTALK_ERROR_INVALID_AUDIO: return "SYNCTALK_ERROR_INVALID_AUDIO";
    case SYNCTALK_ERROR_BUFFER_TOO_SMALL: return "SYNCTALK_ERROR_BUFFER_TOO_SMALL";
    case SYNCTALK_ERROR_BAD_STATE: return "SYNCTALK_ERROR_BAD_STATE";
    case SYNCTALK_ERROR_OUT_OF_MEMORY: return "SYNCTALK_ERROR_OUT_OF_MEMORY";
    case SYNCTALK_ERROR_INTERNAL: return "SYNCTALK_ERROR_INTERNAL";
  }
  return "(not a synctalk_status)";
}

const char* synctalk_error_message(const synctalk_error* error) {
  return error == nullptr ? "" : error->message;
}

const char* synctalk_simd_level_name(synctalk_simd_level level) {
  switch (level) {
    case SYNCTALK_SIMD_AUTO:
    case SYNCTALK_SIMD_SCALAR:
    case SYNCTALK_SIMD_SSE2:
    case SYNCTALK_SIMD_AVX2:
    case SYNCTALK_SIMD_AVX512:
    case SYNCTALK_SIMD_NEON:
      return synctalk::SimdLevelName(ToLevel(level, "level"));
  }
  return nullptr;
}

synctalk_status synctalk_simd_levels(synctalk_simd_level* levels, size_t capacity, size_t* count,
                                     synctalk_error* error) {
  return Guard(error, false, [&] {
    const char* f = "synctalk_simd_levels";
    NotNull(count, f, "count");
    const std::vector<synctalk::SimdLevel> available = synctalk::AvailableSimdLevels();
    if (capacity < available.size()) {
      Fail(SYNCTALK_ERROR_BUFFER_TOO_SMALL, std::string(f) + ": capacity " +
                                                std::to_string(capacity) + " < " +
                                                std::to_string(available.size()) + " levels");
    }
    NotNull(levels, f, "levels");
    for (std::size_t i = 0; i < available.size(); ++i) levels[i] = FromLevel(available[i]);
    *count = available.size();
  });
}

synctalk_status synctalk_simd_apply_environment(synctalk_simd_level* level,
                                                synctalk_error* error) {
  return Guard(error, false, [&] {
    NotNull(level, "synctalk_simd_apply_environment", "level");
    const synctalk::SimdLevel requested = ToLevel(*level, "level");
    *level = FromLevel(
        synctalk::ResolveSimdLevel(requested, std::getenv(synctalk::kSimdEnvVar)));
  });
}

// --- mel ----------------------------------------------------------------------

synctalk_status synctalk_mel_options_init(synctalk_mel_options* options, synctalk_error* error) {
  return Guard(error, false, [&] {
    NotNull(options, "synctalk_mel_options_init", "options");
    const synctalk::MelOptions o;
    options->sample_rate = o.sample_rate;
    options->n_fft = o.n_fft;
    options->hop_length = o.hop_length;
    options->win_length = o.win_length;
    options->n_mels = o.n_mels;
    options->fmin = o.fmin;
    options->fmax = o.fmax;
    options->preemphasis = o.preemphasis;
    options->ref_level_db = o.ref_level_db;
    options->min_level_db = o.min_level_db;
    options->max_abs_value = o.max_abs_value;
    options->pad_mode =
        o.pad_mode == synctalk::PadMode::kReflect ? SYNCTALK_PAD_REFLECT : SYNCTALK_PAD_CONSTANT;
    options->simd = FromLevel(o.simd);
  });
}

synctalk_status synctalk_mel_create(const synctalk_mel_options* options, synctalk_mel** mel,
                                    synctalk_error* error) {
  if (mel != nullptr) *mel = nullptr;
  return Guard(error, false, [&] {
    const char* f = "synctalk_mel_create";
    NotNull(options, f, "options");
    NotNull(mel, f, "mel");
    auto handle = std::make_unique<synctalk_mel>();
    handle->options = *options;
    handle->processor = std::make_shared<const synctalk::MelProcessor>(ToCore(*options));
    *mel = handle.release();
  });
}

void synctalk_mel_destroy(synctalk_mel* mel) { delete mel; }

synctalk_status synctalk_mel_get_options(const synctalk_mel* mel, synctalk_mel_options* options,
                                         synctalk_error* error) {
  return Guard(error, false, [&] {
    NotNull(mel, "synctalk_mel_get_options", "mel");
    NotNull(options, "synctalk_mel_get_options", "options");
    *options = mel->options;
  });
}

synctalk_status synctalk_mel_simd_level(const synctalk_mel* mel, synctalk_simd_level* level,
                                        synctalk_error* error) {
  return Guard(error, false, [&] {
    NotNull(mel, "synctalk_mel_simd_level", "mel");
    NotNull(level, "synctalk_mel_simd_level", "level");
    *level = FromLevel(mel->processor->simd_level());
  });
}

synctalk_status synctalk_mel_num_frames(const synctalk_mel* mel, int64_t num_samples,
                                        int64_t* num_frames, synctalk_error* error) {
  return Guard(error, false, [&] {
    const char* f = "synctalk_mel_num_frames";
    NotNull(mel, f, "mel");
    NotNull(num_frames, f, "num_frames");
    CheckCount(num_samples, f, "num_samples");
    *num_frames = mel->processor->NumFrames(num_samples);
  });
}

synctalk_status synctalk_mel_compute(const synctalk_mel* mel, const float* samples,
                                     int64_t num_samples, float* out, int64_t out_capacity,
                                     int threads, synctalk_error* error) {
  return Guard(error, true, [&] {
    const char* f = "synctalk_mel_compute";
    NotNull(mel, f, "mel");
    NotNull(samples, f, "samples");
    NotNull(out, f, "out");
    CheckThreadCount(threads, f);
    if (num_samples <= 0) {
      Fail(SYNCTALK_ERROR_INVALID_AUDIO,
           std::string(f) + ": num_samples must be >= 1, got " + std::to_string(num_samples));
    }
    const synctalk::MelProcessor& p = *mel->processor;
    CheckCapacity(out_capacity, p.options().n_mels * p.NumFrames(num_samples), f,
                  "n_mels x num_frames");
    synctalk::MelWorkspace ws = p.NewWorkspace();
    p.Compute(samples, num_samples, out, ws, threads);
  });
}

synctalk_status synctalk_online_mel_create(const synctalk_mel* mel, int threads,
                                           synctalk_online_mel** online, synctalk_error* error) {
  if (online != nullptr) *online = nullptr;
  return Guard(error, false, [&] {
    const char* f = "synctalk_online_mel_create";
    NotNull(mel, f, "mel");
    NotNull(online, f, "online");
    CheckThreadCount(threads, f);
    *online = new synctalk_online_mel(mel->processor, threads);
  });
}

void synctalk_online_mel_destroy(synctalk_online_mel* online) { delete online; }

synctalk_status synctalk_online_mel_accept_waveform(synctalk_online_mel* online,
                                                    const float* samples, int64_t num_samples,
                                                    synctalk_error* error) {
  return Guard(error, true, [&] {
    const char* f = "synctalk_online_mel_accept_waveform";
    NotNull(online, f, "online");
    CheckCount(num_samples, f, "num_samples");
    if (num_samples > 0) NotNull(samples, f, "samples");
    if (online->online.input_finished()) {
      Fail(SYNCTALK_ERROR_BAD_STATE, std::string(f) +
                                         ": called after input_finished; call "
                                         "synctalk_online_mel_reset to start a new stream");
    }
    if (num_samples > 0) online->online.AcceptWaveform(samples, num_samples);
  });
}

synctalk_status synctalk_online_mel_input_finished(synctalk_online_mel* online,
                                                   synctalk_error* error) {
  return Guard(error, true, [&] {
    const char* f = "synctalk_online_mel_input_finished";
    NotNull(online, f, "online");
    if (online->online.num_samples_received() == 0) {
      Fail(SYNCTALK_ERROR_BAD_STATE,
           std::string(f) + ": the stream received no samples; accept at least one first");
    }
    online->online.InputFinished();
  });
}

synctalk_status synctalk_online_mel_frames_pending(const synctalk_online_mel* online,
                                                   int64_t* num_frames, synctalk_error* error) {
  return Guard(error, false, [&] {
    NotNull(online, "synctalk_online_mel_frames_pending", "online");
    NotNull(num_frames, "synctalk_online_mel_frames_pending", "num_frames");
    *num_frames = online->online.NumFramesPending();
  });
}

synctalk_status synctalk_online_mel_pop_frames(synctalk_online_mel* online, float* out,
                                               int64_t out_capacity, int64_t* popped,
                                               synctalk_error* error) {
  return Guard(error, false, [&] {
    const char* f = "synctalk_online_mel_pop_frames";
    NotNull(online, f, "online");
    PopInto(online->online, online->online.bands(), out, out_capacity, popped, f);
  });
}

synctalk_status synctalk_online_mel_reset(synctalk_online_mel* online, synctalk_error* error) {
  return Guard(error, false, [&] {
    NotNull(online, "synctalk_online_mel_reset", "online");
    online->online.Reset();
  });
}

// --- fbank --------------------------------------------------------------------

synctalk_status synctalk_fbank_options_init(synctalk_fbank_options* options,
                                            synctalk_error* error) {
  return Guard(error, false, [&] {
    NotNull(options, "synctalk_fbank_options_init", "options");
    const synctalk::FbankOptions o;
    options->sample_rate = o.sample_rate;
    options->frame_length = o.frame_length;
    options->frame_shift = o.frame_shift;
    options->num_bins = o.num_bins;
    options->low_freq = o.low_freq;
    options->high_freq = o.high_freq;
    options->preemphasis = o.preemphasis;
    options->remove_dc_offset = o.remove_dc_offset ? 1 : 0;
    options->simd = FromLevel(o.simd);
  });
}

synctalk_status synctalk_fbank_create(const synctalk_fbank_options* options,
                                      synctalk_fbank** fbank, synctalk_error* error) {
  if (fbank != nullptr) *fbank = nullptr;
  return Guard(error, false, [&] {
    const char* f = "synctalk_fbank_create";
    NotNull(options, f, "options");
    NotNull(fbank, f, "fbank");
    auto handle = std::make_unique<synctalk_fbank>();
    handle->options = *options;
    handle->processor = std::make_shared<const synctalk::FbankProcessor>(ToCore(*options));
    *fbank = handle.release();
  });
}

void synctalk_fbank_destroy(synctalk_fbank* fbank) { delete fbank; }

synctalk_status synctalk_fbank_get_options(const synctalk_fbank* fbank,
                                           synctalk_fbank_options* options,
                                           synctalk_error* error) {
  return Guard(error, false, [&] {
    NotNull(fbank, "synctalk_fbank_get_options", "fbank");
    NotNull(options, "synctalk_fbank_get_options", "options");
    *options = fbank->options;
  });
}

synctalk_status synctalk_fbank_simd_level(const synctalk_fbank* fbank, synctalk_simd_level* level,
                                          synctalk_error* error) {
  return Guard(error, false, [&] {
    NotNull(fbank, "synctalk_fbank_simd_level", "fbank");
    NotNull(level, "synctalk_fbank_simd_level", "level");
    *level = FromLevel(fbank->processor->simd_level());
  });
}

synctalk_status synctalk_fbank_num_frames(const synctalk_fbank* fbank, int64_t num_samples,
                                          int64_t* num_frames, synctalk_error* error) {
  return Guard(error, false, [&] {
    const char* f = "synctalk_fbank_num_frames";
    NotNull(fbank, f, "fbank");
    NotNull(num_frames, f, "num_frames");
    CheckCount(num_samples, f, "num_samples");
    *num_frames = fbank->processor->NumFrames(num_samples);
  });
}

synctalk_status synctalk_fbank_compute(const synctalk_fbank* fbank, const float* samples,
                                       int64_t num_samples, float* out, int64_t out_capacity,
                                       int threads, synctalk_error* error) {
  return Guard(error, true, [&] {
    const char* f = "synctalk_fbank_compute";
    NotNull(fbank, f, "fbank");
    NotNull(samples, f, "samples");
    CheckThreadCount(threads, f);
    if (num_samples <= 0) {
      Fail(SYNCTALK_ERROR_INVALID_AUDIO,
           std::string(f) + ": num_samples must be >= 1, got " + std::to_string(num_samples));
    }
    const synctalk::FbankProcessor& p = *fbank->processor;
    const int64_t needed = p.options().num_bins * p.NumFrames(num_samples);
    CheckCapacity(out_capacity, needed, f, "num_frames x num_bins");
    if (needed > 0) NotNull(out, f, "out");
    synctalk::FbankWorkspace ws = p.NewWorkspace();
    p.Compute(samples, num_samples, out, ws, threads);
  });
}

synctalk_status synctalk_online_fbank_create(const synctalk_fbank* fbank,
                                             synctalk_online_fbank** online,
                                             synctalk_error* error) {
  if (online != nullptr) *online = nullptr;
  return Guard(error, false, [&] {
    NotNull(fbank, "synctalk_online_fbank_create", "fbank");
    NotNull(online, "synctalk_online_fbank_create", "online");
    *online = new synctalk_online_fbank(fbank->processor);
  });
}

void synctalk_online_fbank_destroy(synctalk_online_fbank* online) { delete online; }

synctalk_status synctalk_online_fbank_accept_waveform(synctalk_online_fbank* online,
                                                      const float* samples, int64_t num_samples,
                                                      synctalk_error* error) {
  return Guard(error, true, [&] {
    const char* f = "synctalk_online_fbank_accept_waveform";
    NotNull(online, f, "online");
    CheckCount(num_samples, f, "num_samples");
    if (num_samples > 0) NotNull(samples, f, "samples");
    if (online->online.input_finished()) {
      Fail(SYNCTALK_ERROR_BAD_STATE, std::string(f) +
                                         ": called after input_finished; call "
                                         "synctalk_online_fbank_reset to start a new stream");
    }
    if (num_samples > 0) online->online.AcceptWaveform(samples, num_samples);
  });
}

synctalk_status synctalk_online_fbank_input_finished(synctalk_online_fbank* online,
                                                     synctalk_error* error) {
  return Guard(error, false, [&] {
    NotNull(online, "synctalk_online_fbank_input_finished", "online");
    online->online.InputFinished();
  });
}

synctalk_status synctalk_online_fbank_frames_pending(const synctalk_online_fbank* online,
                                                     int64_t* num_frames, synctalk_error* error) {
  return Guard(error, false, [&] {
    NotNull(online, "synctalk_online_fbank_frames_pending", "online");
    NotNull(num_frames, "synctalk_online_fbank_frames_pending", "num_frames");
    *num_frames = online->online.NumFramesPending();
  });
}

synctalk_status synctalk_online_fbank_pop_frames(synctalk_online_fbank* online, float* out,
                                                 int64_t out_capacity, int64_t* popped,
                                                 synctalk_error* error) {
  return Guard(error, false, [&] {
    const char* f = "synctalk_online_fbank_pop_frames";
    NotNull(online, f, "online");
    PopInto(online->online, online->online.bands(), out, out_capacity, popped, f);
  });
}

synctalk_status synctalk_online_fbank_reset(synctalk_online_fbank* online, synctalk_error* error) {
  return Guard(error, false, [&] {
    NotNull(online, "synctalk_online_fbank_reset", "online");
    online->online.Reset();
  });
}

}  // extern "C"
