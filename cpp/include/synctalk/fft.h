// A mixed-radix FFT for any length, in plain C++17 and double precision.
//
// Why hand-written: the reference (NumPy 2) uses pocketfft, whose header is
// not packaged on PyPI or Debian, and the FFT length 800 = 2^5 * 5^2 is not a
// power of two, which rules out the classic vDSP DFT on iOS as well. This file
// is short enough to be transcribed into Swift line by line; docs/DECISIONS.md
// has the reasoning and docs/NUMERICS.md the accuracy (<= 1e-12 relative to
// numpy.fft for every length tested).
//
// Algorithm: Stockham autosort, decimation in frequency. The length is split
// into factors (4, 2, 3, 5, then any remaining prime, handled by a plain DFT
// butterfly). Each stage reads one buffer and writes the other, so no bit
// reversal is needed. Twiddles are computed once, in the constructor, from
// cos/sin of exactly reduced angles.
#pragma once

#include <cstddef>
#include <vector>

namespace synctalk {

struct Complex {
  double re;
  double im;
};

// Largest length and largest prime factor the FFT accepts. A prime factor p
// costs a direct p-point DFT (p^2 operations per p points), so large primes
// would turn a transform into minutes of work; they are refused instead.
constexpr std::size_t kMaxFftLength = std::size_t{1} << 24;
constexpr std::size_t kMaxPrimeFactor = 1024;
std::size_t LargestPrimeFactor(std::size_t n);
// Throws std::invalid_argument if n is 0, above kMaxFftLength, or has a
// prime factor above kMaxPrimeFactor.
void CheckFftLength(std::size_t n);

// Complex FFT of a fixed length n (forward, unscaled: X[k] = sum x[j] e^{-2pi i jk/n}).
class ComplexFft {
 public:
  explicit ComplexFft(std::size_t n);

  std::size_t size() const { return n_; }
  const std::vector<std::size_t>& factors() const { return factors_; }

  // Transforms `data` (n values) in place. `work` must hold n values; its
  // contents are overwritten. Allocates nothing; safe to call from many
  // threads at once on different buffers.
  void Forward(Complex* data, Complex* work) const;

  struct Stage {
    std::size_t radix;       // p
    std::size_t length;      // current sub-transform length n' (p * m)
    std::size_t stride;      // s: number of interleaved sub-transforms
    std::size_t twiddle_at;  // offset of this stage's (m x p) twiddles
  };
  // The plan, read by the SIMD lanes (lanes.h), which run it on several
  // transforms at once with exactly these twiddles, stages and butterflies.
  const std::vector<Stage>& stages() const { return stages_; }
  const std::vector<Complex>& twiddles() const { return twiddles_; }
  const std::vector<Complex>& radix_roots() const { return radix_roots_; }
  const std::vector<std::size_t>& root_at() const { return root_at_; }

 private:
  std::size_t n_;
  std::vector<std::size_t> factors_;
  std::vector<Stage> stages_;
  std::vector<Complex> twiddles_;     // all stages, w_{n'}^{j k}
  std::vector<Complex> radix_roots_;  // e^{-2 pi i r / p} for generic radices, per stage
  std::vector<std::size_t> root_at_;  // offset into radix_roots_ per stage
};

// Real-input FFT of length n returning the n/2 + 1 non-negative frequency bins
// (numpy.fft.rfft). Even n packs the real input into a complex transform of
// n/2 points; odd n uses a complex transform of n points.
class RealFft {
 public:
  explicit RealFft(std::size_t n);

  std::size_t size() const { return n_; }
  std::size_t num_bins() const { return n_ / 2 + 1; }
  // Number of Complex values the `work` buffer of Forward must hold.
  std::size_t work_size() const;

  // in: n reals; out: n/2 + 1 bins; work: work_size() values.
  void Forward(const double* in, Complex* out, Complex* work) const;

  // The plan, for the SIMD lanes (lanes.h).
  const ComplexFft& half() const { return half_; }
  const std::vector<Complex>& unpack() const { return unpack_; }

 private:
  std::size_t n_;
  ComplexFft half_;               // n/2 points (even n) or n points (odd n)
  std::vector<Complex> unpack_;   // e^{-2 pi i k / n}, k < n/2 (even n)
};

}  // namespace synctalk
