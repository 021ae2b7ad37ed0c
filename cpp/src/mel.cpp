// The non-template parts of the mel spectrogram: options, window, filterbank,
// and the per-frame stages. See mel.h for the reference chain.
#include "synctalk/mel.h"

#include "synctalk/lanes.h"

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
  msg << "invalid mel option " << name << "=" << value << ": " << rule;
  throw std::invalid_argument(msg.str());
}

// librosa.hz_to_mel(htk=False): the Slaney scale, linear below 1 kHz.
double HzToMel(double hz) {
  const double f_sp = 200.0 / 3;
  const double min_log_hz = 1000.0;
  const double min_log_mel = min_log_hz / f_sp;
  const double logstep = std::log(6.4) / 27.0;
  if (hz >= min_log_hz) return min_log_mel + std::log(hz / min_log_hz) / logstep;
  return hz / f_sp;
}

// librosa.mel_to_hz(htk=False).
double MelToHz(double mel) {
  const double f_sp = 200.0 / 3;
  const double min_log_hz = 1000.0;
  const double min_log_mel = min_log_hz / f_sp;
  const double logstep = std::log(6.4) / 27.0;
  if (mel >= min_log_mel) return min_log_hz * std::exp(logstep * (mel - min_log_mel));
  return 0.0 + f_sp * mel;
}

// numpy.linspace(start, stop, num)[i]: i * step + start, the last one exact.
double Linspace(double start, double stop, int num, int i) {
  if (num > 1 && i == num - 1) return stop;
  const double step = (stop - start) / (num - 1);
  return static_cast<double>(i) * step + start;
}

// scipy.signal.get_window("hann", length, fftbins=True): the periodic Hann,
// computed as scipy does (a symmetric window of length + 1, truncated).
std::vector<double> PeriodicHann(int length) {
  std::vector<double> w(length);
  if (length == 1) {
    w[0] = 1.0;
    return w;
  }
  for (int i = 0; i < length; ++i) {
    const double fac = Linspace(-kPi, kPi, length + 1, i);
    w[i] = (0.0 + 0.5 * 1.0) + 0.5 * std::cos(fac);
  }
  return w;
}

}  // namespace

PadMode ParsePadMode(const std::string& name) {
  if (name == "constant") return PadMode::kConstant;
  if (name == "reflect") return PadMode::kReflect;
  throw std::invalid_argument("invalid pad_mode '" + name +
                              "': expected 'constant' (librosa >= 0.10) or 'reflect' (librosa < 0.10)");
}

const char* PadModeName(PadMode mode) {
  return mode == PadMode::kReflect ? "reflect" : "constant";
}

void MelOptions::Validate() const {
  const std::string max_db = std::to_string(static_cast<int>(kMaxLevelDb));
  if (sample_rate < kMinSampleRate || sample_rate > kMaxSampleRate) {
    Invalid("sample_rate", sample_rate,
            "must be in [" + std::to_string(kMinSampleRate) + ", " +
                std::to_string(kMaxSampleRate) + "] Hz");
  }
  if (n_fft <= 0) Invalid("n_fft", n_fft, "must be > 0");
  if (n_fft > kMaxNfft) Invalid("n_fft", n_fft, "must be <= " + std::to_string(kMaxNfft));
  try {
    CheckFftLength(static_cast<std::size_t>(n_fft));
  } catch (const std::invalid_argument& e) {
    Invalid("n_fft", n_fft, e.what());
  }
  if (hop_length <= 0 || hop_length > kMaxNfft) {
    Invalid("hop_length", hop_length, "must be in [1, " + std::to_string(kMaxNfft) + "]");
  }
  if (win_length <= 0 || win_length > n_fft) {
    Invalid("win_length", win_length, "must be in [1, n_fft=" + std::to_string(n_fft) + "]");
  }
  if (n_mels <= 0 || n_mels > kMaxMels) {
    Invalid("n_mels", n_mels, "must be in [1, " + std::to_string(kMaxMels) + "]");
  }
  if (!(fmin >= 0.0)) Invalid("fmin", fmin, "must be >= 0");
  if (!(fmax > fmin)) Invalid("fmax", fmax, "must be > fmin");
  if (!(fmax <= sample_rate / 2.0)) Invalid("fmax", fmax, "must be <= sample_rate / 2");
  if (!(preemphasis >= -1.0 && preemphasis <= 1.0)) {
    Invalid("preemphasis", preemphasis, "must be in [-1, 1]");
  }
  if (!(std::fabs(ref_level_db) <= kMaxLevelDb)) {
    Invalid("ref_level_db", ref_level_db, "must be in [-" + max_db + ", " + max_db + "]");
  }
  if (!(min_level_db >= -kMaxLevelDb && min_level_db < 0.0)) {
    Invalid("min_level_db", min_level_db, "must be in [-" + max_db + ", 0)");
  }
  if (!(max_abs_value > 0.0 && max_abs_value <= kMaxAbsValueLimit)) {
    Invalid("max_abs_value", max_abs_value, "must be in (0, 1e6]");
  }
  try {
    ResolveSimdLevel(simd, nullptr);
  } catch (const std::invalid_argument& e) {
    Invalid("simd", SimdLevelName(simd), e.what());
  }
}

SparseFilterbank BuildMelFilterbank(const MelOptions& o) {
  const int num_mels = o.n_mels, num_bins = o.n_fft / 2 + 1;
  // librosa.fft_frequencies: numpy.fft.rfftfreq(n_fft, d=1/sr) = k * (1 / (n_fft * d)).
  const double bin_hz = 1.0 / (o.n_fft * (1.0 / o.sample_rate));
  std::vector<double> fft_freqs(num_bins);
  for (int k = 0; k < num_bins; ++k) fft_freqs[k] = k * bin_hz;
  // librosa.mel_frequencies(n_mels + 2, fmin, fmax): evenly spaced in mel.
  const double min_mel = HzToMel(o.fmin), max_mel = HzToMel(o.fmax);
  std::vector<double> mel_f(num_mels + 2);
  for (int i = 0; i < num_mels + 2; ++i) mel_f[i] = MelToHz(Linspace(min_mel, max_mel, num_mels + 2, i));

  SparseFilterbank bank(num_bins);
  std::vector<float> row(num_bins);
  for (int m = 0; m < num_mels; ++m) {
    const double fdiff_lo = mel_f[m + 1] - mel_f[m];
    const double fdiff_hi = mel_f[m + 2] - mel_f[m + 1];
    const double enorm = 2.0 / (mel_f[m + 2] - mel_f[m]);
    for (int k = 0; k < num_bins; ++k) {
      const double lower = -(mel_f[m] - fft_freqs[k]) / fdiff_lo;
      const double upper = (mel_f[m + 2] - fft_freqs[k]) / fdiff_hi;
      // librosa stores the triangle in a float32 array, then scales it in
      // float64 and rounds to float32 again: keep both roundings.
      const float triangle = static_cast<float>(std::max(0.0, std::min(lower, upper)));
      row[k] = static_cast<float>(static_cast<double>(triangle) * enorm);
    }
    bank.AppendRow(row);
  }
  return bank;
}

MelProcessor::MelProcessor(const MelOptions& options)
    : options_((options.Validate(), options)),
      fft_(static_cast<std::size_t>(options.n_fft)),
      filterbank_(BuildMelFilterbank(options)) {
  // librosa.util.pad_center: the win_length window centred in n_fft zeros.
  window_.assign(options_.n_fft, 0.0);
  const std::vector<double> hann = PeriodicHann(options_.win_length);
  const int offset = (options_.n_fft - options_.win_length) / 2;
  std::copy(hann.begin(), hann.end(), window_.begin() + offset);
  // wav2lip: min_level = np.exp(min_level_db / 20 * np.log(10)).
  min_level_ = std::exp(options_.min_level_db / 20 * std::log(10.0));
  InitFrames(fft_, options_.n_mels, ResolveSimdLevel(options_.simd, nullptr),
             BinValue::kMagnitude, filterbank_);
}

int64_t MelProcessor::SamplesNeeded(int64_t k) const {
  int64_t last = LastSampleOf(k);
  const int64_t start = k * options_.hop_length - options_.n_fft / 2;
  if (options_.pad_mode == PadMode::kReflect && start < 0) {
    // The reflected left pad reads y[1 .. -start], i.e. x up to -start.
    last = std::max(last, -start);
  }
  return last + 1;
}

int64_t MelProcessor::SourceIndex(int64_t j, int64_t n) const {
  if (j >= 0 && j < n) return j;
  if (options_.pad_mode == PadMode::kConstant) return -1;
  // numpy.pad(mode="reflect"), repeated for pads longer than the signal:
  // the even periodic extension with period 2 (n - 1).
  if (n == 1) return 0;
  const int64_t period = 2 * (n - 1);
  int64_t r = (j < 0 ? -j : j) % period;
  return r < n ? r : period - r;
}

void MelProcessor::ApplyWindow(double* frame) const {
  const double* w = window_.data();
  for (int i = 0; i < options_.n_fft; ++i) frame[i] *= w[i];
}

void MelProcessor::Spectrum(const double* frame, Complex* spectrum, Complex* fft_work) const {
  fft_.Forward(frame, spectrum, fft_work);
}

void MelProcessor::Magnitude(const Complex* spectrum, double* magnitude) const {
  const std::size_t bins = fft_.num_bins();
  for (std::size_t k = 0; k < bins; ++k) {
    magnitude[k] = std::sqrt(spectrum[k].re * spectrum[k].re + spectrum[k].im * spectrum[k].im);
  }
}

}  // namespace synctalk
