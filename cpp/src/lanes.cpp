// Choosing the SIMD level and running the per-ISA lanes kernels; see lanes.h.
#include "synctalk/lanes.h"

#include <stdexcept>
#include <string>

#include "lanes_plan.h"

namespace synctalk {
namespace {

// Preference order on one CPU family (NEON and SSE2 never meet).
int Rank(SimdLevel level) {
  switch (level) {
    case SimdLevel::kScalar: return 0;
    case SimdLevel::kSse2: return 1;
    case SimdLevel::kNeon: return 1;
    case SimdLevel::kAvx2: return 2;
    case SimdLevel::kAvx512: return 3;
    case SimdLevel::kAuto: break;
  }
  return 4;
}

bool Supported(SimdLevel level) {
  switch (level) {
    case SimdLevel::kScalar: return true;
#if defined(SYNCTALK_LANES_SSE2)
    case SimdLevel::kSse2: return __builtin_cpu_supports("sse2");
#endif
#if defined(SYNCTALK_LANES_AVX2)
    case SimdLevel::kAvx2: return __builtin_cpu_supports("avx2");
#endif
#if defined(SYNCTALK_LANES_AVX512)
    case SimdLevel::kAvx512: return __builtin_cpu_supports("avx512f");
#endif
#if defined(SYNCTALK_LANES_NEON)
    case SimdLevel::kNeon: return true;  // part of every aarch64 CPU
#endif
    default: return false;
  }
}

const char* kLevelNames = "auto, scalar, sse2, avx2, avx512, neon";

std::string AvailableNames() {
  std::string names;
  for (SimdLevel level : AvailableSimdLevels()) {
    names += (names.empty() ? "" : ", ") + std::string(SimdLevelName(level));
  }
  return names;
}

}  // namespace

SimdLevel ParseSimdLevel(const std::string& name) {
  if (name == "auto") return SimdLevel::kAuto;
  if (name == "scalar") return SimdLevel::kScalar;
  if (name == "sse2") return SimdLevel::kSse2;
  if (name == "avx2") return SimdLevel::kAvx2;
  if (name == "avx512") return SimdLevel::kAvx512;
  if (name == "neon") return SimdLevel::kNeon;
  throw std::invalid_argument("invalid simd '" + name + "': expected one of " + kLevelNames);
}

const char* SimdLevelName(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAuto: return "auto";
    case SimdLevel::kScalar: return "scalar";
    case SimdLevel::kSse2: return "sse2";
    case SimdLevel::kAvx2: return "avx2";
    case SimdLevel::kAvx512: return "avx512";
    case SimdLevel::kNeon: return "neon";
  }
  return "scalar";
}

int SimdLanes(SimdLevel level) {
  switch (level) {
    case SimdLevel::kSse2: return 2;
    case SimdLevel::kNeon: return 2;
    case SimdLevel::kAvx2: return 4;
    case SimdLevel::kAvx512: return 8;
    default: return 1;
  }
}

std::vector<SimdLevel> AvailableSimdLevels() {
#if defined(SYNCTALK_LANES_SSE2) || defined(SYNCTALK_LANES_AVX2) || defined(SYNCTALK_LANES_AVX512)
  // Only where __builtin_cpu_supports is used: it needs the compiler's
  // runtime (cpp/CMakeLists.txt checks that it links), the scalar-only
  // build does not.
  __builtin_cpu_init();
#endif
  std::vector<SimdLevel> levels;
  for (SimdLevel level : {SimdLevel::kScalar, SimdLevel::kSse2, SimdLevel::kNeon,
                          SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    if (Supported(level)) levels.push_back(level);
  }
  return levels;
}

SimdLevel ResolveSimdLevel(SimdLevel requested, const char* env_value) {
  const std::vector<SimdLevel> available = AvailableSimdLevels();
  SimdLevel level = available.back();
  if (requested != SimdLevel::kAuto) {
    bool found = false;
    for (SimdLevel a : available) found = found || a == requested;
    if (!found) {
      throw std::invalid_argument(std::string("SIMD level '") + SimdLevelName(requested) +
                                  "' is not available on this CPU or build (available: " +
                                  AvailableNames() + "); use 'auto' for the best one");
    }
    level = requested;
  }
  if (env_value != nullptr && env_value[0] != '\0') {
    SimdLevel cap;
    try {
      cap = ParseSimdLevel(env_value);
    } catch (const std::invalid_argument&) {
      throw std::invalid_argument(std::string("invalid environment variable ") + kSimdEnvVar +
                                  "='" + env_value + "': expected one of " + kLevelNames +
                                  " (or unset it)");
    }
    if (cap != SimdLevel::kAuto && Rank(cap) < Rank(level)) {
      // The best available level not above the cap (scalar at least).
      level = SimdLevel::kScalar;
      for (SimdLevel a : available) {
        if (Rank(a) <= Rank(cap)) level = a;
      }
    }
  }
  return level;
}

SpectrumLanes::SpectrumLanes(const RealFft& fft, SimdLevel level, BinValue value,
                             const SparseFilterbank& filterbank)
    : level_(level), lanes_(SimdLanes(level)), plan_(new lanes::Plan()) {
  if (level == SimdLevel::kAuto || level == SimdLevel::kScalar || !Supported(level)) {
    throw std::invalid_argument(std::string("SpectrumLanes: level '") + SimdLevelName(level) +
                                "' is not a SIMD level available here");
  }
  if (fft.size() % 2 != 0) {
    throw std::invalid_argument("SpectrumLanes: the FFT length must be even, got " +
                                std::to_string(fft.size()));
  }
  const ComplexFft& half = fft.half();
  const auto& stages = half.stages();
  const std::size_t count = stages.size();
  stage_data_.resize(5 * count);
  for (std::size_t i = 0; i < count; ++i) {
    stage_data_[i] = stages[i].radix;
    stage_data_[count + i] = stages[i].length;
    stage_data_[2 * count + i] = stages[i].stride;
    stage_data_[3 * count + i] = stages[i].twiddle_at;
    stage_data_[4 * count + i] = half.root_at()[i];
  }
  lanes::Plan& p = *plan_;
  p.n = fft.size();
  p.h = fft.size() / 2;
  p.num_stages = count;
  p.radix = stage_data_.data();
  p.length = stage_data_.data() + count;
  p.stride = stage_data_.data() + 2 * count;
  p.twiddle_at = stage_data_.data() + 3 * count;
  p.root_at = stage_data_.data() + 4 * count;
  // Complex is two doubles (re, im), standard layout: the kernels read pairs.
  static_assert(sizeof(Complex) == 2 * sizeof(double), "Complex must be two packed doubles");
  p.twiddles = reinterpret_cast<const double*>(half.twiddles().data());
  p.roots = reinterpret_cast<const double*>(half.radix_roots().data());
  p.unpack = reinterpret_cast<const double*>(fft.unpack().data());
  p.power = value == BinValue::kPower ? 1 : 0;
  p.rows = filterbank.num_rows();
  p.first = filterbank.first_bin();
  p.taps = filterbank.num_taps();
  p.at = filterbank.tap_at();
  p.weights = filterbank.weights();
}

SpectrumLanes::~SpectrumLanes() = default;

std::size_t SpectrumLanes::scratch_size() const { return lanes::ScratchDoubles(*plan_, lanes_); }

namespace {

// The parameters are unused in a build without lanes (scalar path only).
void RunLevel(SimdLevel level, [[maybe_unused]] const lanes::Plan& plan,
              [[maybe_unused]] const double* frames, [[maybe_unused]] double* out,
              [[maybe_unused]] double* spectrum, [[maybe_unused]] double* scratch) {
  switch (level) {
#if defined(SYNCTALK_LANES_SSE2)
    case SimdLevel::kSse2: lanes::sse2::Run(plan, frames, out, spectrum, scratch); return;
#endif
#if defined(SYNCTALK_LANES_AVX2)
    case SimdLevel::kAvx2: lanes::avx2::Run(plan, frames, out, spectrum, scratch); return;
#endif
#if defined(SYNCTALK_LANES_AVX512)
    case SimdLevel::kAvx512: lanes::avx512::Run(plan, frames, out, spectrum, scratch); return;
#endif
#if defined(SYNCTALK_LANES_NEON)
    case SimdLevel::kNeon: lanes::neon::Run(plan, frames, out, spectrum, scratch); return;
#endif
    default: throw std::logic_error("SpectrumLanes: no kernel for this level");
  }
}

}  // namespace

void SpectrumLanes::Filterbank(const double* frames, double* out, double* scratch) const {
  RunLevel(level_, *plan_, frames, out, nullptr, scratch);
}

void SpectrumLanes::Spectrum(const double* frames, Complex* out, double* scratch) const {
  RunLevel(level_, *plan_, frames, nullptr, reinterpret_cast<double*>(out), scratch);
}

}  // namespace synctalk
