// The lanes kernel for avx512: 8 frames at once. Compiled with -mavx512f
// and -ffp-contract=off (cpp/CMakeLists.txt), only where CMake defines
// SYNCTALK_LANES_AVX512; run only if the CPU supports it (lanes.cpp).
#include "lanes_plan.h"

#if defined(SYNCTALK_LANES_AVX512)
// GCC 12 warns about the deliberately undefined source register inside
// _mm512_sqrt_pd (avx512fintrin.h); the warning is about the header. (Clang
// has no such warning, and would warn about the unknown name.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

namespace synctalk {
namespace lanes {
namespace avx512 {
namespace {

typedef double V __attribute__((vector_size(64)));
constexpr int kLanes = 8;
inline V Sqrt(V x) { return reinterpret_cast<V>(_mm512_sqrt_pd(reinterpret_cast<__m512d>(x))); }

}  // namespace
}  // namespace avx512
}  // namespace lanes
}  // namespace synctalk

#define SYNCTALK_LANES_NS avx512
#include "lanes_kernel.inc"
#undef SYNCTALK_LANES_NS

#endif  // SYNCTALK_LANES_AVX512
