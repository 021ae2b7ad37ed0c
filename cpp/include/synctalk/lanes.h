// SIMD across frames: several frames at once, one per lane, bitwise equal to
// the scalar reference.
//
// The scalar per-frame code (fft.cpp, mel.cpp, fbank.cpp) is THE reference a
// port transcribes. The lanes run the same plan on L frames at once (L = 2
// for SSE2 and NEON, 4 for AVX2, 8 for AVX-512F): structure of arrays, lane l
// holding frame l, every lane doing exactly the scalar operations in the
// scalar order (same twiddles, same butterflies, same summation order of the
// filterbank; no fused multiply-add: the core is built with
// -ffp-contract=off). IEEE-754 +, -, *, / and sqrt are correctly rounded, so
// each lane's results are bit for bit the scalar ones (docs/NUMERICS.md,
// "SIMD lanes"). The logarithms (dB, Kaldi log) stay scalar.
//
// One kernel template (src/lanes_kernel.inc) is compiled once per instruction
// set, each in its own translation unit with its own flags (-msse2, -mavx2,
// -mavx512f; never -march=native); the level is chosen at run time from what
// the CPU supports and the option (MelOptions::simd, FbankOptions::simd),
// with the scalar path as the fallback. The core reads no environment
// variable: the Python bindings and the C API apply SYNCTALK_AUDIO_SIMD's cap
// to the option at their boundary (ResolveSimdLevel with its value).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "synctalk/fft.h"
#include "synctalk/filterbank.h"
#include "synctalk/options.h"  // SimdLevel

namespace synctalk {

namespace lanes {
struct Plan;  // the plain-data view the kernels read (src/lanes_plan.h)
}  // namespace lanes

// Frames per group at this level (1 for scalar).
int SimdLanes(SimdLevel level);
// The levels compiled into this build that the running CPU supports, scalar
// first, best last.
std::vector<SimdLevel> AvailableSimdLevels();
// The level to run for the option `requested` and the cap `env_value` (the
// value of SYNCTALK_AUDIO_SIMD as the caller read it, or nullptr: no cap):
//  - kAuto: the best available level;
//  - an explicit level: that level; std::invalid_argument if this CPU or
//    build lacks it;
//  - then capped by the environment: the best available level not above it.
// Throws std::invalid_argument for an unknown environment value.
SimdLevel ResolveSimdLevel(SimdLevel requested, const char* env_value);

// What the lanes compute from each bin before the filterbank.
enum class BinValue {
  kMagnitude,  // sqrt(re^2 + im^2): the mel spectrogram
  kPower,      // re^2 + im^2: the Kaldi fbank
};

// The real FFT of an even length, |X| or |X|^2 and a sparse filterbank, on
// lanes() frames at once. Build it once per plan; const and thread-safe, the
// scratch is the caller's.
class SpectrumLanes {
 public:
  // `fft` (even length) and `filterbank` (over fft.num_bins() bins; no rows
  // for the spectrum alone) must outlive this object. `level` must be
  // resolved (not kAuto, not kScalar) and available; throws
  // std::invalid_argument otherwise.
  SpectrumLanes(const RealFft& fft, SimdLevel level, BinValue value,
                const SparseFilterbank& filterbank);
  ~SpectrumLanes();
  SpectrumLanes(const SpectrumLanes&) = delete;
  SpectrumLanes& operator=(const SpectrumLanes&) = delete;

  SimdLevel level() const { return level_; }
  int lanes() const { return lanes_; }
  // doubles of scratch each call needs (aligned by the kernel itself).
  std::size_t scratch_size() const;

  // frames: lanes() windowed frames of n values, frame l at frames + l * n.
  // out: rows x lanes() filterbank sums, out[r * lanes() + l] for frame l,
  // each bitwise what the scalar Spectrum -> Magnitude/Power -> Apply gives.
  void Filterbank(const double* frames, double* out, double* scratch) const;
  // The n / 2 + 1 bins of each frame: out[l * bins + k], bitwise RealFft::Forward.
  void Spectrum(const double* frames, Complex* out, double* scratch) const;

 private:
  SimdLevel level_;
  int lanes_;
  std::vector<std::size_t> stage_data_;
  std::unique_ptr<lanes::Plan> plan_;
};

}  // namespace synctalk
