// Runs one stage of the C++ core on one fixed input, for instruction counting:
//
//   count_stages STAGE SIMD
//
//   STAGE  mel | mel_framing | mel_window | fbank | fbank_framing | fbank_window
//   SIMD   auto | scalar | sse2 | avx2 | avx512 | neon (the options' simd field)
//
// The input is 10 s at 16 kHz made here from integers alone (three tones and a
// 32-bit linear congruential noise), so it is the same bytes on every machine.
// Only the stage itself runs between CALLGRIND_START_INSTRUMENTATION and
// CALLGRIND_STOP_INSTRUMENTATION (tools/count_instructions.py runs this under
// `valgrind --tool=callgrind --instr-atstart=no`): building the processor,
// the input and, for the window stages, the frames the window is applied to,
// are outside. Prints the stage, the SIMD level the processor resolved, the
// frames and a checksum of the result (which differs from run to run only if
// the code's arithmetic does).
#include <valgrind/callgrind.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "synctalk/fbank.h"
#include "synctalk/lanes.h"
#include "synctalk/mel.h"

namespace {

constexpr int64_t kSamples = 160000;  // 10 s at 16 kHz

std::vector<float> FixedInput() {
  std::vector<float> x(kSamples);
  uint32_t state = 12345u;
  const double kTwoPi = 6.283185307179586;
  for (int64_t i = 0; i < kSamples; ++i) {
    state = state * 1664525u + 1013904223u;
    const double noise = (static_cast<double>(state >> 8) / 16777216.0 - 0.5) * 0.05;
    const double t = static_cast<double>(i) / 16000.0;
    const double tone = 0.3 * std::sin(kTwoPi * 220.0 * t) + 0.2 * std::sin(kTwoPi * 1375.0 * t) +
                        0.1 * std::sin(kTwoPi * 4100.0 * t);
    x[i] = static_cast<float>(tone + noise);
  }
  return x;
}

double Sum(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

int Run(const std::string& stage, synctalk::SimdLevel simd) {
  const std::vector<float> x = FixedInput();
  double checksum = 0;
  int64_t frames = 0;
  synctalk::SimdLevel used = synctalk::SimdLevel::kScalar;
  if (stage.rfind("mel", 0) == 0) {
    synctalk::MelOptions options;
    options.simd = simd;
    const synctalk::MelProcessor mel(options);
    used = mel.simd_level();
    synctalk::MelWorkspace ws = mel.NewWorkspace();
    frames = mel.NumFrames(kSamples);
    const int64_t n_fft = options.n_fft;
    if (stage == "mel") {
      std::vector<double> out(static_cast<size_t>(options.n_mels * frames));
      CALLGRIND_START_INSTRUMENTATION;
      mel.Compute(x.data(), kSamples, out.data(), ws, 1);
      CALLGRIND_STOP_INSTRUMENTATION;
      checksum = Sum(out);
    } else {
      std::vector<double> buffer(static_cast<size_t>(n_fft * frames));
      const bool window = stage == "mel_window";
      if (!window && stage != "mel_framing") return 2;
      if (window) {
        for (int64_t k = 0; k < frames; ++k) mel.ExtractFrame(x.data(), kSamples, k, &buffer[k * n_fft]);
      }
      CALLGRIND_START_INSTRUMENTATION;
      for (int64_t k = 0; k < frames; ++k) {
        if (window) {
          mel.ApplyWindow(&buffer[k * n_fft]);
        } else {
          mel.ExtractFrame(x.data(), kSamples, k, &buffer[k * n_fft]);
        }
      }
      CALLGRIND_STOP_INSTRUMENTATION;
      checksum = Sum(buffer);
    }
  } else if (stage.rfind("fbank", 0) == 0) {
    synctalk::FbankOptions options;
    options.simd = simd;
    const synctalk::FbankProcessor fbank(options);
    used = fbank.simd_level();
    synctalk::FbankWorkspace ws = fbank.NewWorkspace();
    frames = fbank.NumFrames(kSamples);
    const int64_t padded = options.PaddedLength();
    if (stage == "fbank") {
      std::vector<double> out(static_cast<size_t>(options.num_bins * frames));
      CALLGRIND_START_INSTRUMENTATION;
      fbank.Compute(x.data(), kSamples, out.data(), ws, 1);
      CALLGRIND_STOP_INSTRUMENTATION;
      checksum = Sum(out);
    } else {
      std::vector<double> buffer(static_cast<size_t>(padded * frames));
      const bool window = stage == "fbank_window";
      if (!window && stage != "fbank_framing") return 2;
      auto frame = [&](int64_t k) {
        double* f = &buffer[k * padded];
        fbank.ExtractFrame(x.data(), k, f);
        fbank.RemoveDcOffset(f);
        fbank.PreEmphasize(f);
      };
      if (window) {
        for (int64_t k = 0; k < frames; ++k) frame(k);
      }
      CALLGRIND_START_INSTRUMENTATION;
      for (int64_t k = 0; k < frames; ++k) {
        if (window) {
          fbank.ApplyWindow(&buffer[k * padded]);
        } else {
          frame(k);
        }
      }
      CALLGRIND_STOP_INSTRUMENTATION;
      checksum = Sum(buffer);
    }
  } else {
    return 2;
  }
  std::printf("stage=%s simd=%s frames=%lld checksum=%.17g\n", stage.c_str(),
              synctalk::SimdLevelName(used), static_cast<long long>(frames), checksum);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr,
                 "usage: count_stages STAGE SIMD\n  STAGE: mel, mel_framing, mel_window, fbank,"
                 " fbank_framing, fbank_window\n  SIMD: auto, scalar, sse2, avx2, avx512, neon\n");
    return 2;
  }
  try {
    const int status = Run(argv[1], synctalk::ParseSimdLevel(argv[2]));
    if (status == 2) std::fprintf(stderr, "count_stages: unknown stage '%s'\n", argv[1]);
    return status;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "count_stages: %s\n", e.what());
    return 1;
  }
}
