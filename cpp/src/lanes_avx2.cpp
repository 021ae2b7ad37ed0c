// The lanes kernel for avx2: 4 frames at once. Compiled with -mavx2 (no -mfma)
// and -ffp-contract=off (cpp/CMakeLists.txt), only where CMake defines
// SYNCTALK_LANES_AVX2; run only if the CPU supports it (lanes.cpp).
#include "lanes_plan.h"

#if defined(SYNCTALK_LANES_AVX2)
#include <immintrin.h>

namespace synctalk {
namespace lanes {
namespace avx2 {
namespace {

typedef double V __attribute__((vector_size(32)));
constexpr int kLanes = 4;
inline V Sqrt(V x) { return reinterpret_cast<V>(_mm256_sqrt_pd(reinterpret_cast<__m256d>(x))); }

}  // namespace
}  // namespace avx2
}  // namespace lanes
}  // namespace synctalk

#define SYNCTALK_LANES_NS avx2
#include "lanes_kernel.inc"
#undef SYNCTALK_LANES_NS

#endif  // SYNCTALK_LANES_AVX2
