// pybind11 bindings of the C++ core: `synctalk_audio._core`.
//
// The boundary contract: arrays must be 1-D (or exactly shaped outputs),
// C-contiguous, float32 or float64 — anything else raises TypeError or
// ValueError before any work starts. The Python layer (mel.py) decides the
// dtype policy and converts; this layer only checks, so a bad call from
// anywhere still cannot crash the interpreter. Heavy loops run with the GIL
// released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "synctalk/fbank.h"
#include "synctalk/fft.h"
#include "synctalk/lanes.h"
#include "synctalk/mel.h"
#include "synctalk/online.h"
#include "synctalk/options.h"

namespace py = pybind11;
using synctalk::Complex;
using synctalk::FbankOptions;
using synctalk::FbankProcessor;
using synctalk::MelOptions;
using synctalk::MelProcessor;
using synctalk::PadMode;

namespace {

enum class Dtype { kFloat32, kFloat64 };

// True if `a` holds native-order T. Compares dtypes by value (NumPy's
// PyArray_EquivTypes), not by identity: an unpickled float32 array has an
// equal but distinct dtype object.
template <typename T>
bool HasDtype(const py::array& a) {
  return py::isinstance<py::array_t<T>>(a);
}

// Checks a 1-D, C-contiguous, non-empty float32/float64 array.
Dtype CheckSamples(const py::array& samples, const char* what) {
  if (samples.ndim() != 1) {
    throw py::value_error(std::string(what) + " must be 1-D, got " + std::to_string(samples.ndim()) +
                          "-D");
  }
  if (!(samples.flags() & py::array::c_style)) {
    throw py::value_error(std::string(what) + " must be C-contiguous");
  }
  if (samples.size() == 0) throw py::value_error(std::string(what) + " is empty");
  if (HasDtype<float>(samples)) return Dtype::kFloat32;
  if (HasDtype<double>(samples)) return Dtype::kFloat64;
  throw py::type_error(std::string(what) + " must be float32 or float64, got " +
                       std::string(py::str(samples.dtype())));
}

// The options a processor is built with: `options` (validated first, so its
// own errors come as before) with the cap of SYNCTALK_AUDIO_SIMD applied.
// The one place the package reads the variable; the core reads none.
template <typename Options>
Options WithSimdCap(Options options) {
  options.Validate();
  const synctalk::SimdLevel capped =
      synctalk::ResolveSimdLevel(options.simd, std::getenv(synctalk::kSimdEnvVar));
  if (capped != synctalk::ResolveSimdLevel(options.simd, nullptr)) options.simd = capped;
  return options;
}

// The whole output of a front end (MelProcessor or FbankProcessor) into
// `out`, from float32 or float64 samples, without the GIL.
template <typename Processor, typename Out>
void ComputeInto(const Processor& proc, const py::array& samples, Out* out, int threads) {
  const Dtype dtype = CheckSamples(samples, "audio");
  const int64_t n = samples.size();
  const void* data = samples.data();
  py::gil_scoped_release release;
  synctalk::FrameWorkspace ws = proc.NewWorkspace();
  if (dtype == Dtype::kFloat32) {
    proc.Compute(static_cast<const float*>(data), n, out, ws, threads);
  } else {
    proc.Compute(static_cast<const double*>(data), n, out, ws, threads);
  }
}

// A front end's output as a new array of `dtype`: (bands, frames) for the
// mel, (frames, bands) for the fbank (Processor::kBandMajor).
template <typename Processor>
py::array ComputeArray(const Processor& proc, const py::array& samples, const std::string& dtype,
                       int threads) {
  synctalk::CheckThreads(threads);
  CheckSamples(samples, "audio");
  const int64_t frames = proc.NumFrames(samples.size());
  const int64_t bands = proc.bands();
  const std::vector<int64_t> shape =
      Processor::kBandMajor ? std::vector<int64_t>{bands, frames} : std::vector<int64_t>{frames, bands};
  if (dtype == "float32") {
    py::array_t<float> out(shape);
    ComputeInto(proc, samples, out.mutable_data(), threads);
    return std::move(out);
  }
  if (dtype == "float64") {
    py::array_t<double> out(shape);
    ComputeInto(proc, samples, out.mutable_data(), threads);
    return std::move(out);
  }
  throw py::type_error("dtype must be 'float32' or 'float64', got '" + dtype + "'");
}

void MelspectrogramInto(const MelProcessor& proc, const py::array& samples, py::array& out,
                        int threads) {
  synctalk::CheckThreads(threads);
  CheckSamples(samples, "audio");
  const int64_t frames = proc.NumFrames(samples.size());
  const int64_t mels = proc.bands();
  if (out.ndim() != 2 || out.shape(0) != mels || out.shape(1) != frames) {
    throw py::value_error("out must have shape (" + std::to_string(mels) + ", " +
                          std::to_string(frames) + ")");
  }
  if (!(out.flags() & py::array::c_style) || !out.writeable()) {
    throw py::value_error("out must be C-contiguous and writeable");
  }
  if (HasDtype<float>(out)) {
    ComputeInto(proc, samples, static_cast<float*>(out.mutable_data()), threads);
  } else if (HasDtype<double>(out)) {
    ComputeInto(proc, samples, static_cast<double*>(out.mutable_data()), threads);
  } else {
    throw py::type_error("out must be float32 or float64, got " + std::string(py::str(out.dtype())));
  }
}

// Every intermediate stage for one clip, as float64 arrays (for tests and the
// staged test vectors of docs/NUMERICS.md).
py::dict Stages(const MelProcessor& proc, const py::array& samples) {
  const Dtype dtype = CheckSamples(samples, "audio");
  const int64_t n = samples.size();
  const int64_t frames = proc.NumFrames(n);
  const MelOptions& o = proc.options();
  const int64_t bins = o.n_fft / 2 + 1;
  py::array_t<double> preemph(n), framed({frames, static_cast<int64_t>(o.n_fft)}),
      windowed({frames, static_cast<int64_t>(o.n_fft)}), magnitude({frames, bins}),
      mel({frames, static_cast<int64_t>(o.n_mels)}), db({frames, static_cast<int64_t>(o.n_mels)}),
      normalized({frames, static_cast<int64_t>(o.n_mels)});
  py::array_t<std::complex<double>> spectrum({frames, bins});
  {
    double* pre = preemph.mutable_data();
    double* fr = framed.mutable_data();
    double* wi = windowed.mutable_data();
    double* ma = magnitude.mutable_data();
    double* me = mel.mutable_data();
    double* d = db.mutable_data();
    double* no = normalized.mutable_data();
    auto* sp = reinterpret_cast<Complex*>(spectrum.mutable_data());
    const void* data = samples.data();
    py::gil_scoped_release release;
    synctalk::MelWorkspace ws = proc.NewWorkspace();
    auto run = [&](auto* x) {
      synctalk::CheckFinite(x, n);
      proc.PreEmphasis(x, n, pre);
      for (int64_t k = 0; k < frames; ++k) {
        double* f = fr + k * o.n_fft;
        proc.ExtractFrame(x, n, k, f);
        std::memcpy(wi + k * o.n_fft, f, sizeof(double) * o.n_fft);
        proc.ApplyWindow(wi + k * o.n_fft);
        proc.Spectrum(wi + k * o.n_fft, sp + k * bins, ws.fft_work.data());
        proc.Magnitude(sp + k * bins, ma + k * bins);
        proc.Mel(ma + k * bins, me + k * o.n_mels);
        for (int m = 0; m < o.n_mels; ++m) {
          d[k * o.n_mels + m] = proc.AmpToDb(me[k * o.n_mels + m]);
          no[k * o.n_mels + m] = proc.Normalize(d[k * o.n_mels + m]);
        }
      }
    };
    if (dtype == Dtype::kFloat32) {
      run(static_cast<const float*>(data));
    } else {
      run(static_cast<const double*>(data));
    }
  }
  py::dict out;
  out["preemphasis"] = preemph;
  out["frames"] = framed;
  out["windowed"] = windowed;
  out["spectrum"] = spectrum;
  out["magnitude"] = magnitude;
  out["mel"] = mel;
  out["db"] = db;
  out["normalized"] = normalized;
  return out;
}

py::array_t<std::complex<double>> Rfft(const py::array& samples) {
  const Dtype dtype = CheckSamples(samples, "x");
  if (dtype != Dtype::kFloat64) throw py::type_error("x must be float64");
  const std::size_t n = samples.size();
  synctalk::CheckFftLength(n);
  synctalk::RealFft fft(n);
  py::array_t<std::complex<double>> out(static_cast<py::ssize_t>(fft.num_bins()));
  std::vector<Complex> work(fft.work_size());
  const double* in = static_cast<const double*>(samples.data());
  Complex* bins = reinterpret_cast<Complex*>(out.mutable_data());
  {
    py::gil_scoped_release release;
    fft.Forward(in, bins, work.data());
  }
  return out;
}

// The real FFT of many frames at once: the FFT stage alone, on the SIMD lanes
// of the resolved level (or the scalar RealFft), for tests and benchmarks.
class FrameFft {
 public:
  FrameFft(int n, const std::string& simd) : fft_(CheckedLength(n)) {
    const synctalk::SimdLevel level =
        synctalk::ResolveSimdLevel(synctalk::ParseSimdLevel(simd), std::getenv(synctalk::kSimdEnvVar));
    if (level != synctalk::SimdLevel::kScalar && n % 2 == 0) {
      lanes_ = std::make_unique<synctalk::SpectrumLanes>(fft_, level, synctalk::BinValue::kPower,
                                                         no_filterbank_);
    }
  }
  std::string simd() const {
    return synctalk::SimdLevelName(lanes_ ? lanes_->level() : synctalk::SimdLevel::kScalar);
  }

  py::array_t<std::complex<double>> Forward(const py::array& frames) const {
    if (frames.ndim() != 2 || frames.shape(1) != static_cast<py::ssize_t>(fft_.size())) {
      throw py::value_error("frames must have shape (count, " + std::to_string(fft_.size()) + ")");
    }
    if (!HasDtype<double>(frames)) throw py::type_error("frames must be float64");
    if (!(frames.flags() & py::array::c_style)) throw py::value_error("frames must be C-contiguous");
    const int64_t count = frames.shape(0);
    const int64_t n = fft_.size(), bins = fft_.num_bins();
    py::array_t<std::complex<double>> out({count, bins});
    const double* in = static_cast<const double*>(frames.data());
    Complex* o = reinterpret_cast<Complex*>(out.mutable_data());
    py::gil_scoped_release release;
    if (!lanes_) {
      std::vector<Complex> work(fft_.work_size());
      for (int64_t k = 0; k < count; ++k) fft_.Forward(in + k * n, o + k * bins, work.data());
      return out;
    }
    const int lanes = lanes_->lanes();
    std::vector<double> group(static_cast<std::size_t>(lanes) * n, 0.0);
    std::vector<Complex> spectra(static_cast<std::size_t>(lanes) * bins);
    std::vector<double> scratch(lanes_->scratch_size());
    for (int64_t k = 0; k < count; k += lanes) {
      const int64_t used = std::min<int64_t>(lanes, count - k);
      if (used == lanes) {
        lanes_->Spectrum(in + k * n, o + k * bins, scratch.data());
        continue;
      }
      std::fill(group.begin(), group.end(), 0.0);
      std::copy(in + k * n, in + (k + used) * n, group.begin());
      lanes_->Spectrum(group.data(), spectra.data(), scratch.data());
      std::copy(spectra.begin(), spectra.begin() + used * bins, o + k * bins);
    }
    return out;
  }

 private:
  static std::size_t CheckedLength(int n) {
    if (n < 1) throw py::value_error("n must be >= 1, got " + std::to_string(n));
    synctalk::CheckFftLength(static_cast<std::size_t>(n));
    return static_cast<std::size_t>(n);
  }
  synctalk::RealFft fft_;
  synctalk::SparseFilterbank no_filterbank_;  // the spectrum alone
  std::unique_ptr<synctalk::SpectrumLanes> lanes_;
};

template <typename Online>
void AcceptWaveform(Online& online, const py::array& samples) {
  if (samples.ndim() != 1) {
    throw py::value_error("samples must be 1-D, got " + std::to_string(samples.ndim()) + "-D");
  }
  if (!HasDtype<float>(samples)) {
    throw py::type_error("samples must be float32, got " + std::string(py::str(samples.dtype())));
  }
  if (!(samples.flags() & py::array::c_style)) throw py::value_error("samples must be C-contiguous");
  const float* data = static_cast<const float*>(samples.data());
  const int64_t n = samples.size();
  py::gil_scoped_release release;
  online.AcceptWaveform(data, n);
}

template <typename Online>
py::array_t<float> PopFrames(Online& online) {
  const int64_t count = online.NumFramesPending();
  py::array_t<float> out({count, static_cast<int64_t>(online.bands())});
  online.PopFrames(out.mutable_data(), count);
  return out;
}

// What the mel and fbank processors share in Python: options, frame count,
// SIMD level, window.
template <typename Processor>
void DefProcessorCommon(py::class_<Processor>& cls) {
  cls.def_property_readonly("options", &Processor::options)
      .def("num_frames", &Processor::NumFrames, py::arg("num_samples"))
      .def_property_readonly(
          "simd", [](const Processor& p) { return std::string(synctalk::SimdLevelName(p.simd_level())); })
      .def_property_readonly("lanes", &Processor::lanes)
      .def_property_readonly("window", [](const Processor& p) {
        return py::array_t<double>(p.window().size(), p.window().data());
      });
}

// The filterbank as a dense float32 (rows, bins) array.
template <typename Processor>
py::array_t<float> DenseFilterbank(const Processor& p) {
  const auto dense = p.filterbank().Dense();
  py::array_t<float> out({p.filterbank().num_rows(), p.filterbank().num_bins()});
  std::memcpy(out.mutable_data(), dense.data(), dense.size() * sizeof(float));
  return out;
}

// The stream methods of OnlineMel and OnlineFbank.
template <typename Online>
void DefOnline(py::class_<Online>& cls, const char* accept_doc, const char* finish_doc,
               const char* pop_doc) {
  cls.def("accept_waveform", &AcceptWaveform<Online>, py::arg("samples"), accept_doc)
      .def(
          "input_finished",
          [](Online& o) {
            py::gil_scoped_release release;
            o.InputFinished();
          },
          finish_doc)
      .def("pop_frames", &PopFrames<Online>, pop_doc)
      .def("reset", &Online::Reset)
      .def("samples_needed", &Online::SamplesNeeded, py::arg("frame"))
      .def_property_readonly("is_finished", &Online::input_finished)
      .def_property_readonly("num_frames_ready", &Online::NumFramesReady)
      .def_property_readonly("num_frames_pending", &Online::NumFramesPending)
      .def_property_readonly("num_samples_received", &Online::num_samples_received);
}

// --- Kaldi fbank -------------------------------------------------------------

// Every intermediate stage of the fbank for one clip, as float64 arrays.
py::dict FbankStages(const FbankProcessor& proc, const py::array& samples) {
  const Dtype dtype = CheckSamples(samples, "audio");
  const int64_t n = samples.size();
  const int64_t frames = proc.NumFrames(n);
  const FbankOptions& o = proc.options();
  const int64_t length = o.frame_length, padded = o.PaddedLength(), bins = padded / 2 + 1;
  const int64_t mels = o.num_bins;
  py::array_t<double> framed({frames, length}), dc({frames, length}), preemph({frames, length}),
      windowed({frames, padded}), power({frames, bins}), energy({frames, mels}), logged({frames, mels});
  py::array_t<std::complex<double>> spectrum({frames, bins});
  {
    double* fr = framed.mutable_data();
    double* d = dc.mutable_data();
    double* pe = preemph.mutable_data();
    double* wi = windowed.mutable_data();
    double* po = power.mutable_data();
    double* en = energy.mutable_data();
    double* lo = logged.mutable_data();
    auto* sp = reinterpret_cast<Complex*>(spectrum.mutable_data());
    const void* data = samples.data();
    py::gil_scoped_release release;
    synctalk::FbankWorkspace ws = proc.NewWorkspace();
    auto run = [&](auto* x) {
      synctalk::CheckFinite(x, n);
      for (int64_t k = 0; k < frames; ++k) {
        double* f = ws.frame.data();
        proc.ExtractFrame(x, k, f);
        std::memcpy(fr + k * length, f, sizeof(double) * length);
        proc.RemoveDcOffset(f);
        std::memcpy(d + k * length, f, sizeof(double) * length);
        proc.PreEmphasize(f);
        std::memcpy(pe + k * length, f, sizeof(double) * length);
        proc.ApplyWindow(f);
        std::memcpy(wi + k * padded, f, sizeof(double) * padded);
        proc.Spectrum(f, sp + k * bins, ws.fft_work.data());
        proc.Power(sp + k * bins, po + k * bins);
        proc.Mel(po + k * bins, en + k * mels);
        for (int64_t b = 0; b < mels; ++b) lo[k * mels + b] = proc.Log(en[k * mels + b]);
      }
    };
    if (dtype == Dtype::kFloat32) {
      run(static_cast<const float*>(data));
    } else {
      run(static_cast<const double*>(data));
    }
  }
  py::dict out;
  out["frames"] = framed;
  out["dc_removed"] = dc;
  out["preemphasis"] = preemph;
  out["windowed"] = windowed;
  out["spectrum"] = spectrum;
  out["power"] = power;
  out["energy"] = energy;
  out["log"] = logged;
  return out;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "C++ core of synctalk_audio: the SyncTalk_2D mel spectrogram and the Kaldi fbank.";
  // Bounds of MelOptions (options.h), the one definition the package reuses.
  m.attr("MIN_SAMPLE_RATE") = synctalk::kMinSampleRate;
  m.attr("MAX_SAMPLE_RATE") = synctalk::kMaxSampleRate;
  m.attr("MAX_N_FFT") = synctalk::kMaxNfft;
  m.attr("MAX_N_MELS") = synctalk::kMaxMels;
  m.attr("MAX_LEVEL_DB") = synctalk::kMaxLevelDb;
  m.attr("MAX_ABS_VALUE_LIMIT") = synctalk::kMaxAbsValueLimit;
  m.attr("MAX_THREADS") = synctalk::kMaxThreads;
  m.attr("SIMD_ENV_VAR") = synctalk::kSimdEnvVar;
  m.def(
      "simd_levels",
      [] {
        std::vector<std::string> names;
        for (auto level : synctalk::AvailableSimdLevels()) names.push_back(synctalk::SimdLevelName(level));
        return names;
      },
      "SIMD levels compiled in and supported by this CPU, scalar first, best last.");

  py::class_<MelOptions>(m, "MelOptions")
      .def(py::init<>())
      .def_readwrite("sample_rate", &MelOptions::sample_rate)
      .def_readwrite("n_fft", &MelOptions::n_fft)
      .def_readwrite("hop_length", &MelOptions::hop_length)
      .def_readwrite("win_length", &MelOptions::win_length)
      .def_readwrite("n_mels", &MelOptions::n_mels)
      .def_readwrite("fmin", &MelOptions::fmin)
      .def_readwrite("fmax", &MelOptions::fmax)
      .def_readwrite("preemphasis", &MelOptions::preemphasis)
      .def_readwrite("ref_level_db", &MelOptions::ref_level_db)
      .def_readwrite("min_level_db", &MelOptions::min_level_db)
      .def_readwrite("max_abs_value", &MelOptions::max_abs_value)
      .def_property(
          "pad_mode", [](const MelOptions& o) { return std::string(synctalk::PadModeName(o.pad_mode)); },
          [](MelOptions& o, const std::string& name) { o.pad_mode = synctalk::ParsePadMode(name); })
      .def_property(
          "simd", [](const MelOptions& o) { return std::string(synctalk::SimdLevelName(o.simd)); },
          [](MelOptions& o, const std::string& name) { o.simd = synctalk::ParseSimdLevel(name); })
      .def("validate", &MelOptions::Validate)
      .def("num_frames", &MelOptions::NumFrames, py::arg("num_samples"));

  py::class_<MelProcessor> mel_processor(m, "MelProcessor");
  mel_processor.def(py::init([](const MelOptions& o) { return std::make_unique<MelProcessor>(WithSimdCap(o)); }),
                    py::arg("options"));
  DefProcessorCommon(mel_processor);
  mel_processor
      .def("melspectrogram", &ComputeArray<MelProcessor>, py::arg("audio"), py::arg("dtype") = "float32",
           py::arg("threads") = 1)
      .def("melspectrogram_into", &MelspectrogramInto, py::arg("audio"), py::arg("out"),
           py::arg("threads") = 1)
      .def("stages", &Stages, py::arg("audio"))
      .def_property_readonly("filterbank", &DenseFilterbank<MelProcessor>);

  py::class_<synctalk::OnlineMel> online_mel(m, "OnlineMel");
  online_mel.def(py::init<const MelProcessor&, int>(), py::arg("processor"), py::arg("threads") = 1,
                 py::keep_alive<1, 2>());
  DefOnline(online_mel, "Append float32 samples and compute every frame that became final.",
            "Mark the end of input and compute the remaining (padded) frames.",
            "Take the pending frames: float32 (k, n_mels).");

  m.attr("MIN_FBANK_BINS") = synctalk::kMinFbankBins;

  py::class_<FbankOptions>(m, "FbankOptions")
      .def(py::init<>())
      .def_readwrite("sample_rate", &FbankOptions::sample_rate)
      .def_readwrite("frame_length", &FbankOptions::frame_length)
      .def_readwrite("frame_shift", &FbankOptions::frame_shift)
      .def_readwrite("num_bins", &FbankOptions::num_bins)
      .def_readwrite("low_freq", &FbankOptions::low_freq)
      .def_readwrite("high_freq", &FbankOptions::high_freq)
      .def_readwrite("preemphasis", &FbankOptions::preemphasis)
      .def_readwrite("remove_dc_offset", &FbankOptions::remove_dc_offset)
      .def_property(
          "simd", [](const FbankOptions& o) { return std::string(synctalk::SimdLevelName(o.simd)); },
          [](FbankOptions& o, const std::string& name) { o.simd = synctalk::ParseSimdLevel(name); })
      .def("validate", &FbankOptions::Validate)
      .def("num_frames", &FbankOptions::NumFrames, py::arg("num_samples"))
      .def("padded_length", &FbankOptions::PaddedLength);

  py::class_<FbankProcessor> fbank_processor(m, "FbankProcessor");
  fbank_processor.def(
      py::init([](const FbankOptions& o) { return std::make_unique<FbankProcessor>(WithSimdCap(o)); }),
      py::arg("options"));
  DefProcessorCommon(fbank_processor);
  fbank_processor
      .def("fbank", &ComputeArray<FbankProcessor>, py::arg("audio"), py::arg("dtype") = "float32",
           py::arg("threads") = 1, "Log mel energies, (frames, num_bins), of a 1-D float32/float64 array.")
      .def("stages", &FbankStages, py::arg("audio"))
      .def_property_readonly("mel_banks", &DenseFilterbank<FbankProcessor>);

  py::class_<synctalk::OnlineFbank> online_fbank(m, "OnlineFbank");
  online_fbank.def(py::init<const FbankProcessor&>(), py::arg("processor"), py::keep_alive<1, 2>());
  DefOnline(online_fbank, "Append float32 samples and compute every frame they complete.",
            "Mark the end of input (adds no frame: snip_edges).",
            "Take the pending frames: float32 (k, num_bins).");

  py::class_<FrameFft>(m, "FrameFft")
      .def(py::init<int, const std::string&>(), py::arg("n"), py::arg("simd") = "auto")
      .def_property_readonly("simd", &FrameFft::simd)
      .def("forward", &FrameFft::Forward, py::arg("frames"),
           "Real FFT of each row of a C-contiguous float64 (count, n) array: (count, n // 2 + 1).");

  m.def("rfft", &Rfft, py::arg("x"),
        "Real FFT of a 1-D float64 array with the core's mixed-radix FFT (numpy.fft.rfft layout).");
}
