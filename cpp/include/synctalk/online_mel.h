// Streaming mel spectrogram: samples in, each mel frame out as soon as no
// future sample can change it.
//
// Shaped like kaldi-native-fbank's online extractor (accept waveform / input
// finished / frames ready / get frame), but exact: frame k is computed by the
// same MelProcessor::ComputeFrame as the whole-clip path, from the same
// samples, so a stream's frames equal MelProcessor::Compute's bit for bit for
// any chunking. Before the end of input only frames that need no end padding
// are produced; InputFinished() computes the rest with the batch path's
// padding (zeros or reflection).
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "synctalk/mel.h"

namespace synctalk {

class OnlineMel {
 public:
  // `processor` must outlive this object; it is shared, read-only. The
  // frames that become final in one call are computed on up to `threads`
  // threads (the values do not depend on it); std::invalid_argument unless
  // 1 <= threads <= kMaxThreads.
  explicit OnlineMel(const MelProcessor& processor, int threads = 1);

  // Appends samples (at the processor's sample rate) and computes every frame
  // that became final. Throws std::invalid_argument on NaN/inf (nothing is
  // appended then) or after InputFinished().
  void AcceptWaveform(const float* samples, int64_t num_samples);
  // Marks the end of input and computes the remaining frames. Idempotent.
  // With no samples at all, throws std::invalid_argument.
  void InputFinished();
  bool input_finished() const { return input_finished_; }

  int64_t num_samples_received() const { return received_; }
  int n_mels() const { return n_mels_; }
  // Frames computed so far (final), counted from the start of the stream.
  int64_t NumFramesReady() const { return next_frame_; }
  // Frames computed but not yet taken by PopFrames.
  int64_t NumFramesPending() const { return static_cast<int64_t>(pending_.size()) / n_mels_; }
  // Samples that must have arrived before frame k is final (before the end
  // of input is known).
  int64_t SamplesNeeded(int64_t k) const;

  // Moves up to `max_frames` pending frames into `out` (frame-major: frame
  // after frame, n_mels float32 values each); returns how many.
  int64_t PopFrames(float* out, int64_t max_frames);

  // Back to the state after construction.
  void Reset();

 private:
  void ComputeReadyFrames(int64_t total_samples);

  const MelProcessor& processor_;
  int n_mels_;
  int threads_;
  MelWorkspace ws_;
  std::vector<float> samples_;  // samples [first_, received_)
  int64_t first_ = 0;
  int64_t received_ = 0;
  int64_t next_frame_ = 0;
  bool input_finished_ = false;
  std::deque<float> pending_;
  std::vector<float> rows_;
};

}  // namespace synctalk
