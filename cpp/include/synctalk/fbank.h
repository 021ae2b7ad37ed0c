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
#include <memory>
#include <vector>

#include "synctalk/fft.h"
#include "synctalk/filterbank.h"
#include "synctalk/lanes.h"
#include "synctalk/mel.h"  // CheckFinite, kFramesPerThread
#include "synctalk/options.h"
#include "synctalk/parallel.h"

namespace synctalk {

// The floor of the log: Kaldi's and torchaudio's FLT_EPSILON (silence gives
// log(2^-23) = -15.942385...).
constexpr double kFbankLogFloor = FLT_EPSILON;

// torchaudio's get_mel_banks (no VTLN) in float32, operation for operation,
// plus the zero weight of the Nyquist bin: num_bins rows over padded / 2 + 1
// bins, equal to torchaudio's array with its zero Nyquist column appended.
SparseFilterbank BuildKaldiMelBanks(const FbankOptions& options);

// Scratch memory for one thread's calls into FbankProcessor; reuse it across
// calls to allocate nothing.
struct FbankWorkspace {
  std::vector<double> frame;      // padded length
  std::vector<Complex> spectrum;  // padded / 2 + 1
  std::vector<Complex> fft_work;  // RealFft::work_size()
  std::vector<double> power;      // padded / 2 + 1
  std::vector<double> energy;     // num_bins
  // The SIMD lanes (empty on the scalar path): L frames, L x num_bins sums, scratch.
  std::vector<double> lane_frames;
  std::vector<double> lane_out;
  std::vector<double> lane_scratch;
};

// Built once from the options: the povey window, the FFT plan and the mel
// banks. All methods are const and thread-safe; scratch lives in a
// FbankWorkspace owned by the caller.
class FbankProcessor {
 public:
  explicit FbankProcessor(const FbankOptions& options);

  const FbankOptions& options() const { return options_; }
  const std::vector<double>& window() const { return window_; }
  const SparseFilterbank& filterbank() const { return filterbank_; }
  int64_t NumFrames(int64_t num_samples) const { return options_.NumFrames(num_samples); }
  FbankWorkspace NewWorkspace() const;
  // The SIMD level in use (kScalar: the per-frame reference code) and the
  // frames it computes at once. Built as MelProcessor's (options.simd).
  SimdLevel simd_level() const { return lanes_ ? lanes_->level() : SimdLevel::kScalar; }
  int lanes() const { return lanes_ ? lanes_->lanes() : 1; }

  // The whole fbank of `num_samples` samples into `out`, NumFrames(num_samples)
  // x num_bins row-major (Kaldi's layout: one row per frame), on `threads`
  // threads; bitwise the same for any thread count and SIMD level. Throws
  // std::invalid_argument for an empty or non-finite input or a bad thread
  // count before writing.
  template <typename In, typename Out>
  void Compute(const In* samples, int64_t num_samples, Out* out, FbankWorkspace& ws,
               int threads = 1) const;
  // Frames [begin, end) into out (frame k at out + (k - begin) * num_bins),
  // through the SIMD lanes if any: what ComputeFrame gives, bit for bit.
  template <typename In, typename Out>
  void ComputeFrames(const In* samples, int64_t begin, int64_t end, Out* out, FbankWorkspace& ws,
                     int64_t first = 0) const;

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

  // Stages 1-8 for frame k: num_bins values into `row`.
  template <typename In, typename Out>
  void ComputeFrame(const In* samples, int64_t k, Out* row, FbankWorkspace& ws,
                    int64_t first = 0) const;

  // Samples frame k reads: [FirstSampleOf(k), FirstSampleOf(k) + frame_length).
  int64_t FirstSampleOf(int64_t k) const { return k * options_.frame_shift; }
  // Samples that must have arrived before frame k can be computed.
  int64_t SamplesNeeded(int64_t k) const { return k * options_.frame_shift + options_.frame_length; }

 private:
  FbankOptions options_;
  std::vector<double> window_;
  RealFft fft_;
  SparseFilterbank filterbank_;
  std::shared_ptr<const SpectrumLanes> lanes_;  // null: scalar
};

// --- Template definitions ----------------------------------------------------

template <typename In>
void FbankProcessor::ExtractFrame(const In* samples, int64_t k, double* frame,
                                  int64_t first) const {
  const In* x = samples + (FirstSampleOf(k) - first);
  for (int i = 0; i < options_.frame_length; ++i) frame[i] = static_cast<double>(x[i]);
}

template <typename In, typename Out>
void FbankProcessor::ComputeFrame(const In* samples, int64_t k, Out* row, FbankWorkspace& ws,
                                  int64_t first) const {
  ExtractFrame(samples, k, ws.frame.data(), first);
  RemoveDcOffset(ws.frame.data());
  PreEmphasize(ws.frame.data());
  ApplyWindow(ws.frame.data());
  Spectrum(ws.frame.data(), ws.spectrum.data(), ws.fft_work.data());
  Power(ws.spectrum.data(), ws.power.data());
  Mel(ws.power.data(), ws.energy.data());
  for (int b = 0; b < options_.num_bins; ++b) row[b] = static_cast<Out>(Log(ws.energy[b]));
}

template <typename In, typename Out>
void FbankProcessor::ComputeFrames(const In* samples, int64_t begin, int64_t end, Out* out,
                                   FbankWorkspace& ws, int64_t first) const {
  const int num_bins = options_.num_bins;
  if (!lanes_) {
    for (int64_t k = begin; k < end; ++k) {
      ComputeFrame(samples, k, out + (k - begin) * num_bins, ws, first);
    }
    return;
  }
  // Groups of L frames, one per lane; stages 1-4 and 8 per frame as above.
  const int lanes = lanes_->lanes();
  const int padded = options_.PaddedLength();
  for (int64_t group = begin; group < end; group += lanes) {
    const int count = static_cast<int>(std::min<int64_t>(lanes, end - group));
    for (int l = 0; l < count; ++l) {
      double* frame = ws.lane_frames.data() + static_cast<std::size_t>(l) * padded;
      ExtractFrame(samples, group + l, frame, first);
      RemoveDcOffset(frame);
      PreEmphasize(frame);
      ApplyWindow(frame);
    }
    // Unused lanes of a last, partial group: zeros (their results are dropped).
    std::fill(ws.lane_frames.begin() + static_cast<std::size_t>(count) * padded,
              ws.lane_frames.end(), 0.0);
    lanes_->Filterbank(ws.lane_frames.data(), ws.lane_out.data(), ws.lane_scratch.data());
    for (int l = 0; l < count; ++l) {
      Out* row = out + (group + l - begin) * num_bins;
      for (int b = 0; b < num_bins; ++b) {
        row[b] = static_cast<Out>(Log(ws.lane_out[static_cast<std::size_t>(b) * lanes + l]));
      }
    }
  }
}

template <typename In, typename Out>
void FbankProcessor::Compute(const In* samples, int64_t num_samples, Out* out,
                             FbankWorkspace& ws, int threads) const {
  CheckThreads(threads);
  CheckFinite(samples, num_samples);
  const int64_t num_frames = NumFrames(num_samples);
  const int workers = WorkersFor(num_frames, threads, kFramesPerThread);
  std::vector<FbankWorkspace> extra;
  for (int w = 1; w < workers; ++w) extra.push_back(NewWorkspace());
  ParallelRanges(0, num_frames, workers, lanes(), [&](int w, int64_t b, int64_t e) {
    ComputeFrames(samples, b, e, out + b * options_.num_bins, w == 0 ? ws : extra[w - 1]);
  });
}

}  // namespace synctalk
