#include "synctalk/online_fbank.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace synctalk {

OnlineFbank::OnlineFbank(const FbankProcessor& processor)
    : processor_(processor),
      num_bins_(processor.options().num_bins),
      ws_(processor.NewWorkspace()) {}

void OnlineFbank::AcceptWaveform(const float* samples, int64_t num_samples) {
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
  int64_t end = next_frame_;
  while (processor_.SamplesNeeded(end) <= received_) ++end;
  if (end > next_frame_) {
    // All frames this call completed at once (the SIMD lanes take them in
    // groups): bitwise the batch path's rows.
    rows_.resize(static_cast<std::size_t>(end - next_frame_) * num_bins_);
    processor_.ComputeFrames(samples_.data(), next_frame_, end, rows_.data(), ws_, first_);
    pending_.insert(pending_.end(), rows_.begin(), rows_.end());
    next_frame_ = end;
  }
  // Drop samples no future frame reads.
  const int64_t keep_from = processor_.FirstSampleOf(next_frame_);
  if (keep_from - first_ >= 8192) {
    const int64_t drop = std::min<int64_t>(keep_from, received_) - first_;
    samples_.erase(samples_.begin(), samples_.begin() + drop);
    first_ += drop;
  }
}

int64_t OnlineFbank::PopFrames(float* out, int64_t max_frames) {
  const int64_t count = std::max<int64_t>(0, std::min<int64_t>(max_frames, NumFramesPending()));
  const int64_t values = count * num_bins_;
  std::copy(pending_.begin(), pending_.begin() + values, out);
  pending_.erase(pending_.begin(), pending_.begin() + values);
  return count;
}

void OnlineFbank::Reset() {
  samples_.clear();
  first_ = received_ = next_frame_ = 0;
  input_finished_ = false;
  pending_.clear();
}

}  // namespace synctalk
