// The lanes kernel for sse2: 2 frames at once. Compiled with -msse2
// and -ffp-contract=off (cpp/CMakeLists.txt), only where CMake defines
// SYNCTALK_LANES_SSE2; run only if the CPU supports it (lanes.cpp).
#include "lanes_plan.h"

#if defined(SYNCTALK_LANES_SSE2)
#include <emmintrin.h>

namespace synctalk {
namespace lanes {
namespace sse2 {
namespace {

typedef double V __attribute__((vector_size(16)));
constexpr int kLanes = 2;
inline V Sqrt(V x) { return reinterpret_cast<V>(_mm_sqrt_pd(reinterpret_cast<__m128d>(x))); }

}  // namespace
}  // namespace sse2
}  // namespace lanes
}  // namespace synctalk

#define SYNCTALK_LANES_NS sse2
#include "lanes_kernel.inc"
#undef SYNCTALK_LANES_NS

#endif  // SYNCTALK_LANES_SSE2
