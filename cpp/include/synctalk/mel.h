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
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "synctalk/fft.h"
#include "synctalk/filterbank.h"
#include "synctalk/lanes.h"
#include "synctalk/options.h"
#include "synctalk/parallel.h"

namespace synctalk {

// librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax) with the Slaney scale and
// norm, reproduced operation for operation (including its float32 rounding):
// n_mels rows over n_fft / 2 + 1 bins, equal to librosa's array.
SparseFilterbank BuildMelFilterbank(const MelOptions& options);

// Scratch memory for one thread's calls into MelProcessor. Build it with
// MelProcessor::NewWorkspace(); reuse it across calls to allocate nothing.
struct MelWorkspace {
  std::vector<double> frame;      // n_fft
  std::vector<Complex> spectrum;  // n_fft / 2 + 1
  std::vector<Complex> fft_work;  // RealFft::work_size()
  std::vector<double> magnitude;  // n_fft / 2 + 1
  std::vector<double> mel;        // n_mels
  // The SIMD lanes (empty on the scalar path): L frames, L x n_mels sums, scratch.
  std::vector<double> lane_frames;
  std::vector<double> lane_out;
  std::vector<double> lane_scratch;
};

// Built once from the options: holds the window, the FFT plan and the
// filterbank, and the SIMD lanes of the level options.simd resolves to. All methods
// are const and thread-safe; per-call scratch lives in a MelWorkspace owned
// by the caller.
class MelProcessor {
 public:
  explicit MelProcessor(const MelOptions& options);

  const MelOptions& options() const { return options_; }
  const std::vector<double>& window() const { return window_; }
  const SparseFilterbank& filterbank() const { return filterbank_; }
  int64_t NumFrames(int64_t num_samples) const { return options_.NumFrames(num_samples); }
  MelWorkspace NewWorkspace() const;
  // The SIMD level in use (kScalar: the per-frame reference code) and the
  // frames it computes at once.
  SimdLevel simd_level() const { return lanes_ ? lanes_->level() : SimdLevel::kScalar; }
  int lanes() const { return lanes_ ? lanes_->lanes() : 1; }

  // The whole spectrogram of `num_samples` samples (float or double) into
  // `out`, n_mels x NumFrames(num_samples) row-major (float or double), on
  // `threads` threads (the calling one included; `ws` is the calling
  // thread's). The result is bitwise the same for any thread count and SIMD
  // level. Throws std::invalid_argument for an empty or non-finite input or
  // a bad thread count before writing anything.
  template <typename In, typename Out>
  void Compute(const In* samples, int64_t num_samples, Out* out, MelWorkspace& ws,
               int threads = 1) const;

  // Frames [begin, end) into `out` (frame k at out + (k - begin) *
  // frame_stride, band m at + m * mel_stride), through the SIMD lanes if any:
  // what ComputeFrame gives for each k, bit for bit. `samples` and `first`
  // as for ExtractFrame. The input must have been checked (CheckFinite).
  template <typename In, typename Out>
  void ComputeFrames(const In* samples, int64_t num_samples, int64_t begin, int64_t end,
                     Out* out, int64_t frame_stride, int64_t mel_stride, MelWorkspace& ws,
                     int64_t first = 0) const;
  // ComputeFrames on `threads` threads (extra workspaces made per call).
  template <typename In, typename Out>
  void ComputeFramesParallel(const In* samples, int64_t num_samples, int64_t begin, int64_t end,
                             Out* out, int64_t frame_stride, int64_t mel_stride,
                             MelWorkspace& ws, int threads, int64_t first = 0) const;

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

  // Stages 2-8 for frame k: n_mels values into `column`, spaced `stride` apart.
  // `samples` and `first` as for ExtractFrame.
  template <typename In, typename Out>
  void ComputeFrame(const In* samples, int64_t num_samples, int64_t k, Out* column,
                    int64_t stride, MelWorkspace& ws, int64_t first = 0) const;

  // Samples frame k reads, as [FirstSampleOf(k), LastSampleOf(k)]: the
  // pre-emphasis of the frame's first sample needs the one before it. Frames
  // whose range lies inside [0, received) do not depend on the padding.
  int64_t FirstSampleOf(int64_t k) const {
    return k * options_.hop_length - options_.n_fft / 2 - 1;
  }
  int64_t LastSampleOf(int64_t k) const {
    return k * options_.hop_length - options_.n_fft / 2 + options_.n_fft - 1;
  }

 private:
  // Index into y for padded position j (may be < 0 or >= n); -1 means zero.
  int64_t SourceIndex(int64_t j, int64_t num_samples) const;

  MelOptions options_;
  std::vector<double> window_;
  RealFft fft_;
  SparseFilterbank filterbank_;
  double min_level_;  // 10^(min_level_db / 20), computed as numpy does
  std::shared_ptr<const SpectrumLanes> lanes_;  // null: scalar
};

// Frames per thread below which Compute does not start another thread.
constexpr int64_t kFramesPerThread = 64;

// Throws std::invalid_argument if any sample is NaN or infinite, naming the
// first offending index.
template <typename In>
void CheckFinite(const In* samples, int64_t num_samples);

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

template <typename In, typename Out>
void MelProcessor::ComputeFrame(const In* samples, int64_t num_samples, int64_t k,
                                Out* column, int64_t stride, MelWorkspace& ws,
                                int64_t first) const {
  ExtractFrame(samples, num_samples, k, ws.frame.data(), first);
  ApplyWindow(ws.frame.data());
  Spectrum(ws.frame.data(), ws.spectrum.data(), ws.fft_work.data());
  Magnitude(ws.spectrum.data(), ws.magnitude.data());
  Mel(ws.magnitude.data(), ws.mel.data());
  for (int m = 0; m < options_.n_mels; ++m) {
    column[m * stride] = static_cast<Out>(Normalize(AmpToDb(ws.mel[m])));
  }
}

template <typename In>
void CheckFinite(const In* samples, int64_t num_samples) {
  if (num_samples <= 0) {
    throw std::invalid_argument("audio is empty: need at least 1 sample");
  }
  for (int64_t j = 0; j < num_samples; ++j) {
    if (!std::isfinite(samples[j])) {
      throw std::invalid_argument("audio is not finite: sample " + std::to_string(j) + " is " +
                                  std::to_string(static_cast<double>(samples[j])) +
                                  "; remove NaN and infinite values before computing the mel");
    }
  }
}

template <typename In, typename Out>
void MelProcessor::ComputeFrames(const In* samples, int64_t num_samples, int64_t begin,
                                 int64_t end, Out* out, int64_t frame_stride,
                                 int64_t mel_stride, MelWorkspace& ws, int64_t first) const {
  if (!lanes_) {
    for (int64_t k = begin; k < end; ++k) {
      ComputeFrame(samples, num_samples, k, out + (k - begin) * frame_stride, mel_stride, ws,
                   first);
    }
    return;
  }
  // Groups of L frames, one per lane; stages 2-3 and 7-8 per frame as above.
  const int lanes = lanes_->lanes();
  const int n_fft = options_.n_fft;
  const int n_mels = options_.n_mels;
  for (int64_t group = begin; group < end; group += lanes) {
    const int count = static_cast<int>(std::min<int64_t>(lanes, end - group));
    for (int l = 0; l < count; ++l) {
      double* frame = ws.lane_frames.data() + static_cast<std::size_t>(l) * n_fft;
      const int64_t start = (group + l) * options_.hop_length - n_fft / 2;
      if (start >= 1 && start + n_fft <= num_samples) {
        // Stages 2 and 3 of an interior frame in one pass: the same two
        // roundings as ExtractFrame then ApplyWindow.
        const double coef = options_.preemphasis;
        const double* w = window_.data();
        const In* x = samples + (start - first);
        for (int i = 0; i < n_fft; ++i) {
          const double y = static_cast<double>(x[i]) - coef * static_cast<double>(x[i - 1]);
          frame[i] = y * w[i];
        }
      } else {
        ExtractFrame(samples, num_samples, group + l, frame, first);
        ApplyWindow(frame);
      }
    }
    // Unused lanes of a last, partial group: zeros (their results are dropped).
    std::fill(ws.lane_frames.begin() + static_cast<std::size_t>(count) * n_fft,
              ws.lane_frames.end(), 0.0);
    lanes_->Filterbank(ws.lane_frames.data(), ws.lane_out.data(), ws.lane_scratch.data());
    // Stages 7 and 8 as two passes (the same operations on each value): the
    // second has no library call, so the compiler can vectorise it.
    double* sums = ws.lane_out.data();
    const std::size_t values = static_cast<std::size_t>(n_mels) * lanes;
    for (std::size_t i = 0; i < values; ++i) sums[i] = AmpToDb(sums[i]);
    for (std::size_t i = 0; i < values; ++i) sums[i] = Normalize(sums[i]);
    for (int m = 0; m < n_mels; ++m) {
      const double* band_in = sums + static_cast<std::size_t>(m) * lanes;
      Out* band = out + m * mel_stride;
      for (int l = 0; l < count; ++l) {
        band[(group + l - begin) * frame_stride] = static_cast<Out>(band_in[l]);
      }
    }
  }
}

template <typename In, typename Out>
void MelProcessor::ComputeFramesParallel(const In* samples, int64_t num_samples, int64_t begin,
                                         int64_t end, Out* out, int64_t frame_stride,
                                         int64_t mel_stride, MelWorkspace& ws, int threads,
                                         int64_t first) const {
  CheckThreads(threads);
  const int workers = WorkersFor(end - begin, threads, kFramesPerThread);
  std::vector<MelWorkspace> extra;
  for (int w = 1; w < workers; ++w) extra.push_back(NewWorkspace());
  ParallelRanges(begin, end, workers, lanes(), [&](int w, int64_t b, int64_t e) {
    ComputeFrames(samples, num_samples, b, e, out + (b - begin) * frame_stride, frame_stride,
                  mel_stride, w == 0 ? ws : extra[w - 1], first);
  });
}

template <typename In, typename Out>
void MelProcessor::Compute(const In* samples, int64_t num_samples, Out* out, MelWorkspace& ws,
                           int threads) const {
  CheckThreads(threads);
  CheckFinite(samples, num_samples);
  const int64_t num_frames = NumFrames(num_samples);
  ComputeFramesParallel(samples, num_samples, 0, num_frames, out, 1, num_frames, ws, threads);
}

}  // namespace synctalk
