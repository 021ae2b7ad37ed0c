// The non-template parts of the Kaldi fbank: options, povey window, mel banks
// and the per-frame stages. See fbank.h for the reference chain.
#include "synctalk/fbank.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

namespace synctalk {
namespace {

constexpr double kPi = 3.14159265358979323846264338327950;

template <typename T>
[[noreturn]] void Invalid(const std::string& name, T value, const std::string& rule) {
  std::ostringstream msg;
  msg << "invalid fbank option " << name << "=" << value << ": " << rule;
  throw std::invalid_argument(msg.str());
}

// torchaudio's mel_scale_scalar (Python float arithmetic, i.e. float64).
double MelScaleScalar(double hz) { return 1127.0 * std::log(1.0 + hz / 700.0); }

// torchaudio's mel_scale on a float32 tensor: every operation in float32.
float MelScaleFloat(float hz) {
  // The log correctly rounded to float32 (through float64), so the weights do
  // not depend on the platform's logf. torch computes this log with SLEEF's
  // SIMD logf (<= 1 ulp): at 16 kHz / 512 it differs by 1 ulp on 21 of the 256
  // bins (docs/DECISIONS.md, "Kaldi fbank").
  const float inner = 1.0f + hz / 700.0f;
  return 1127.0f * static_cast<float>(std::log(static_cast<double>(inner)));
}

}  // namespace

void FbankOptions::Validate() const {
  if (sample_rate < kMinSampleRate || sample_rate > kMaxSampleRate) {
    Invalid("sample_rate", sample_rate,
            "must be in [" + std::to_string(kMinSampleRate) + ", " +
                std::to_string(kMaxSampleRate) + "] Hz");
  }
  if (frame_length < 2 || frame_length > kMaxNfft) {
    Invalid("frame_length", frame_length, "must be in [2, " + std::to_string(kMaxNfft) + "]");
  }
  if (frame_shift < 1 || frame_shift > kMaxNfft) {
    Invalid("frame_shift", frame_shift, "must be in [1, " + std::to_string(kMaxNfft) + "]");
  }
  if (num_bins < kMinFbankBins || num_bins > kMaxMels) {
    Invalid("num_bins", num_bins,
            "must be in [" + std::to_string(kMinFbankBins) + ", " + std::to_string(kMaxMels) + "]");
  }
  if (!(low_freq >= 0.0)) Invalid("low_freq", low_freq, "must be >= 0");
  if (!(high_freq > low_freq)) Invalid("high_freq", high_freq, "must be > low_freq");
  if (!(high_freq <= sample_rate / 2.0)) Invalid("high_freq", high_freq, "must be <= sample_rate / 2");
  if (!(preemphasis >= -1.0 && preemphasis <= 1.0)) {
    Invalid("preemphasis", preemphasis, "must be in [-1, 1]");
  }
  try {
    ResolveSimdLevel(simd, nullptr);
  } catch (const std::invalid_argument& e) {
    Invalid("simd", SimdLevelName(simd), e.what());
  }
}

SparseFilterbank BuildKaldiMelBanks(const FbankOptions& o) {
  const int padded = o.PaddedLength();
  // Python floats (float64) in torchaudio.
  const double fft_bin_width = static_cast<double>(o.sample_rate) / padded;
  const double mel_low = MelScaleScalar(o.low_freq);
  const double mel_high = MelScaleScalar(o.high_freq);
  const double delta = (mel_high - mel_low) / (o.num_bins + 1);
  // From here on torch tensors of the default dtype: the Python scalars are
  // rounded to float32 and every operation is a float32 operation.
  const float low_f = static_cast<float>(mel_low);
  const float delta_f = static_cast<float>(delta);
  const float width_f = static_cast<float>(fft_bin_width);
  std::vector<float> mel(padded / 2);
  for (int k = 0; k < padded / 2; ++k) mel[k] = MelScaleFloat(width_f * static_cast<float>(k));

  SparseFilterbank bank(padded / 2 + 1);
  std::vector<float> row(padded / 2 + 1, 0.0f);  // the Nyquist bin stays 0
  for (int b = 0; b < o.num_bins; ++b) {
    const float bf = static_cast<float>(b);
    const float left = low_f + bf * delta_f;
    const float center = low_f + (bf + 1.0f) * delta_f;
    const float right = low_f + (bf + 2.0f) * delta_f;
    for (int k = 0; k < padded / 2; ++k) {
      const float up = (mel[k] - left) / (center - left);
      const float down = (right - mel[k]) / (right - center);
      row[k] = std::max(0.0f, std::min(up, down));
    }
    bank.AppendRow(row);
  }
  return bank;
}

FbankProcessor::FbankProcessor(const FbankOptions& options)
    : options_((options.Validate(), options)),
      fft_(static_cast<std::size_t>(options.PaddedLength())),
      filterbank_(BuildKaldiMelBanks(options)) {
  // torch.hann_window(N, periodic=False).pow(0.85): Kaldi's povey window.
  const int n = options_.frame_length;
  window_.resize(n);
  const double step = 2.0 * kPi / (n - 1);
  for (int i = 0; i < n; ++i) window_[i] = std::pow(0.5 - 0.5 * std::cos(step * i), 0.85);
  InitFrames(fft_, options_.num_bins, ResolveSimdLevel(options_.simd, nullptr), BinValue::kPower,
             filterbank_);
}

void FbankProcessor::RemoveDcOffset(double* frame) const {
  if (!options_.remove_dc_offset) return;
  const int n = options_.frame_length;
  double sum = 0.0;
  for (int i = 0; i < n; ++i) sum += frame[i];
  const double mean = sum / n;
  for (int i = 0; i < n; ++i) frame[i] -= mean;
}

void FbankProcessor::PreEmphasize(double* frame) const {
  const double coef = options_.preemphasis;
  if (coef == 0.0) return;
  for (int i = options_.frame_length - 1; i > 0; --i) frame[i] -= coef * frame[i - 1];
  frame[0] -= coef * frame[0];
}

void FbankProcessor::ApplyWindow(double* frame) const {
  const int n = options_.frame_length;
  for (int i = 0; i < n; ++i) frame[i] *= window_[i];
  std::fill(frame + n, frame + options_.PaddedLength(), 0.0);
}

void FbankProcessor::Spectrum(const double* frame, Complex* spectrum, Complex* fft_work) const {
  fft_.Forward(frame, spectrum, fft_work);
}

void FbankProcessor::Power(const Complex* spectrum, double* power) const {
  const std::size_t bins = fft_.num_bins();
  for (std::size_t k = 0; k < bins; ++k) {
    power[k] = spectrum[k].re * spectrum[k].re + spectrum[k].im * spectrum[k].im;
  }
}

}  // namespace synctalk
