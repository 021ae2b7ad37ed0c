// C++-only checks of the core, built without Python:
//   cmake -S cpp -B build-cpp -DSYNCTALK_BUILD_CPP_TESTS=ON && cmake --build build-cpp && ctest --test-dir build-cpp
// The numeric reference tests live in tests/ (Python, against librosa); this
// program proves the core compiles and runs on its own and checks the
// properties that need no reference: the FFT against a direct DFT, frame
// counts, streaming equal to batch bit for bit (mel and fbank), errors as
// exceptions, and every SIMD level compiled in and supported by the CPU equal
// to the scalar path bit for bit (the kernel directly, and through the mel
// and fbank processors). It prints the levels it compared; with
// --require-simd=neon (or sse2,avx2,...) it fails unless those were among
// them (tools/aarch64_selftest.sh: NEON under qemu-aarch64, and the host).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "synctalk/fbank.h"
#include "synctalk/fft.h"
#include "synctalk/mel.h"
#include "synctalk/online.h"

namespace {

// What the checks found, passed to every test (no global state): the
// failures, and per SIMD level what was compared with the scalar path.
struct Report {
  int failures = 0;
  // Levels whose kernel was run directly and compared with the scalar
  // stages, and levels the mel and fbank processors ran (the same list).
  std::vector<synctalk::SimdLevel> kernel_checked;
  std::vector<synctalk::SimdLevel> processor_checked;

  void Check(bool ok, const std::string& what) {
    if (!ok) {
      std::fprintf(stderr, "FAIL: %s\n", what.c_str());
      ++failures;
    }
  }
};

bool Contains(const std::vector<synctalk::SimdLevel>& levels, synctalk::SimdLevel level) {
  return std::find(levels.begin(), levels.end(), level) != levels.end();
}

std::string Names(const std::vector<synctalk::SimdLevel>& levels) {
  std::string names;
  for (synctalk::SimdLevel level : levels) {
    names += (names.empty() ? "" : ", ") + std::string(synctalk::SimdLevelName(level));
  }
  return names.empty() ? "none" : names;
}

std::vector<float> Signal(int n, unsigned seed) {
  std::vector<float> x(n);
  unsigned state = seed;
  for (int i = 0; i < n; ++i) {
    state = state * 1664525u + 1013904223u;
    x[i] = 0.3f * std::sin(0.01f * i) + ((state >> 9) / 8388608.0f - 1.0f) * 0.05f;
  }
  return x;
}

void TestFftAgainstDirectDft(Report& report) {
  const double pi = 3.14159265358979323846;
  for (std::size_t n : {1u, 2u, 3u, 5u, 7u, 8u, 12u, 30u, 49u, 100u, 800u}) {
    std::vector<double> x(n);
    for (std::size_t i = 0; i < n; ++i) x[i] = std::cos(0.37 * i) + 0.1 * i;
    synctalk::RealFft fft(n);
    std::vector<synctalk::Complex> out(fft.num_bins()), work(fft.work_size());
    fft.Forward(x.data(), out.data(), work.data());
    double worst = 0, scale = 0;
    for (std::size_t k = 0; k < fft.num_bins(); ++k) {
      double re = 0, im = 0;
      for (std::size_t j = 0; j < n; ++j) {
        const double a = -2 * pi * static_cast<double>((j * k) % n) / n;
        re += x[j] * std::cos(a);
        im += x[j] * std::sin(a);
      }
      worst = std::fmax(worst, std::hypot(out[k].re - re, out[k].im - im));
      scale = std::fmax(scale, std::hypot(re, im));
    }
    report.Check(worst <= 1e-12 * std::fmax(scale, 1.0), "FFT n=" + std::to_string(n));
  }
}

void TestStreamingEqualsBatch(Report& report, synctalk::PadMode pad) {
  synctalk::MelOptions options;
  options.pad_mode = pad;
  const synctalk::MelProcessor processor(options);
  for (int n : {1, 399, 401, 3000, 16037}) {
    const std::vector<float> x = Signal(n, 7u + n);
    const int64_t frames = processor.NumFrames(n);
    report.Check(frames == 1 + n / 200, "frame count n=" + std::to_string(n));
    std::vector<float> batch(80 * frames);  // (80, T)
    synctalk::MelWorkspace ws = processor.NewWorkspace();
    processor.Compute(x.data(), n, batch.data(), ws);
    for (int chunk : {1, 7, 333, 100000}) {
      synctalk::OnlineMel online(processor);
      std::vector<float> streamed;  // (T, 80)
      std::vector<float> buffer(80 * (frames + 1));
      for (int i = 0; i < n; i += chunk) {
        online.AcceptWaveform(x.data() + i, std::min(chunk, n - i));
        const int64_t got = online.PopFrames(buffer.data(), frames + 1);
        streamed.insert(streamed.end(), buffer.begin(), buffer.begin() + 80 * got);
      }
      online.InputFinished();
      const int64_t got = online.PopFrames(buffer.data(), frames + 1);
      streamed.insert(streamed.end(), buffer.begin(), buffer.begin() + 80 * got);
      bool same = static_cast<int64_t>(streamed.size()) == 80 * frames;
      for (int64_t k = 0; same && k < frames; ++k) {
        for (int m = 0; m < 80; ++m) {
          same = same && std::memcmp(&streamed[k * 80 + m], &batch[m * frames + k], 4) == 0;
        }
      }
      report.Check(same, std::string("streaming == batch, pad ") +
                             synctalk::PadModeName(pad) + ", n=" + std::to_string(n) +
                             ", chunk=" + std::to_string(chunk));
    }
  }
}

void TestErrorsAreExceptions(Report& report) {
  synctalk::MelOptions bad;
  bad.hop_length = 0;
  bool threw = false;
  try {
    synctalk::MelProcessor processor(bad);
  } catch (const std::invalid_argument& e) {
    threw = std::string(e.what()).find("hop_length") != std::string::npos;
  }
  report.Check(threw, "bad options throw std::invalid_argument naming the field");

  // Every field is bounded: no inf output, no huge allocation.
  synctalk::MelOptions huge_range;
  huge_range.max_abs_value = 1e308;
  synctalk::MelOptions huge_mels;
  huge_mels.n_mels = synctalk::kMaxMels + 1;  // cheap to build even if accepted
  synctalk::MelOptions huge_rate;
  huge_rate.sample_rate = 2000000000;
  const std::pair<synctalk::MelOptions, const char*> bounded[] = {
      {huge_range, "max_abs_value"}, {huge_mels, "n_mels"}, {huge_rate, "sample_rate"}};
  for (const auto& [options, field] : bounded) {
    threw = false;
    try {
      synctalk::MelProcessor processor(options);
    } catch (const std::invalid_argument& e) {
      threw = std::string(e.what()).find(field) != std::string::npos;
    }
    report.Check(threw,
                 std::string("out-of-range ") + field + " throws std::invalid_argument naming it");
  }

  const synctalk::MelProcessor processor{synctalk::MelOptions{}};
  synctalk::MelWorkspace ws = processor.NewWorkspace();
  std::vector<float> x(1000, 0.0f), out(80 * 6);
  x[500] = std::nanf("");
  threw = false;
  try {
    processor.Compute(x.data(), 1000, out.data(), ws);
  } catch (const std::invalid_argument& e) {
    threw = std::string(e.what()).find("sample 500") != std::string::npos;
  }
  report.Check(threw, "NaN input throws, naming the sample");
}

void TestFbank(Report& report) {
  const synctalk::FbankProcessor processor{synctalk::FbankOptions{}};
  const int bins = 80;
  report.Check(processor.options().PaddedLength() == 512, "fbank padded length 512");
  report.Check(processor.NumFrames(399) == 0 && processor.NumFrames(400) == 1 &&
                   processor.NumFrames(559) == 1 && processor.NumFrames(560) == 2,
               "fbank frame count (snip_edges)");
  synctalk::FbankWorkspace ws = processor.NewWorkspace();
  // Silence: every energy is 0, floored at FLT_EPSILON.
  {
    std::vector<float> zeros(800, 0.0f), out(bins * 3);
    processor.Compute(zeros.data(), 800, out.data(), ws);
    bool floor = true;
    for (float v : out) floor = floor && v == static_cast<float>(std::log(1.0 / 8388608.0));
    report.Check(floor, "fbank of silence is log(FLT_EPSILON)");
  }
  for (int n : {1, 399, 400, 561, 3000, 16037}) {
    std::vector<float> x = Signal(n, 11u + n);
    for (float& v : x) v = std::trunc(v * 32767.0f);
    const int64_t frames = processor.NumFrames(n);
    std::vector<float> batch(bins * frames);  // (F, 80)
    processor.Compute(x.data(), n, batch.data(), ws);
    for (int chunk : {1, 7, 160, 401, 100000}) {
      synctalk::OnlineFbank online(processor);
      std::vector<float> streamed;
      std::vector<float> buffer(bins * (frames + 1));
      for (int i = 0; i < n; i += chunk) {
        const int count = std::min(chunk, n - i);
        online.AcceptWaveform(x.data() + i, count);
        // Each frame as soon as its last sample arrived, not later.
        report.Check(online.NumFramesReady() == processor.NumFrames(i + count),
                     "fbank frames ready n=" + std::to_string(n) + ", chunk=" +
                         std::to_string(chunk));
        const int64_t got = online.PopFrames(buffer.data(), frames + 1);
        streamed.insert(streamed.end(), buffer.begin(), buffer.begin() + bins * got);
      }
      online.InputFinished();
      report.Check(online.NumFramesPending() == 0, "fbank end of input adds no frame");
      const bool same = streamed.size() == batch.size() &&
                        std::memcmp(streamed.data(), batch.data(), 4 * batch.size()) == 0;
      report.Check(same, "fbank streaming == batch, n=" + std::to_string(n) + ", chunk=" +
                             std::to_string(chunk));
    }
  }
  // Errors.
  synctalk::FbankOptions bad;
  bad.num_bins = 3;
  bool threw = false;
  try {
    synctalk::FbankProcessor p(bad);
  } catch (const std::invalid_argument& e) {
    threw = std::string(e.what()).find("num_bins") != std::string::npos;
  }
  report.Check(threw, "bad fbank options throw std::invalid_argument naming the field");
  bad = synctalk::FbankOptions{};
  bad.high_freq = 8000.5;
  threw = false;
  try {
    synctalk::FbankProcessor p(bad);
  } catch (const std::invalid_argument& e) {
    threw = std::string(e.what()).find("high_freq") != std::string::npos;
  }
  report.Check(threw, "fbank high_freq above Nyquist throws");
  std::vector<float> x(1000, 0.0f), out(bins * 4);
  x[700] = std::nanf("");
  threw = false;
  try {
    processor.Compute(x.data(), 1000, out.data(), ws);
  } catch (const std::invalid_argument& e) {
    threw = std::string(e.what()).find("sample 700") != std::string::npos;
  }
  report.Check(threw, "fbank NaN input throws, naming the sample");
  synctalk::OnlineFbank online(processor);
  threw = false;
  try {
    online.AcceptWaveform(x.data(), 1000);
  } catch (const std::invalid_argument& e) {
    threw = std::string(e.what()).find("sample 700") != std::string::npos;
  }
  report.Check(threw && online.num_samples_received() == 0,
               "online fbank NaN throws, appends nothing");
}

// Bytes of n doubles equal (memcmp: +0.0 and -0.0 differ, NaNs compare).
bool SameBits(const void* a, const void* b, std::size_t n) {
  return std::memcmp(a, b, n * sizeof(double)) == 0;
}

// L frames of n values, each different: a tone plus noise, scaled per lane
// by a power of two. With `special`, lane 0 is all zeros and lane 1 is
// subnormal (the sums and square roots of zeros and of tiny values).
std::vector<double> LaneFrames(int lanes, std::size_t n, unsigned seed, bool special) {
  std::vector<double> frames(static_cast<std::size_t>(lanes) * n);
  unsigned state = seed;
  for (int l = 0; l < lanes; ++l) {
    double scale = std::ldexp(1.0, 3 * l - 4);
    if (special && l == 0) scale = 0.0;
    if (special && l == 1) scale = 1e-310;
    for (std::size_t i = 0; i < n; ++i) {
      state = state * 1664525u + 1013904223u;
      const double noise = (state >> 8) / 16777216.0 - 0.5;
      frames[l * n + i] = scale * (std::sin(0.05 * (l + 1) * i) + noise);
    }
  }
  return frames;
}

// The kernel's filterbank sums (SpectrumLanes::Filterbank on L frames of n
// values) against `stages(frame, sums)`, the scalar stages one frame at a
// time, lane by lane, on ordinary and on special (zero, subnormal) frames.
template <typename Stages>
void CheckFilterbank(Report& report, synctalk::SimdLevel level, std::size_t n,
                     synctalk::BinValue value, const synctalk::SparseFilterbank& bank,
                     const std::string& what,
                     Stages stages) {
  const synctalk::RealFft fft(n);
  const synctalk::SpectrumLanes lanes(fft, level, value, bank);
  const int rows = bank.num_rows();
  const int count = lanes.lanes();
  for (bool special : {false, true}) {
    const std::vector<double> frames = LaneFrames(count, n, 5u + static_cast<unsigned>(n), special);
    std::vector<double> scratch(lanes.scratch_size()), got(count * rows), want(rows);
    lanes.Filterbank(frames.data(), got.data(), scratch.data());
    for (int l = 0; l < count; ++l) {
      stages(frames.data() + l * n, want.data());
      bool same = true;
      for (int r = 0; r < rows; ++r) same = same && SameBits(&got[r * count + l], &want[r], 1);
      report.Check(same, std::string(synctalk::SimdLevelName(level)) + " " + what +
                             " == scalar stages" + (special ? " (zero, subnormal)" : "") +
                             ", lane " + std::to_string(l));
    }
  }
}

// The SIMD kernel of each available level, run directly (SpectrumLanes),
// equals the scalar stages bit for bit: the spectrum for FFT lengths whose
// halves use every butterfly (radix 2, 3, 4, 5 and the generic one), and the
// filterbank sums of the mel (|X|) and the fbank (|X|^2). The processors
// below use only n_fft 800 and 512 (radices 4 and 5).
void TestLanesKernels(Report& report) {
  const std::size_t lengths[] = {2, 4, 6, 8, 10, 14, 22, 24, 60, 98, 200, 400, 512, 800};
  for (synctalk::SimdLevel level : synctalk::AvailableSimdLevels()) {
    if (level == synctalk::SimdLevel::kScalar) continue;
    const std::string name = synctalk::SimdLevelName(level);
    const synctalk::SparseFilterbank no_rows;
    for (std::size_t n : lengths) {
      const synctalk::RealFft fft(n);
      const synctalk::SpectrumLanes lanes(fft, level, synctalk::BinValue::kPower, no_rows);
      const int count = lanes.lanes();
      report.Check(count == synctalk::SimdLanes(level) && count >= 2,
                   name + " runs " + std::to_string(count) + " lanes");
      for (bool special : {false, true}) {
        const std::vector<double> frames =
            LaneFrames(count, n, 3u + static_cast<unsigned>(n), special);
        std::vector<double> scratch(lanes.scratch_size());
        std::vector<synctalk::Complex> got(count * fft.num_bins());
        lanes.Spectrum(frames.data(), got.data(), scratch.data());
        std::vector<synctalk::Complex> want(fft.num_bins()), work(fft.work_size());
        for (int l = 0; l < count; ++l) {
          fft.Forward(frames.data() + l * n, want.data(), work.data());
          report.Check(SameBits(got.data() + l * fft.num_bins(), want.data(), 2 * want.size()),
                       name + " spectrum == scalar RealFft, n=" + std::to_string(n) +
                           (special ? " (zero, subnormal)" : "") + ", lane " +
                           std::to_string(l));
        }
      }
    }
    // The filterbanks of the mel (|X|, n_fft 800) and the fbank (|X|^2,
    // padded length 512) against the scalar processors' stages.
    synctalk::MelOptions mel_options;
    mel_options.simd = synctalk::SimdLevel::kScalar;
    const synctalk::MelProcessor mel(mel_options);
    synctalk::MelWorkspace mel_ws = mel.NewWorkspace();
    CheckFilterbank(report, level, mel_options.n_fft, synctalk::BinValue::kMagnitude,
                    mel.filterbank(), "mel filterbank of |X|",
                    [&](const double* frame, double* sums) {
                      mel.Spectrum(frame, mel_ws.spectrum.data(), mel_ws.fft_work.data());
                      mel.Magnitude(mel_ws.spectrum.data(), mel_ws.bins.data());
                      mel.Mel(mel_ws.bins.data(), sums);
                    });
    synctalk::FbankOptions fbank_options;
    fbank_options.simd = synctalk::SimdLevel::kScalar;
    const synctalk::FbankProcessor fbank(fbank_options);
    synctalk::FbankWorkspace fbank_ws = fbank.NewWorkspace();
    CheckFilterbank(report, level, fbank_options.PaddedLength(), synctalk::BinValue::kPower,
                    fbank.filterbank(), "fbank filterbank of |X|^2",
                    [&](const double* frame, double* sums) {
                      fbank.Spectrum(frame, fbank_ws.spectrum.data(), fbank_ws.fft_work.data());
                      fbank.Power(fbank_ws.spectrum.data(), fbank_ws.bins.data());
                      fbank.Mel(fbank_ws.bins.data(), sums);
                    });
    report.kernel_checked.push_back(level);
  }
}

// Every SIMD level this CPU runs equals the scalar reference bit for bit,
// for any thread count, through the mel and fbank processors.
void TestSimdEqualsScalar(Report& report) {
  for (int n : {1, 799, 1601, 40000}) {  // 1 to 201 frames: partial lane groups
    const std::vector<float> x = Signal(n, 11u + n);
    synctalk::MelOptions scalar_options;
    scalar_options.simd = synctalk::SimdLevel::kScalar;
    const synctalk::MelProcessor scalar(scalar_options);
    const int64_t frames = scalar.NumFrames(n);
    std::vector<double> want(static_cast<std::size_t>(frames) * 80);
    synctalk::MelWorkspace ws = scalar.NewWorkspace();
    scalar.Compute(x.data(), n, want.data(), ws);
    synctalk::FbankOptions fbank_scalar_options;
    fbank_scalar_options.simd = synctalk::SimdLevel::kScalar;
    const synctalk::FbankProcessor fbank_scalar(fbank_scalar_options);
    std::vector<float> wave(x);
    for (float& v : wave) v *= 32768.0f;
    const int64_t rows = fbank_scalar.NumFrames(n);
    std::vector<double> fbank_want(static_cast<std::size_t>(rows) * 80);
    synctalk::FbankWorkspace fws = fbank_scalar.NewWorkspace();
    if (rows > 0) fbank_scalar.Compute(wave.data(), n, fbank_want.data(), fws);
    for (synctalk::SimdLevel level : synctalk::AvailableSimdLevels()) {
      synctalk::MelOptions options;
      options.simd = level;
      const synctalk::MelProcessor processor(options);
      // The level that runs: the requested one (the core reads no environment).
      const synctalk::SimdLevel ran = processor.simd_level();
      report.Check(ran == level,
                   std::string("mel runs the requested level ") + synctalk::SimdLevelName(level));
      for (int threads : {1, 3}) {
        std::vector<double> got(want.size());
        synctalk::MelWorkspace w = processor.NewWorkspace();
        processor.Compute(x.data(), n, got.data(), w, threads);
        report.Check(SameBits(got.data(), want.data(), want.size()),
                     std::string("mel at ") + synctalk::SimdLevelName(ran) + ", " +
                         std::to_string(threads) + " threads, equals scalar (n=" +
                         std::to_string(n) + ")");
      }
      synctalk::FbankOptions fbank_options;
      fbank_options.simd = level;
      const synctalk::FbankProcessor fbank(fbank_options);
      report.Check(fbank.simd_level() == ran,
                   std::string("fbank runs the mel's level ") + synctalk::SimdLevelName(ran));
      if (ran != synctalk::SimdLevel::kScalar && !Contains(report.processor_checked, ran)) {
        report.processor_checked.push_back(ran);
      }
      if (rows == 0) continue;
      std::vector<double> got(fbank_want.size());
      synctalk::FbankWorkspace w = fbank.NewWorkspace();
      fbank.Compute(wave.data(), n, got.data(), w, 2);
      report.Check(SameBits(got.data(), fbank_want.data(), got.size()),
                   std::string("fbank at ") + synctalk::SimdLevelName(ran) +
                       " equals scalar (n=" + std::to_string(n) + ")");
    }
  }
}

// --require-simd=LEVEL[,LEVEL...]: the SIMD levels that must have been
// compared with the scalar path (a cross or emulated build whose lanes were
// not compiled in, or not detected, then fails instead of passing on the
// scalar path alone). Returns false, with a message, for a bad argument.
bool ParseRequired(int argc, char** argv, std::vector<synctalk::SimdLevel>& required) {
  const std::string prefix = "--require-simd=";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.compare(0, prefix.size(), prefix) != 0) {
      std::fprintf(stderr, "core_selftest: unknown argument '%s' (usage: core_selftest "
                           "[--require-simd=LEVEL[,LEVEL...]])\n", arg.c_str());
      return false;
    }
    std::string list = arg.substr(prefix.size());
    while (!list.empty()) {
      const std::size_t comma = list.find(',');
      const std::string name = list.substr(0, comma);
      list = comma == std::string::npos ? "" : list.substr(comma + 1);
      try {
        const synctalk::SimdLevel level = synctalk::ParseSimdLevel(name);
        if (level == synctalk::SimdLevel::kAuto || level == synctalk::SimdLevel::kScalar) {
          throw std::invalid_argument("'" + name + "' is not a SIMD level");
        }
        required.push_back(level);
      } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "core_selftest: --require-simd: %s\n", e.what());
        return false;
      }
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<synctalk::SimdLevel> required;
  if (!ParseRequired(argc, argv, required)) return 2;
  Report report;
  TestFftAgainstDirectDft(report);
  TestStreamingEqualsBatch(report, synctalk::PadMode::kConstant);
  TestStreamingEqualsBatch(report, synctalk::PadMode::kReflect);
  TestErrorsAreExceptions(report);
  TestFbank(report);
  TestLanesKernels(report);
  TestSimdEqualsScalar(report);

  std::printf("core_selftest: SIMD levels compiled in and supported by this CPU: %s\n",
              Names(synctalk::AvailableSimdLevels()).c_str());
  for (synctalk::SimdLevel level : report.kernel_checked) {
    std::printf("core_selftest: %s (%d lanes) == scalar bit for bit: kernel (spectrum, mel and "
                "fbank filterbanks)%s\n",
                synctalk::SimdLevelName(level), synctalk::SimdLanes(level),
                Contains(report.processor_checked, level) ? ", mel and fbank processors" : "");
  }
  const std::string checked = "kernel: " + Names(report.kernel_checked) +
                              "; processors: " + Names(report.processor_checked);
  std::printf("core_selftest: SIMD levels checked against scalar (%s)\n", checked.c_str());
  for (synctalk::SimdLevel level : required) {
    report.Check(Contains(report.kernel_checked, level) &&
                     Contains(report.processor_checked, level),
                 std::string("required SIMD level ") + synctalk::SimdLevelName(level) +
                     " was not checked against scalar (" + checked + ")");
  }
  if (report.failures == 0) {
    std::printf("core_selftest: all checks passed\n");
  } else {
    std::printf("core_selftest: FAILED, %d failed checks\n", report.failures);
  }
  return report.failures == 0 ? 0 : 1;
}
