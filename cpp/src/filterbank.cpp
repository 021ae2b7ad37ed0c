#include "synctalk/filterbank.h"

#include <cstddef>
#include <stdexcept>
#include <string>

namespace synctalk {

void SparseFilterbank::AppendRow(const std::vector<float>& dense) {
  if (static_cast<int>(dense.size()) != num_bins_) {
    throw std::invalid_argument("SparseFilterbank::AppendRow: " + std::to_string(dense.size()) +
                                " weights for " + std::to_string(num_bins_) + " bins");
  }
  int first = -1, last = -1;
  for (int k = 0; k < num_bins_; ++k) {
    if (dense[k] != 0.0f) {
      if (first < 0) first = k;
      last = k;
    }
  }
  tap_at_.push_back(static_cast<int>(weights_.size()));
  first_bin_.push_back(first >= 0 ? first : 0);
  num_taps_.push_back(first >= 0 ? last - first + 1 : 0);
  if (first >= 0) weights_.insert(weights_.end(), dense.begin() + first, dense.begin() + last + 1);
}

std::vector<float> SparseFilterbank::Dense() const {
  std::vector<float> dense(static_cast<std::size_t>(num_rows()) * num_bins_, 0.0f);
  for (int r = 0; r < num_rows(); ++r) {
    for (int t = 0; t < num_taps_[r]; ++t) {
      dense[static_cast<std::size_t>(r) * num_bins_ + first_bin_[r] + t] =
          static_cast<float>(weights_[tap_at_[r] + t]);
    }
  }
  return dense;
}

void SparseFilterbank::Apply(const double* bins, double* out) const {
  for (int r = 0; r < num_rows(); ++r) {
    const double* w = weights_.data() + tap_at_[r];
    const double* x = bins + first_bin_[r];
    double sum = 0.0;
    for (int t = 0; t < num_taps_[r]; ++t) sum += w[t] * x[t];
    out[r] = sum;
  }
}

}  // namespace synctalk
