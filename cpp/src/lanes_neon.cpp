// The lanes kernel for neon: 2 frames at once. Compiled with (none: NEON is part of aarch64)
// and -ffp-contract=off (cpp/CMakeLists.txt), only where CMake defines
// SYNCTALK_LANES_NEON; run only if the CPU supports it (lanes.cpp).
#include "lanes_plan.h"

#if defined(SYNCTALK_LANES_NEON)
#include <arm_neon.h>

namespace synctalk {
namespace lanes {
namespace neon {
namespace {

typedef double V __attribute__((vector_size(16)));
constexpr int kLanes = 2;
inline V Sqrt(V x) { return reinterpret_cast<V>(vsqrtq_f64(reinterpret_cast<float64x2_t>(x))); }

}  // namespace
}  // namespace neon
}  // namespace lanes
}  // namespace synctalk

#define SYNCTALK_LANES_NS neon
#include "lanes_kernel.inc"
#undef SYNCTALK_LANES_NS

#endif  // SYNCTALK_LANES_NEON
