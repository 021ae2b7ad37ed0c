// Frames of a clip through a front end, on the scalar reference path or the
// SIMD lanes, on one or more threads: the machinery the mel spectrogram
// (mel.h) and the Kaldi fbank (fbank.h) share.
//
// A front end is a class Derived : public FrameProcessor<Derived> with the
// stages of one frame, which it names after its reference (mel.h, fbank.h),
// grouped into three hooks:
//   template <typename In>
//   void PrepareFrame(const In* samples, int64_t num_samples, int64_t k,
//                     double* frame, int64_t first) const;
//       the stages before the FFT: frame k, fft_length() values;
//   void TransformFrame(const double* frame, FrameWorkspace& ws) const;
//       the FFT, the value of each bin (|X| or |X|^2) and the filterbank,
//       into ws.bands;
//   double Finish(double band) const;
//       the stages after the filterbank, one value at a time;
// and NumFrames(num_samples), and kBandMajor: the layout of Compute's output
// (true: bands x frames, the mel's (80, T); false: frames x bands, Kaldi's).
//
// The scalar path runs the hooks frame by frame. The lanes run PrepareFrame
// and Finish per frame as well, and the FFT, bin values and filterbank on L
// frames at once (SpectrumLanes, lanes.h), bitwise what TransformFrame gives
// (docs/NUMERICS.md, "SIMD lanes"). A port transcribes the hooks; this file
// only schedules them.
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

// Scratch memory for one thread's calls into a processor. Build it with the
// processor's NewWorkspace(); reuse it across calls to allocate nothing.
struct FrameWorkspace {
  std::vector<double> frame;      // fft_length()
  std::vector<Complex> spectrum;  // fft_length() / 2 + 1
  std::vector<Complex> fft_work;  // RealFft::work_size()
  std::vector<double> bins;       // the value of each bin: |X| (mel) or |X|^2 (fbank)
  std::vector<double> bands;      // the filterbank's outputs
  // The SIMD lanes (empty on the scalar path): L frames, L x bands sums, scratch.
  std::vector<double> lane_frames;
  std::vector<double> lane_out;
  std::vector<double> lane_scratch;
};

// Frames per thread below which Compute does not start another thread.
constexpr int64_t kFramesPerThread = 64;

// Throws std::invalid_argument for no samples or a NaN or infinite one,
// naming the first offending index.
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

template <typename Derived>
class FrameProcessor {
 public:
  FrameProcessor(const FrameProcessor&) = delete;  // the lanes point into the derived object
  FrameProcessor& operator=(const FrameProcessor&) = delete;

  // The SIMD level in use (kScalar: the per-frame reference code) and the
  // frames it computes at once.
  SimdLevel simd_level() const { return lanes_ ? lanes_->level() : SimdLevel::kScalar; }
  int lanes() const { return lanes_ ? lanes_->lanes() : 1; }
  // Values per frame (n_mels, num_bins) and the FFT length (n_fft, padded).
  int bands() const { return bands_; }
  int fft_length() const { return fft_length_; }

  FrameWorkspace NewWorkspace() const;

  // The whole output of `num_samples` samples (float or double) into `out`
  // (float or double; layout as kBandMajor says), on `threads` threads (the
  // calling one included; `ws` is the calling thread's). Bitwise the same
  // for any thread count and SIMD level. Throws std::invalid_argument for
  // an empty or non-finite input or a bad thread count before writing.
  template <typename In, typename Out>
  void Compute(const In* samples, int64_t num_samples, Out* out, FrameWorkspace& ws,
               int threads = 1) const;

  // Frame k through every stage: bands() values into `out`, spaced `stride`
  // apart. `samples` points at sample number `first` of a signal of
  // `num_samples` samples (first = 0 for a whole clip; a stream keeps only
  // a tail); the frame must not need samples before `first`.
  template <typename In, typename Out>
  void ComputeFrame(const In* samples, int64_t num_samples, int64_t k, Out* out, int64_t stride,
                    FrameWorkspace& ws, int64_t first = 0) const;
  // Frames [begin, end) into `out` (frame k at out + (k - begin) *
  // frame_stride, band b at + b * band_stride), through the SIMD lanes if
  // any: what ComputeFrame gives for each k, bit for bit. The input must
  // have been checked (CheckFinite).
  template <typename In, typename Out>
  void ComputeFrames(const In* samples, int64_t num_samples, int64_t begin, int64_t end, Out* out,
                     int64_t frame_stride, int64_t band_stride, FrameWorkspace& ws,
                     int64_t first = 0) const;
  // ComputeFrames on `threads` threads (extra workspaces made per call).
  template <typename In, typename Out>
  void ComputeFramesParallel(const In* samples, int64_t num_samples, int64_t begin, int64_t end,
                             Out* out, int64_t frame_stride, int64_t band_stride,
                             FrameWorkspace& ws, int threads, int64_t first = 0) const;

 protected:
  FrameProcessor() = default;
  ~FrameProcessor() = default;
  // Called by the derived constructor once its FFT plan and filterbank
  // exist: the sizes, and the lanes of `level` (resolved; kScalar or an odd
  // FFT length: none, the lanes pack an even length into half as many
  // complex points).
  void InitFrames(const RealFft& fft, int bands, SimdLevel level, BinValue value,
                  const SparseFilterbank& filterbank);

 private:
  const Derived& self() const { return static_cast<const Derived&>(*this); }

  int fft_length_ = 0;
  int num_bins_ = 0;
  std::size_t work_size_ = 0;
  int bands_ = 0;
  std::shared_ptr<const SpectrumLanes> lanes_;  // null: scalar
};

// --- Template definitions ----------------------------------------------------

template <typename Derived>
void FrameProcessor<Derived>::InitFrames(const RealFft& fft, int bands, SimdLevel level,
                                         BinValue value, const SparseFilterbank& filterbank) {
  fft_length_ = static_cast<int>(fft.size());
  num_bins_ = static_cast<int>(fft.num_bins());
  work_size_ = fft.work_size();
  bands_ = bands;
  lanes_.reset();
  if (level != SimdLevel::kScalar && fft.size() % 2 == 0) {
    lanes_ = std::make_shared<const SpectrumLanes>(fft, level, value, filterbank);
  }
}

template <typename Derived>
FrameWorkspace FrameProcessor<Derived>::NewWorkspace() const {
  FrameWorkspace ws;
  ws.frame.resize(fft_length_);
  ws.spectrum.resize(num_bins_);
  ws.fft_work.resize(work_size_);
  ws.bins.resize(num_bins_);
  ws.bands.resize(bands_);
  if (lanes_) {
    ws.lane_frames.resize(static_cast<std::size_t>(lanes_->lanes()) * fft_length_);
    ws.lane_out.resize(static_cast<std::size_t>(lanes_->lanes()) * bands_);
    ws.lane_scratch.resize(lanes_->scratch_size());
  }
  return ws;
}

template <typename Derived>
template <typename In, typename Out>
void FrameProcessor<Derived>::ComputeFrame(const In* samples, int64_t num_samples, int64_t k,
                                           Out* out, int64_t stride, FrameWorkspace& ws,
                                           int64_t first) const {
  self().PrepareFrame(samples, num_samples, k, ws.frame.data(), first);
  self().TransformFrame(ws.frame.data(), ws);
  for (int b = 0; b < bands_; ++b) out[b * stride] = static_cast<Out>(self().Finish(ws.bands[b]));
}

template <typename Derived>
template <typename In, typename Out>
void FrameProcessor<Derived>::ComputeFrames(const In* samples, int64_t num_samples, int64_t begin,
                                            int64_t end, Out* out, int64_t frame_stride,
                                            int64_t band_stride, FrameWorkspace& ws,
                                            int64_t first) const {
  if (!lanes_) {
    for (int64_t k = begin; k < end; ++k) {
      ComputeFrame(samples, num_samples, k, out + (k - begin) * frame_stride, band_stride, ws,
                   first);
    }
    return;
  }
  // Groups of L frames, one per lane.
  const int lanes = lanes_->lanes();
  for (int64_t group = begin; group < end; group += lanes) {
    const int count = static_cast<int>(std::min<int64_t>(lanes, end - group));
    for (int l = 0; l < count; ++l) {
      self().PrepareFrame(samples, num_samples, group + l,
                          ws.lane_frames.data() + static_cast<std::size_t>(l) * fft_length_,
                          first);
    }
    // Unused lanes of a last, partial group: zeros (their results are dropped).
    std::fill(ws.lane_frames.begin() + static_cast<std::size_t>(count) * fft_length_,
              ws.lane_frames.end(), 0.0);
    lanes_->Filterbank(ws.lane_frames.data(), ws.lane_out.data(), ws.lane_scratch.data());
    for (int b = 0; b < bands_; ++b) {
      const double* sums = ws.lane_out.data() + static_cast<std::size_t>(b) * lanes;
      Out* band = out + b * band_stride;
      for (int l = 0; l < count; ++l) {
        band[(group + l - begin) * frame_stride] = static_cast<Out>(self().Finish(sums[l]));
      }
    }
  }
}

template <typename Derived>
template <typename In, typename Out>
void FrameProcessor<Derived>::ComputeFramesParallel(const In* samples, int64_t num_samples,
                                                    int64_t begin, int64_t end, Out* out,
                                                    int64_t frame_stride, int64_t band_stride,
                                                    FrameWorkspace& ws, int threads,
                                                    int64_t first) const {
  CheckThreads(threads);
  const int workers = WorkersFor(end - begin, threads, kFramesPerThread);
  std::vector<FrameWorkspace> extra;
  for (int w = 1; w < workers; ++w) extra.push_back(NewWorkspace());
  ParallelRanges(begin, end, workers, lanes(), [&](int w, int64_t b, int64_t e) {
    ComputeFrames(samples, num_samples, b, e, out + (b - begin) * frame_stride, frame_stride,
                  band_stride, w == 0 ? ws : extra[w - 1], first);
  });
}

template <typename Derived>
template <typename In, typename Out>
void FrameProcessor<Derived>::Compute(const In* samples, int64_t num_samples, Out* out,
                                      FrameWorkspace& ws, int threads) const {
  CheckThreads(threads);
  CheckFinite(samples, num_samples);
  const int64_t frames = self().NumFrames(num_samples);
  if constexpr (Derived::kBandMajor) {
    ComputeFramesParallel(samples, num_samples, 0, frames, out, 1, frames, ws, threads);
  } else {
    ComputeFramesParallel(samples, num_samples, 0, frames, out, bands_, 1, ws, threads);
  }
}

}  // namespace synctalk
