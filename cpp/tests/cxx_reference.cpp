// The C++ API's outputs for clips of raw float32 samples, for capi_test (the
// C API must give the same bytes):
//   cxx_reference CLIP.f32 [CLIP.f32 ...]
// For each CLIP.f32 (native-endian float32 samples), writes beside it, raw
// float32, with the default options and the best SIMD level:
//   CLIP.f32.mel          MelProcessor::Compute, pad constant: n_mels x frames
//   CLIP.f32.mel_reflect  the same with pad_mode reflect
//   CLIP.f32.fbank        FbankProcessor::Compute of the samples times 32768
//                         (Kaldi's int16 scale): frames x num_bins
// Exit status 0, or 1 with a message on stderr.
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "synctalk/fbank.h"
#include "synctalk/mel.h"

namespace {

std::vector<float> ReadSamples(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) throw std::runtime_error("cannot open " + path);
  std::vector<float> samples;
  float buffer[4096];
  std::size_t got;
  while ((got = std::fread(buffer, sizeof(float), 4096, file)) > 0) {
    samples.insert(samples.end(), buffer, buffer + got);
  }
  std::fclose(file);
  if (samples.empty()) throw std::runtime_error(path + " holds no samples");
  return samples;
}

void WriteFloats(const std::string& path, const std::vector<float>& values) {
  // A temporary name, then rename: no half-written reference.
  const std::string temp = path + ".partial";
  std::FILE* file = std::fopen(temp.c_str(), "wb");
  if (file == nullptr) throw std::runtime_error("cannot write " + temp);
  const bool ok = std::fwrite(values.data(), sizeof(float), values.size(), file) == values.size();
  if (std::fclose(file) != 0 || !ok) throw std::runtime_error("cannot write " + temp);
  if (std::rename(temp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot rename " + temp);
}

std::vector<float> Mel(const std::vector<float>& x, synctalk::PadMode pad) {
  synctalk::MelOptions options;
  options.pad_mode = pad;
  const synctalk::MelProcessor processor(options);
  std::vector<float> out(static_cast<std::size_t>(options.n_mels) * processor.NumFrames(x.size()));
  synctalk::MelWorkspace ws = processor.NewWorkspace();
  processor.Compute(x.data(), static_cast<int64_t>(x.size()), out.data(), ws);
  return out;
}

std::vector<float> Fbank(const std::vector<float>& x) {
  const synctalk::FbankProcessor processor{synctalk::FbankOptions{}};
  std::vector<float> wave(x);
  for (float& v : wave) v *= 32768.0f;
  std::vector<float> out(static_cast<std::size_t>(processor.options().num_bins) *
                         processor.NumFrames(wave.size()));
  synctalk::FbankWorkspace ws = processor.NewWorkspace();
  processor.Compute(wave.data(), static_cast<int64_t>(wave.size()), out.data(), ws);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: cxx_reference CLIP.f32 [CLIP.f32 ...]\n");
    return 1;
  }
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string path = argv[i];
      const std::vector<float> x = ReadSamples(path);
      WriteFloats(path + ".mel", Mel(x, synctalk::PadMode::kConstant));
      WriteFloats(path + ".mel_reflect", Mel(x, synctalk::PadMode::kReflect));
      WriteFloats(path + ".fbank", Fbank(x));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cxx_reference: %s\n", e.what());
    return 1;
  }
  std::printf("cxx_reference: wrote the C++ API's mel, mel_reflect and fbank of %d clips\n",
              argc - 1);
  return 0;
}
