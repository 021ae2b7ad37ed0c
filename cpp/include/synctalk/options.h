// Options of the SyncTalk_2D (wav2lip) mel spectrogram.
//
// Every parameter of the reference `audio.melspectrogram` lives in this one
// struct; the defaults are SyncTalk_2D's hparams. The Python dataclass
// `synctalk_audio.MelOptions` mirrors it field for field.
#pragma once

#include <cstdint>
#include <string>

namespace synctalk {

// How `center=True` pads the pre-emphasised signal before framing.
enum class PadMode {
  kConstant,  // zeros: librosa >= 0.10 (the default)
  kReflect,   // numpy.pad(mode="reflect"): librosa < 0.10
};

// Parses "constant" / "reflect"; throws std::invalid_argument otherwise.
PadMode ParsePadMode(const std::string& name);
const char* PadModeName(PadMode mode);

// Which SIMD lanes compute the FFT, |X| and the filterbank (synctalk/lanes.h):
// bitwise the scalar reference at every level. kAuto: the best this CPU
// supports; kScalar: the per-frame reference code only.
enum class SimdLevel { kAuto, kScalar, kSse2, kAvx2, kAvx512, kNeon };

// The environment variable that caps the level of every processor the Python
// package builds while it is set: scalar | sse2 | avx2 | avx512 | neon (auto
// or empty: no cap). Read at the boundary only (the Python bindings, and the
// C API's synctalk_simd_apply_environment), never by the core.
constexpr const char* kSimdEnvVar = "SYNCTALK_AUDIO_SIMD";

// Parses "auto", "scalar", "sse2", "avx2", "avx512", "neon"; throws
// std::invalid_argument otherwise.
SimdLevel ParseSimdLevel(const std::string& name);
const char* SimdLevelName(SimdLevel level);

// Worker threads one call may use (Compute(..., threads)): at least 1, at
// most this.
constexpr int kMaxThreads = 256;

// Bounds of the options, checked by MelOptions::Validate. Generous (any
// sensible spectrogram fits) but safe: no overflow to inf, no allocation or
// run time out of proportion to the input. The Python package reads the
// sample rate bounds from here (_core.MIN_SAMPLE_RATE, _core.MAX_SAMPLE_RATE)
// for every rate it accepts.
constexpr int kMinSampleRate = 1000;        // Hz
constexpr int kMaxSampleRate = 768000;      // Hz
constexpr int kMaxNfft = 65536;             // samples; also the largest hop_length
constexpr int kMaxMels = 4096;              // mel bands
constexpr double kMaxLevelDb = 1000.0;      // |ref_level_db| and -min_level_db at most
constexpr double kMaxAbsValueLimit = 1e6;   // max_abs_value at most

struct MelOptions {
  int sample_rate = 16000;      // Hz, in [kMinSampleRate, kMaxSampleRate]
  int n_fft = 800;              // FFT length, samples, in [1, kMaxNfft], prime factors <= 1024
  int hop_length = 200;         // frame shift, samples, in [1, kMaxNfft] (200: 80 frames/s)
  int win_length = 800;         // periodic Hann window length, in [1, n_fft]
  int n_mels = 80;              // mel bands, in [1, kMaxMels]
  double fmin = 55.0;           // lowest filter edge, Hz, >= 0
  double fmax = 7600.0;         // highest filter edge, Hz, in (fmin, sample_rate / 2]
  double preemphasis = 0.97;    // y[n] = x[n] - preemphasis * x[n-1], in [-1, 1]; 0 disables
  double ref_level_db = 20.0;   // subtracted after the dB conversion, |.| <= kMaxLevelDb
  double min_level_db = -100.0; // floor of the dB scale, in [-kMaxLevelDb, 0)
  double max_abs_value = 4.0;   // output range [-max_abs_value, max_abs_value], in (0, 1e6]
  PadMode pad_mode = PadMode::kConstant;
  SimdLevel simd = SimdLevel::kAuto;  // requested SIMD level; any level gives the same bits

  // Throws std::invalid_argument naming the first bad parameter, its value and
  // the accepted range (the bounds above).
  void Validate() const;

  // Frames of librosa's centred STFT: the signal is padded by n_fft / 2 on
  // each side, so 1 + num_samples / hop_length for an even n_fft (the
  // reference's 800) and 1 + (num_samples - 1) / hop_length for an odd one.
  int64_t NumFrames(int64_t num_samples) const {
    return 1 + (num_samples + 2 * (n_fft / 2) - n_fft) / hop_length;
  }
  int NumBins() const { return n_fft / 2 + 1; }
};

// Options of the Kaldi log mel filterbank ("fbank"), as
// torchaudio.compliance.kaldi.fbank computes it with WeNet's arguments
// (Ultralight-Digital-Human's wenet front end): povey window, per-frame DC
// removal, snip_edges, the frame zero-padded to the next power of two, power
// spectrum, Kaldi mel scale 1127 ln(1 + f / 700), log floored at FLT_EPSILON,
// no dither, no energy term. The Python dataclass `synctalk_audio.FbankOptions`
// mirrors it field for field.
constexpr int kMinFbankBins = 4;            // torchaudio: "Must have at least 3 mel bins"

struct FbankOptions {
  int sample_rate = 16000;      // Hz, in [kMinSampleRate, kMaxSampleRate]
  int frame_length = 400;       // samples (25 ms), in [2, kMaxNfft]; zero-padded to a power of two
  int frame_shift = 160;        // samples (10 ms), in [1, kMaxNfft]
  int num_bins = 80;            // mel bins, in [kMinFbankBins, kMaxMels]
  double low_freq = 20.0;       // lowest filter edge, Hz, in [0, high_freq)
  double high_freq = 8000.0;    // highest filter edge, Hz, in (low_freq, sample_rate / 2]
  double preemphasis = 0.97;    // x[j] -= preemphasis * x[j-1] (x[0] -= preemphasis * x[0]), in [-1, 1]
  bool remove_dc_offset = true; // subtract each frame's mean first
  SimdLevel simd = SimdLevel::kAuto;  // requested SIMD level; any level gives the same bits

  // Throws std::invalid_argument naming the first bad parameter, its value and
  // the accepted range.
  void Validate() const;

  // Frames with snip_edges: only whole frames, none past the end.
  int64_t NumFrames(int64_t num_samples) const {
    return num_samples < frame_length ? 0 : 1 + (num_samples - frame_length) / frame_shift;
  }
  // The FFT length: frame_length rounded up to a power of two (512 for 400).
  int PaddedLength() const {
    int n = 1;
    while (n < frame_length) n *= 2;
    return n;
  }
};

}  // namespace synctalk
