// The filterbank of both front ends, stored by rows.
//
// The mel spectrogram's Slaney filters (librosa.filters.mel) and the Kaldi
// fbank's mel banks (torchaudio's get_mel_banks) are both triangles over the
// FFT bins, float32 weights, each non-zero on one short run of bins. This one
// type stores either: per row the run's first bin, its length and its
// weights (float32 values widened to double), and applies it as the
// reference's dense matrix product does, in float64, summing the taps in
// increasing bin order from +0.0 (the zero weights outside the run add
// exact zeros). The SIMD lanes (lanes.h) read the same storage.
#pragma once

#include <vector>

namespace synctalk {

class SparseFilterbank {
 public:
  // A filterbank over `num_bins` bins with no rows yet.
  explicit SparseFilterbank(int num_bins = 0) : num_bins_(num_bins) {}

  // Appends a row given densely (num_bins float32 weights); keeps the run
  // from its first to its last non-zero weight (none for an all-zero row).
  void AppendRow(const std::vector<float>& dense);

  int num_rows() const { return static_cast<int>(first_bin_.size()); }
  int num_bins() const { return num_bins_; }
  // Dense (num_rows x num_bins, row-major) copy.
  std::vector<float> Dense() const;
  // out[r] = sum_k weight[r][k] * bins[k], in float64.
  void Apply(const double* bins, double* out) const;

  // The storage: row r has taps weights()[tap_at()[r] + t], t < num_taps()[r],
  // on bins first_bin()[r] + t.
  const int* first_bin() const { return first_bin_.data(); }
  const int* num_taps() const { return num_taps_.data(); }
  const int* tap_at() const { return tap_at_.data(); }
  const double* weights() const { return weights_.data(); }

 private:
  int num_bins_;
  std::vector<int> first_bin_;   // per row
  std::vector<int> num_taps_;    // per row
  std::vector<int> tap_at_;      // per row: offset into weights_
  std::vector<double> weights_;  // float32 values, widened
};

}  // namespace synctalk
