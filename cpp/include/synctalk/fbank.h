// The Kaldi log mel filterbank ("fbank"), stage by stage.
//
// Reference: torchaudio.compliance.kaldi.fbank with the arguments of WeNet's
// front end in Ultralight-Digital-Human (num_mel_bins=80, frame_length=25,
// frame_shift=10, dither=0, energy_floor=0, sample_frequency=16000), the rest
// at Kaldi's defaults. For frame k (snip_edges: samples [shift k, shift k +
// frame_length), only whole frames):
//   1. copy the frame, in float64;
//   2. subtract its mean (remove_dc_offset);
//   3. pre-emphasis: y[j] = x[j] - 0.97 x[j-1], y[0] = x[0] - 0.97 x[0];
//   4. multiply by the povey window (0.5 - 0.5 cos(2 pi j / (N - 1)))^0.85,
//      then zero-pad to the next power of two (400 -> 512);
//   5. real FFT; 6. power re^2 + im^2;
//   7. Kaldi mel filters (1127 ln(1 + f / 700), low_freq..high_freq), built in
//      float32 exactly as torchaudio builds them (get_mel_banks uses default
//      float32 tensors even for a float64 input), applied in float64;
//   8. log(max(energy, FLT_EPSILON)).
// Everything but the filter weights is float64: the result equals
// torchaudio's float64 fbank to ~1e-10 (docs/NUMERICS.md, docs/DECISIONS.md).
#pragma once

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <vector>

#include "synctalk/fft.h"
#include "synctalk/filterbank.h"
#include "synctalk/frames.h"
#include "synctalk/options.h"

namespace synctalk {

// The floor of the log: Kaldi's and torchaudio's FLT_EPSILON (silence gives
// log(2^-23) = -15.942385...).
constexpr double kFbankLogFloor = FLT_EPSILON;

// torchaudio's get_mel_banks (no VTLN) in float32, operation for operation,
// plus the zero weight of the Nyquist bin: num_bins rows over padded / 2 + 1
// bins, equal to torchaudio's array with its zero Nyquist column appended.
SparseFilterbank BuildKaldiMelBanks(const FbankOptions& options);

// Scratch memory for one thread's calls into FbankProcessor (frames.h).
using FbankWorkspace = FrameWorkspace;

// Built once from the options: the povey window, the FFT plan and the mel
// banks. All methods are const and thread-safe; scratch lives in a
// FbankWorkspace owned by the caller. Compute, ComputeFrame(s) and the lanes
// come from FrameProcessor (frames.h): Compute writes NumFrames(num_samples)
// x num_bins, row-major (Kaldi's layout: one row per frame).
class FbankProcessor : public FrameProcessor<FbankProcessor> {
 public:
  explicit FbankProcessor(const FbankOptions& options);

  static constexpr bool kBandMajor = false;  // (frames, num_bins), as Kaldi

  const FbankOptions& options() const { return options_; }
  const std::vector<double>& window() const { return window_; }
  const SparseFilterbank& filterbank() const { return filterbank_; }
  int64_t NumFrames(int64_t num_samples) const { return options_.NumFrames(num_samples); }

  // --- Stages, in pipeline order (each works in place on ws.frame). -------
  // 1. Frame k: samples [frame_shift k, frame_shift k + frame_length) as
  //    float64. `samples` points at sample number `first` of the signal.
  template <typename In>
  void ExtractFrame(const In* samples, int64_t k, double* frame, int64_t first = 0) const;
  // 2. Subtract the frame's mean (if remove_dc_offset).
  void RemoveDcOffset(double* frame) const;
  // 3. Pre-emphasis, x[0] - coef * x[0] for the first sample.
  void PreEmphasize(double* frame) const;
  // 4. Multiply by the povey window and zero the padding up to PaddedLength().
  void ApplyWindow(double* frame) const;
  // 5. Real FFT of the padded frame: padded / 2 + 1 bins.
  void Spectrum(const double* frame, Complex* spectrum, Complex* fft_work) const;
  // 6. re^2 + im^2.
  void Power(const Complex* spectrum, double* power) const;
  // 7. The mel banks.
  void Mel(const double* power, double* energy) const { filterbank_.Apply(power, energy); }
  // 8. log(max(energy, FLT_EPSILON)).
  static double Log(double energy) { return std::log(energy > kFbankLogFloor ? energy : kFbankLogFloor); }

  // The stages grouped for FrameProcessor: 1-4, 5-7 (into ws.bands), 8.
  // (Frames never reach past the samples: num_samples is not needed.)
  template <typename In>
  void PrepareFrame(const In* samples, int64_t /*num_samples*/, int64_t k, double* frame,
                    int64_t first) const {
    ExtractFrame(samples, k, frame, first);
    RemoveDcOffset(frame);
    PreEmphasize(frame);
    ApplyWindow(frame);
  }
  void TransformFrame(const double* frame, FbankWorkspace& ws) const {
    Spectrum(frame, ws.spectrum.data(), ws.fft_work.data());
    Power(ws.spectrum.data(), ws.bins.data());
    Mel(ws.bins.data(), ws.bands.data());
  }
  double Finish(double energy) const { return Log(energy); }

  // Samples frame k reads: [FirstSampleOf(k), FirstSampleOf(k) + frame_length).
  int64_t FirstSampleOf(int64_t k) const { return k * options_.frame_shift; }
  // Samples that must have arrived before frame k can be computed.
  int64_t SamplesNeeded(int64_t k) const { return k * options_.frame_shift + options_.frame_length; }

 private:
  FbankOptions options_;
  std::vector<double> window_;
  RealFft fft_;
  SparseFilterbank filterbank_;
};

// --- Template definitions ----------------------------------------------------

template <typename In>
void FbankProcessor::ExtractFrame(const In* samples, int64_t k, double* frame,
                                  int64_t first) const {
  const In* x = samples + (FirstSampleOf(k) - first);
  for (int i = 0; i < options_.frame_length; ++i) frame[i] = static_cast<double>(x[i]);
}

}  // namespace synctalk
