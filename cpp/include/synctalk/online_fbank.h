// Streaming Kaldi fbank: samples in, each frame out as soon as its samples
// have arrived.
//
// Frame k reads samples [frame_shift k, frame_shift k + frame_length) and
// nothing else (snip_edges: no padding at either end), so it is computed the
// moment sample frame_shift k + frame_length - 1 arrives, by the same
// FbankProcessor::ComputeFrame as the whole-clip path: a stream's frames equal
// FbankProcessor::Compute's bit for bit for any chunking. The end of input
// adds no frame.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "synctalk/fbank.h"

namespace synctalk {

class OnlineFbank {
 public:
  // `processor` must outlive this object; it is shared, read-only.
  explicit OnlineFbank(const FbankProcessor& processor);

  // Appends samples and computes every frame they complete. Throws
  // std::invalid_argument on NaN/inf (nothing is appended then) or after
  // InputFinished().
  void AcceptWaveform(const float* samples, int64_t num_samples);
  // Marks the end of input (no frame is added). Idempotent.
  void InputFinished() { input_finished_ = true; }
  bool input_finished() const { return input_finished_; }

  int64_t num_samples_received() const { return received_; }
  int num_bins() const { return num_bins_; }
  // Frames computed so far, counted from the start of the stream.
  int64_t NumFramesReady() const { return next_frame_; }
  // Frames computed but not yet taken by PopFrames.
  int64_t NumFramesPending() const { return static_cast<int64_t>(pending_.size()) / num_bins_; }
  // Samples that must have arrived before frame k is computed.
  int64_t SamplesNeeded(int64_t k) const { return processor_.SamplesNeeded(k); }

  // Moves up to `max_frames` pending frames into `out` (frame after frame,
  // num_bins float32 values each); returns how many.
  int64_t PopFrames(float* out, int64_t max_frames);

  // Back to the state after construction.
  void Reset();

 private:
  const FbankProcessor& processor_;
  int num_bins_;
  FbankWorkspace ws_;
  std::vector<float> samples_;  // samples [first_, received_)
  int64_t first_ = 0;
  int64_t received_ = 0;
  int64_t next_frame_ = 0;
  bool input_finished_ = false;
  std::deque<float> pending_;
  std::vector<float> rows_;
};

}  // namespace synctalk
