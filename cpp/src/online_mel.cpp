#include "synctalk/online_mel.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace synctalk {

OnlineMel::OnlineMel(const MelProcessor& processor, int threads)
    : processor_(processor),
      n_mels_(processor.options().n_mels),
      threads_((CheckThreads(threads), threads)),
      ws_(processor.NewWorkspace()) {}

int64_t OnlineMel::SamplesNeeded(int64_t k) const {
  int64_t last = processor_.LastSampleOf(k);
  const int64_t start = k * processor_.options().hop_length - processor_.options().n_fft / 2;
  if (processor_.options().pad_mode == PadMode::kReflect && start < 0) {
    // The reflected left pad reads y[1 .. -start], i.e. x up to -start.
    last = std::max(last, -start);
  }
  return last + 1;
}

void OnlineMel::AcceptWaveform(const float* samples, int64_t num_samples) {
  if (input_finished_) {
    throw std::invalid_argument("AcceptWaveform after InputFinished: call Reset() to start a new stream");
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
  ComputeReadyFrames(-1);
}

void OnlineMel::InputFinished() {
  if (input_finished_) return;
  if (received_ == 0) throw std::invalid_argument("audio is empty: the stream received no samples");
  input_finished_ = true;
  ComputeReadyFrames(received_);
}

void OnlineMel::ComputeReadyFrames(int64_t total_samples) {
  const bool finished = total_samples >= 0;
  const int64_t frames_total = finished ? processor_.NumFrames(total_samples) : -1;
  const int64_t n = finished ? total_samples : received_;
  int64_t end = next_frame_;
  while (finished ? end < frames_total : SamplesNeeded(end) <= received_) ++end;
  if (end > next_frame_) {
    // All frames that became final at once (the SIMD lanes take them in
    // groups): frame-major float32 rows, bitwise the batch path's values.
    rows_.resize(static_cast<std::size_t>(end - next_frame_) * n_mels_);
    processor_.ComputeFramesParallel(samples_.data(), n, next_frame_, end, rows_.data(), n_mels_,
                                     1, ws_, threads_, first_);
    pending_.insert(pending_.end(), rows_.begin(), rows_.end());
    next_frame_ = end;
  }
  // Drop samples no future frame reads (see docs/NUMERICS.md, streaming).
  const int64_t keep_from = std::max<int64_t>(0, processor_.FirstSampleOf(next_frame_));
  if (keep_from - first_ >= 8192) {
    samples_.erase(samples_.begin(), samples_.begin() + (keep_from - first_));
    first_ = keep_from;
  }
}

int64_t OnlineMel::PopFrames(float* out, int64_t max_frames) {
  const int64_t count = std::min<int64_t>(max_frames, NumFramesPending());
  const int64_t values = count * n_mels_;
  std::copy(pending_.begin(), pending_.begin() + values, out);
  pending_.erase(pending_.begin(), pending_.begin() + values);
  return count;
}

void OnlineMel::Reset() {
  samples_.clear();
  first_ = received_ = next_frame_ = 0;
  input_finished_ = false;
  pending_.clear();
}

}  // namespace synctalk
