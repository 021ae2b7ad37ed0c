// Frames of one clip on several threads: contiguous ranges, one per worker.
//
// Each frame's values do not depend on which worker computes it or on how
// the frames are grouped, so any thread count gives the same bits.
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "synctalk/options.h"

namespace synctalk {

// Throws std::invalid_argument unless 1 <= threads <= kMaxThreads.
inline void CheckThreads(int threads) {
  if (threads < 1 || threads > kMaxThreads) {
    throw std::invalid_argument("threads must be in [1, " + std::to_string(kMaxThreads) +
                                "], got " + std::to_string(threads));
  }
}

// Workers worth starting for `count` items: at most `threads`, each with at
// least `grain` items (thread start-up costs tens of microseconds).
inline int WorkersFor(int64_t count, int threads, int64_t grain) {
  const int64_t by_size = std::max<int64_t>(1, count / std::max<int64_t>(1, grain));
  return static_cast<int>(std::min<int64_t>(threads, by_size));
}

// Calls body(worker, begin, end) for `workers` contiguous ranges covering
// [begin, end), range boundaries rounded to multiples of `align` from
// `begin`. Worker 0 runs on the calling thread; if a thread cannot be
// started its range runs on the calling thread too. The first exception a
// worker throws is rethrown here after every worker has finished.
template <typename Body>
void ParallelRanges(int64_t begin, int64_t end, int workers, int64_t align, Body body) {
  const int64_t count = end - begin;
  if (workers <= 1 || count <= 0) {
    if (count > 0) body(0, begin, end);
    return;
  }
  align = std::max<int64_t>(1, align);
  int64_t per = (count + workers - 1) / workers;
  per = (per + align - 1) / align * align;
  std::vector<std::thread> started;
  std::vector<std::exception_ptr> errors(workers);
  std::vector<int> inline_workers;
  for (int w = 1; w < workers; ++w) {
    const int64_t b = begin + w * per;
    const int64_t e = std::min(end, b + per);
    if (b >= e) break;
    try {
      started.emplace_back([&body, &errors, w, b, e] {
        try {
          body(w, b, e);
        } catch (...) {
          errors[w] = std::current_exception();
        }
      });
    } catch (const std::system_error&) {
      inline_workers.push_back(w);
    }
  }
  try {
    body(0, begin, std::min(end, begin + per));
    for (int w : inline_workers) body(w, begin + w * per, std::min(end, begin + (w + 1) * per));
  } catch (...) {
    errors[0] = std::current_exception();
  }
  for (std::thread& t : started) t.join();
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace synctalk
