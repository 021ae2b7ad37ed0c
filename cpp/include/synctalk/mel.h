// The SyncTalk_2D (wav2lip) mel spectrogram, stage by stage.
//
// Reference: wav2lip `audio.melspectrogram` with librosa >= 0.10, i.e.
//   y   = lfilter([1, -0.97], [1], x)                         (float64)
//   D   = librosa.stft(y, n_fft=800, hop_length=200, win_length=800,
//                      window=periodic hann, center=True, pad_mode)
//   mel = librosa.filters.mel(...) (float32) . |D|            (float64)
//   S   = 20 log10(max(1e-5, mel)) - 20
//   out = clip(8 (S + 100) / 100 - 4, -4, 4)
// Each stage below is one line of that chain, so a port can be checked stage
// by stage (docs/NUMERICS.md). Everything is float64 except the filterbank
// weights, which are float32 as in librosa.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "synctalk/fft.h"
#include "synctalk/filterbank.h"
#include "synctalk/frames.h"
#include "synctalk/options.h"

namespace synctalk {

// librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax) with the Slaney scale and
// norm, reproduced operation for operation (including its float32 rounding):
// n_mels rows over n_fft / 2 + 1 bins, equal to librosa's array.
SparseFilterbank BuildMelFilterbank(const MelOptions& options);

// Scratch memory for one thread's calls into MelProcessor (frames.h).
using MelWorkspace = FrameWorkspace;

// Built once from the options: holds the window, the FFT plan and the
// filterbank, and the SIMD lanes of the level options.simd resolves to. All
// methods are const and thread-safe; per-call scratch lives in a
// MelWorkspace owned by the caller. Compute, ComputeFrame(s) and the lanes
// come from FrameProcessor (frames.h): Compute writes n_mels x
// NumFrames(num_samples), row-major.
class MelProcessor : public FrameProcessor<MelProcessor> {
 public:
  explicit MelProcessor(const MelOptions& options);

  static constexpr bool kBandMajor = true;  // (n_mels, frames), as librosa

  const MelOptions& options() const { return options_; }
  const std::vector<double>& window() const { return window_; }
  const SparseFilterbank& filterbank() const { return filterbank_; }
  int64_t NumFrames(int64_t num_samples) const { return options_.NumFrames(num_samples); }

  // --- Stages, in pipeline order. ------------------------------------------
  // 1. Pre-emphasis of sample j, in float64: x[0], or x[j] - coef * x[j-1].
  template <typename In>
  double PreEmphasized(const In* samples, int64_t j) const;
  // 1'. The whole pre-emphasised signal into y (num_samples values).
  template <typename In>
  void PreEmphasis(const In* samples, int64_t num_samples, double* y) const;
  // 2. Frame k of the centred, padded, pre-emphasised signal (n_fft values):
  //    frame[i] = y_pad[hop * k + i], y_pad = pad(y, n_fft / 2, pad_mode).
  //    `samples` points at sample number `first` of a signal of `num_samples`
  //    samples (first = 0 for a whole clip; the online extractor keeps only a
  //    tail). The frame must not need samples before `first`.
  template <typename In>
  void ExtractFrame(const In* samples, int64_t num_samples, int64_t k, double* frame,
                    int64_t first = 0) const;
  // 3. frame *= window (periodic Hann of win_length, centred in n_fft).
  void ApplyWindow(double* frame) const;
  // 4. Real FFT: n_fft / 2 + 1 bins.
  void Spectrum(const double* frame, Complex* spectrum, Complex* fft_work) const;
  // 5. |X| = sqrt(re^2 + im^2).
  void Magnitude(const Complex* spectrum, double* magnitude) const;
  // 6. The mel filterbank.
  void Mel(const double* magnitude, double* mel) const { filterbank_.Apply(magnitude, mel); }
  // 7. 20 log10(max(min_level, mel)) - ref_level_db, min_level = 10^(min_level_db / 20).
  double AmpToDb(double mel) const {
    return 20 * std::log10(std::max(min_level_, mel)) - options_.ref_level_db;
  }
  // 8. clip(2 max_abs (db - min_level_db) / -min_level_db - max_abs, -max_abs, max_abs),
  //    in exactly this order of operations (a division, not a multiplication by 0.01).
  double Normalize(double db) const {
    const double max_abs = options_.max_abs_value;
    const double scaled =
        (2 * max_abs) * ((db - options_.min_level_db) / (-options_.min_level_db)) - max_abs;
    return std::min(std::max(scaled, -max_abs), max_abs);
  }

  // The stages grouped for FrameProcessor: 2-3, 4-6 (into ws.bands), 7-8.
  template <typename In>
  void PrepareFrame(const In* samples, int64_t num_samples, int64_t k, double* frame,
                    int64_t first) const {
    ExtractFrame(samples, num_samples, k, frame, first);
    ApplyWindow(frame);
  }
  void TransformFrame(const double* frame, MelWorkspace& ws) const {
    Spectrum(frame, ws.spectrum.data(), ws.fft_work.data());
    Magnitude(ws.spectrum.data(), ws.bins.data());
    Mel(ws.bins.data(), ws.bands.data());
  }
  double Finish(double mel) const { return Normalize(AmpToDb(mel)); }

  // Samples frame k reads, as [FirstSampleOf(k), LastSampleOf(k)]: the
  // pre-emphasis of the frame's first sample needs the one before it. Frames
  // whose range lies inside [0, received) do not depend on the padding.
  int64_t FirstSampleOf(int64_t k) const {
    return k * options_.hop_length - options_.n_fft / 2 - 1;
  }
  int64_t LastSampleOf(int64_t k) const {
    return k * options_.hop_length - options_.n_fft / 2 + options_.n_fft - 1;
  }
  // Samples that must have arrived before frame k is final, the end of input
  // not yet known (online.h): through LastSampleOf(k), and with a reflected
  // left pad the samples it reflects.
  int64_t SamplesNeeded(int64_t k) const;

 private:
  // Index into y for padded position j (may be < 0 or >= n); -1 means zero.
  int64_t SourceIndex(int64_t j, int64_t num_samples) const;

  MelOptions options_;
  std::vector<double> window_;
  RealFft fft_;
  SparseFilterbank filterbank_;
  double min_level_;  // 10^(min_level_db / 20), computed as numpy does
};

// --- Template definitions ----------------------------------------------------

template <typename In>
double MelProcessor::PreEmphasized(const In* samples, int64_t j) const {
  const double x = static_cast<double>(samples[j]);
  if (j == 0) return x;
  return x - options_.preemphasis * static_cast<double>(samples[j - 1]);
}

template <typename In>
void MelProcessor::PreEmphasis(const In* samples, int64_t num_samples, double* y) const {
  for (int64_t j = 0; j < num_samples; ++j) y[j] = PreEmphasized(samples, j);
}

template <typename In>
void MelProcessor::ExtractFrame(const In* samples, int64_t num_samples, int64_t k,
                                double* frame, int64_t first) const {
  const int64_t n_fft = options_.n_fft;
  const int64_t start = k * options_.hop_length - n_fft / 2;
  if (start >= 1 && start + n_fft <= num_samples) {
    // Interior frame (the common case): no padding, no branch per sample.
    const double coef = options_.preemphasis;
    const In* x = samples + (start - first);
    for (int64_t i = 0; i < n_fft; ++i) {
      frame[i] = static_cast<double>(x[i]) - coef * static_cast<double>(x[i - 1]);
    }
    return;
  }
  const double coef = options_.preemphasis;
  for (int64_t i = 0; i < n_fft; ++i) {
    const int64_t source = SourceIndex(start + i, num_samples);
    if (source < 0) {
      frame[i] = 0.0;
    } else if (source == 0) {
      frame[i] = static_cast<double>(samples[-first]);
    } else {
      frame[i] = static_cast<double>(samples[source - first]) -
                 coef * static_cast<double>(samples[source - 1 - first]);
    }
  }
}

}  // namespace synctalk
