// Options of the SyncTalk_2D (wav2lip) mel spectrogram.
//
// Every parameter of the reference `audio.melspectrogram` lives in this one
// struct; the defaults are SyncTalk_2D's hparams. The Python dataclass
// `synctalk_audio.MelOptions` mirrors it field for field.
#pragma once

#include <cstdint>
#include <string>

namespace synctalk {

// How `center=True` pads the pre-emphasised signal before framing.
enum class PadMode {
  kConstant,  // zeros: librosa >= 0.10 (the default)
  kReflect,   // numpy.pad(mode="reflect"): librosa < 0.10
};

// Parses "constant" / "reflect"; throws std::invalid_argument otherwise.
PadMode ParsePadMode(const std::string& name);
const char* PadModeName(PadMode mode);

struct MelOptions {
  int sample_rate = 16000;      // Hz; the rate the samples are at
  int n_fft = 800;              // FFT length, samples
  int hop_length = 200;         // frame shift, samples (80 frames per second)
  int win_length = 800;         // periodic Hann window length, <= n_fft
  int n_mels = 80;              // mel bands
  double fmin = 55.0;           // lowest filter edge, Hz
  double fmax = 7600.0;         // highest filter edge, Hz, <= sample_rate / 2
  double preemphasis = 0.97;    // y[n] = x[n] - preemphasis * x[n-1]; 0 disables
  double ref_level_db = 20.0;   // subtracted after the dB conversion
  double min_level_db = -100.0; // floor of the dB scale, < 0
  double max_abs_value = 4.0;   // output range is [-max_abs_value, max_abs_value]
  PadMode pad_mode = PadMode::kConstant;

  // Throws std::invalid_argument naming the first bad parameter and its value.
  void Validate() const;

  // Frames of librosa's centred STFT: the signal is padded by n_fft / 2 on
  // each side, so 1 + num_samples / hop_length for an even n_fft (the
  // reference's 800) and 1 + (num_samples - 1) / hop_length for an odd one.
  int64_t NumFrames(int64_t num_samples) const {
    return 1 + (num_samples + 2 * (n_fft / 2) - n_fft) / hop_length;
  }
  int NumBins() const { return n_fft / 2 + 1; }
};

}  // namespace synctalk
