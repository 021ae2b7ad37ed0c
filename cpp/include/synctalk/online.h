// Streaming front ends: samples in, each frame out as soon as no future
// sample can change it, for the mel spectrogram (OnlineMel) and the Kaldi
// fbank (OnlineFbank) alike.
//
// Shaped like kaldi-native-fbank's online extractor (accept waveform / input
// finished / frames ready / pop frames), but exact: frame k is computed by
// the processor's own ComputeFrames (frames.h) from the same samples as the
// whole-clip path, so a stream's frames equal the processor's Compute bit
// for bit for any chunking. Before the end of input, a frame is computed
// once the processor's SamplesNeeded(k) samples have arrived (for the mel:
// frames that need no end padding; for the fbank, snip_edges: every whole
// frame). InputFinished() computes the rest: the mel's padded end frames;
// none for the fbank.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <stdexcept>
#include <string>
#include <vector>

#include "synctalk/fbank.h"
#include "synctalk/frames.h"
#include "synctalk/mel.h"
#include "synctalk/parallel.h"

namespace synctalk {

// Processor: MelProcessor or FbankProcessor (a FrameProcessor with
// SamplesNeeded(k) and FirstSampleOf(k), the first sample frame k reads).
template <typename Processor>
class OnlineExtractor {
 public:
  // `processor` must outlive this object; it is shared, read-only. The
  // frames that become final in one call are computed on up to `threads`
  // threads (the values do not depend on it); std::invalid_argument unless
  // 1 <= threads <= kMaxThreads.
  explicit OnlineExtractor(const Processor& processor, int threads = 1)
      : processor_(processor),
        threads_((CheckThreads(threads), threads)),
        ws_(processor.NewWorkspace()) {}

  // Appends samples (at the processor's sample rate) and computes every
  // frame that became final. Throws std::invalid_argument on NaN/inf
  // (nothing is appended then) or after InputFinished().
  void AcceptWaveform(const float* samples, int64_t num_samples);
  // Marks the end of input and computes the remaining frames. Idempotent.
  // Throws std::invalid_argument if no samples arrived and the processor
  // would still make a frame of them (the mel: its padded frame 0).
  void InputFinished();
  bool input_finished() const { return input_finished_; }

  int64_t num_samples_received() const { return received_; }
  // Values per frame: n_mels or num_bins.
  int bands() const { return processor_.bands(); }
  // Frames computed so far (final), counted from the start of the stream.
  int64_t NumFramesReady() const { return next_frame_; }
  // Frames computed but not yet taken by PopFrames.
  int64_t NumFramesPending() const {
    return static_cast<int64_t>(pending_.size()) / processor_.bands();
  }
  // Samples that must have arrived before frame k is final (before the end
  // of input is known).
  int64_t SamplesNeeded(int64_t k) const { return processor_.SamplesNeeded(k); }

  // Moves up to `max_frames` pending frames into `out` (frame after frame,
  // bands() float32 values each); returns how many.
  int64_t PopFrames(float* out, int64_t max_frames);

  // Back to the state after construction.
  void Reset();

 private:
  // Computes the frames that became final: those whose samples have all
  // arrived, or, at the end of input, every remaining one.
  void ComputeReadyFrames();

  const Processor& processor_;
  int threads_;
  FrameWorkspace ws_;
  std::vector<float> samples_;  // samples [first_, received_)
  int64_t first_ = 0;
  int64_t received_ = 0;
  int64_t next_frame_ = 0;
  bool input_finished_ = false;
  std::deque<float> pending_;
  std::vector<float> rows_;
};

using OnlineMel = OnlineExtractor<MelProcessor>;
using OnlineFbank = OnlineExtractor<FbankProcessor>;

// --- Template definitions ----------------------------------------------------

template <typename Processor>
void OnlineExtractor<Processor>::AcceptWaveform(const float* samples, int64_t num_samples) {
  if (input_finished_) {
    throw std::invalid_argument(
        "AcceptWaveform after InputFinished: call Reset() to start a new stream");
  }
  if (num_samples < 0) throw std::invalid_argument("num_samples must be >= 0");
  for (int64_t j = 0; j < num_samples; ++j) {
    if (!std::isfinite(samples[j])) {
      throw std::invalid_argument("audio is not finite: sample " + std::to_string(received_ + j) +
                                  " of the stream is " + std::to_string(samples[j]));
    }
  }
  samples_.insert(samples_.end(), samples, samples + num_samples);
  received_ += num_samples;
  ComputeReadyFrames();
}

template <typename Processor>
void OnlineExtractor<Processor>::InputFinished() {
  if (input_finished_) return;
  if (received_ == 0 && processor_.NumFrames(0) > 0) {
    throw std::invalid_argument("audio is empty: the stream received no samples");
  }
  input_finished_ = true;
  ComputeReadyFrames();
}

template <typename Processor>
void OnlineExtractor<Processor>::ComputeReadyFrames() {
  int64_t end = next_frame_;
  if (input_finished_) {
    end = std::max(end, processor_.NumFrames(received_));
  } else {
    while (processor_.SamplesNeeded(end) <= received_) ++end;
  }
  if (end > next_frame_) {
    // All frames that became final at once (the SIMD lanes take them in
    // groups): frame-major float32 rows, bitwise the batch path's values.
    const int bands = processor_.bands();
    rows_.resize(static_cast<std::size_t>(end - next_frame_) * bands);
    processor_.ComputeFramesParallel(samples_.data(), received_, next_frame_, end, rows_.data(),
                                     bands, 1, ws_, threads_, first_);
    pending_.insert(pending_.end(), rows_.begin(), rows_.end());
    next_frame_ = end;
  }
  // Drop samples no future frame reads (see docs/NUMERICS.md, streaming).
  const int64_t keep_from =
      std::min<int64_t>(std::max<int64_t>(0, processor_.FirstSampleOf(next_frame_)), received_);
  if (keep_from - first_ >= 8192) {
    samples_.erase(samples_.begin(), samples_.begin() + (keep_from - first_));
    first_ = keep_from;
  }
}

template <typename Processor>
int64_t OnlineExtractor<Processor>::PopFrames(float* out, int64_t max_frames) {
  const int64_t count = std::max<int64_t>(0, std::min<int64_t>(max_frames, NumFramesPending()));
  const int64_t values = count * processor_.bands();
  std::copy(pending_.begin(), pending_.begin() + values, out);
  pending_.erase(pending_.begin(), pending_.begin() + values);
  return count;
}

template <typename Processor>
void OnlineExtractor<Processor>::Reset() {
  samples_.clear();
  first_ = received_ = next_frame_ = 0;
  input_finished_ = false;
  pending_.clear();
}

extern template class OnlineExtractor<MelProcessor>;
extern template class OnlineExtractor<FbankProcessor>;

}  // namespace synctalk
