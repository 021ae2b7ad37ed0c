// C++-only checks of the core, built without Python:
//   cmake -S cpp -B build-cpp -DSYNCTALK_BUILD_CPP_TESTS=ON && cmake --build build-cpp && ctest --test-dir build-cpp
// The numeric reference tests live in tests/ (Python, against librosa); this
// program proves the core compiles and runs on its own and checks the
// properties that need no reference: the FFT against a direct DFT, frame
// counts, streaming equal to batch bit for bit (mel and fbank), and errors as
// exceptions.
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
#include "synctalk/online_fbank.h"
#include "synctalk/online_mel.h"

namespace {

int failures = 0;

void Check(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "FAIL: %s\n", what.c_str());
    ++failures;
  }
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

void TestFftAgainstDirectDft() {
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
    Check(worst <= 1e-12 * std::fmax(scale, 1.0), "FFT n=" + std::to_string(n));
  }
}

void TestStreamingEqualsBatch(synctalk::PadMode pad) {
  synctalk::MelOptions options;
  options.pad_mode = pad;
  const synctalk::MelProcessor processor(options);
  for (int n : {1, 399, 401, 3000, 16037}) {
    const std::vector<float> x = Signal(n, 7u + n);
    const int64_t frames = processor.NumFrames(n);
    Check(frames == 1 + n / 200, "frame count n=" + std::to_string(n));
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
      Check(same, std::string("streaming == batch, pad ") + synctalk::PadModeName(pad) +
                      ", n=" + std::to_string(n) + ", chunk=" + std::to_string(chunk));
    }
  }
}

void TestErrorsAreExceptions() {
  synctalk::MelOptions bad;
  bad.hop_length = 0;
  bool threw = false;
  try {
    synctalk::MelProcessor processor(bad);
  } catch (const std::invalid_argument& e) {
    threw = std::string(e.what()).find("hop_length") != std::string::npos;
  }
  Check(threw, "bad options throw std::invalid_argument naming the field");

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
    Check(threw, std::string("out-of-range ") + field + " throws std::invalid_argument naming it");
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
  Check(threw, "NaN input throws, naming the sample");
}

void TestFbank() {
  const synctalk::FbankProcessor processor{synctalk::FbankOptions{}};
  const int bins = 80;
  Check(processor.options().PaddedLength() == 512, "fbank padded length 512");
  Check(processor.NumFrames(399) == 0 && processor.NumFrames(400) == 1 &&
            processor.NumFrames(559) == 1 && processor.NumFrames(560) == 2,
        "fbank frame count (snip_edges)");
  synctalk::FbankWorkspace ws = processor.NewWorkspace();
  // Silence: every energy is 0, floored at FLT_EPSILON.
  {
    std::vector<float> zeros(800, 0.0f), out(bins * 3);
    processor.Compute(zeros.data(), 800, out.data(), ws);
    bool floor = true;
    for (float v : out) floor = floor && v == static_cast<float>(std::log(1.0 / 8388608.0));
    Check(floor, "fbank of silence is log(FLT_EPSILON)");
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
        Check(online.NumFramesReady() == processor.NumFrames(i + count),
              "fbank frames ready n=" + std::to_string(n) + ", chunk=" + std::to_string(chunk));
        const int64_t got = online.PopFrames(buffer.data(), frames + 1);
        streamed.insert(streamed.end(), buffer.begin(), buffer.begin() + bins * got);
      }
      online.InputFinished();
      Check(online.NumFramesPending() == 0, "fbank end of input adds no frame");
      const bool same = streamed.size() == batch.size() &&
                        std::memcmp(streamed.data(), batch.data(), 4 * batch.size()) == 0;
      Check(same, "fbank streaming == batch, n=" + std::to_string(n) + ", chunk=" +
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
  Check(threw, "bad fbank options throw std::invalid_argument naming the field");
  bad = synctalk::FbankOptions{};
  bad.high_freq = 8000.5;
  threw = false;
  try {
    synctalk::FbankProcessor p(bad);
  } catch (const std::invalid_argument& e) {
    threw = std::string(e.what()).find("high_freq") != std::string::npos;
  }
  Check(threw, "fbank high_freq above Nyquist throws");
  std::vector<float> x(1000, 0.0f), out(bins * 4);
  x[700] = std::nanf("");
  threw = false;
  try {
    processor.Compute(x.data(), 1000, out.data(), ws);
  } catch (const std::invalid_argument& e) {
    threw = std::string(e.what()).find("sample 700") != std::string::npos;
  }
  Check(threw, "fbank NaN input throws, naming the sample");
  synctalk::OnlineFbank online(processor);
  threw = false;
  try {
    online.AcceptWaveform(x.data(), 1000);
  } catch (const std::invalid_argument& e) {
    threw = std::string(e.what()).find("sample 700") != std::string::npos;
  }
  Check(threw && online.num_samples_received() == 0, "online fbank NaN throws, appends nothing");
}

}  // namespace

// Every SIMD level this CPU runs equals the scalar reference bit for bit,
// for any thread count (the only test of the NEON kernel on aarch64 hosts).
void TestSimdEqualsScalar() {
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
      Check(processor.simd_level() == level || std::getenv(synctalk::kSimdEnvVar) != nullptr,
            std::string("mel runs the requested level ") + synctalk::SimdLevelName(level));
      for (int threads : {1, 3}) {
        std::vector<double> got(want.size());
        synctalk::MelWorkspace w = processor.NewWorkspace();
        processor.Compute(x.data(), n, got.data(), w, threads);
        Check(std::memcmp(got.data(), want.data(), want.size() * sizeof(double)) == 0,
              std::string("mel at ") + synctalk::SimdLevelName(level) + ", " +
                  std::to_string(threads) + " threads, equals scalar (n=" + std::to_string(n) +
                  ")");
      }
      if (rows == 0) continue;
      synctalk::FbankOptions fbank_options;
      fbank_options.simd = level;
      const synctalk::FbankProcessor fbank(fbank_options);
      std::vector<double> got(fbank_want.size());
      synctalk::FbankWorkspace w = fbank.NewWorkspace();
      fbank.Compute(wave.data(), n, got.data(), w, 2);
      Check(std::memcmp(got.data(), fbank_want.data(), got.size() * sizeof(double)) == 0,
            std::string("fbank at ") + synctalk::SimdLevelName(level) + " equals scalar (n=" +
                std::to_string(n) + ")");
    }
  }
}

int main() {
  TestFftAgainstDirectDft();
  TestStreamingEqualsBatch(synctalk::PadMode::kConstant);
  TestStreamingEqualsBatch(synctalk::PadMode::kReflect);
  TestErrorsAreExceptions();
  TestFbank();
  TestSimdEqualsScalar();
  if (failures == 0) std::printf("core_selftest: all checks passed\n");
  return failures == 0 ? 0 : 1;
}
