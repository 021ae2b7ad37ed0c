// The plain-data view of a SpectrumLanes plan that the per-ISA kernels read,
// and the kernels' entry points. Kept free of the standard library on
// purpose: the kernels are compiled with -mavx2 / -mavx512f, and an inline
// function of a shared header instantiated there could be picked by the
// linker for the scalar code too (then running AVX-512 on a CPU without it).
// The kernel files include only this header and the intrinsics.
#pragma once

#include <stddef.h>

namespace synctalk {
namespace lanes {

struct Plan {
  // Real FFT of even length n = 2h, packed into a complex FFT of h points.
  size_t n;
  size_t h;
  size_t num_stages;
  const size_t* radix;       // per stage
  const size_t* length;      // per stage
  const size_t* stride;      // per stage
  const size_t* twiddle_at;  // per stage, into twiddles (complex values)
  const size_t* root_at;     // per stage, into roots (complex values)
  const double* twiddles;    // (re, im) pairs
  const double* roots;       // (re, im) pairs
  const double* unpack;      // (re, im) pairs, h + 1 of them
  // Filterbank.
  int power;                 // 1: re^2 + im^2; 0: sqrt(re^2 + im^2)
  int rows;
  const int* first;
  const int* taps;
  const int* at;
  const double* weights;
};

// Doubles of scratch a call needs for `lanes` lanes (including alignment slack).
static inline size_t ScratchDoubles(const Plan& p, int lanes) {
  // two complex buffers of h + 1 values and the bins' values, plus 64 bytes.
  return static_cast<size_t>(lanes) * (4 * (p.h + 1) + (p.h + 1)) + 8;
}

// One entry point per instruction set (lanes_<isa>.cpp), each defined only
// where CMake compiles it (SYNCTALK_LANES_<ISA>). frames: L windowed frames of
// n values (frame l at frames + l * n). out: rows x L filterbank sums
// (out[r * L + l]). If `spectrum` is not null, the (h + 1) bins of each frame
// go there instead, as (re, im) pairs, frame l at spectrum + 2 * l * (h + 1).
#define SYNCTALK_DECLARE_LANES(isa)                                                \
  namespace isa {                                                                 \
  int Lanes();                                                                    \
  void Run(const Plan& plan, const double* frames, double* out, double* spectrum, \
           double* scratch);                                                      \
  }
SYNCTALK_DECLARE_LANES(sse2)
SYNCTALK_DECLARE_LANES(avx2)
SYNCTALK_DECLARE_LANES(avx512)
SYNCTALK_DECLARE_LANES(neon)
#undef SYNCTALK_DECLARE_LANES

}  // namespace lanes
}  // namespace synctalk
