// Mixed-radix Stockham FFT; see fft.h for the why and the contract.
//
// One stage of radix p on a sub-transform length L = p * m with stride s
// (s independent sequences interleaved) computes, for j < m, q < s, k < p:
//
//   y[q + s (p j + k)] = w_L^{j k} * sum_r x[q + s (j + r m)] * w_p^{r k}
//
// and the next stage works on length m with stride p * s. After the last
// stage the result is in natural order. (Decimation in frequency:
// X[p v + k] is the length-m DFT over j of the bracketed sequence.)
#include "synctalk/fft.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

namespace synctalk {
namespace {

constexpr double kTwoPi = 6.283185307179586476925286766559;

// e^{-2 pi i num / den}, with num reduced modulo den first so that large
// products j * k lose no accuracy.
Complex Root(std::size_t num, std::size_t den) {
  const double angle = -kTwoPi * static_cast<double>(num % den) / static_cast<double>(den);
  return {std::cos(angle), std::sin(angle)};
}

inline Complex Add(Complex a, Complex b) { return {a.re + b.re, a.im + b.im}; }
inline Complex Sub(Complex a, Complex b) { return {a.re - b.re, a.im - b.im}; }
inline Complex Mul(Complex a, Complex b) {
  return {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
}
inline Complex Scale(Complex a, double f) { return {a.re * f, a.im * f}; }
// -i * a
inline Complex MulMinusI(Complex a) { return {a.im, -a.re}; }

std::vector<std::size_t> Factorize(std::size_t n) {
  std::vector<std::size_t> factors;
  while (n % 4 == 0) { factors.push_back(4); n /= 4; }
  while (n % 2 == 0) { factors.push_back(2); n /= 2; }
  for (std::size_t p = 3; p * p <= n; p += 2) {
    while (n % p == 0) { factors.push_back(p); n /= p; }
  }
  if (n > 1) factors.push_back(n);
  return factors;
}

void Radix2(const Complex* x, Complex* y, std::size_t m, std::size_t s, const Complex* tw) {
  for (std::size_t j = 0; j < m; ++j) {
    const Complex w1 = tw[2 * j + 1];
    for (std::size_t q = 0; q < s; ++q) {
      const Complex a0 = x[q + s * j];
      const Complex a1 = x[q + s * (j + m)];
      y[q + s * (2 * j)] = Add(a0, a1);
      y[q + s * (2 * j + 1)] = Mul(Sub(a0, a1), w1);
    }
  }
}

void Radix3(const Complex* x, Complex* y, std::size_t m, std::size_t s, const Complex* tw) {
  const double c = -0.5;
  const double sn = 0.86602540378443864676372317075294;  // sin(2 pi / 3)
  for (std::size_t j = 0; j < m; ++j) {
    const Complex w1 = tw[3 * j + 1], w2 = tw[3 * j + 2];
    for (std::size_t q = 0; q < s; ++q) {
      const Complex a0 = x[q + s * j];
      const Complex a1 = x[q + s * (j + m)];
      const Complex a2 = x[q + s * (j + 2 * m)];
      const Complex t = Add(a1, a2);
      const Complex u = Add(a0, Scale(t, c));
      const Complex v = MulMinusI(Scale(Sub(a1, a2), sn));  // -i sin * (a1 - a2)
      y[q + s * (3 * j)] = Add(a0, t);
      y[q + s * (3 * j + 1)] = Mul(Add(u, v), w1);
      y[q + s * (3 * j + 2)] = Mul(Sub(u, v), w2);
    }
  }
}

void Radix4(const Complex* x, Complex* y, std::size_t m, std::size_t s, const Complex* tw) {
  for (std::size_t j = 0; j < m; ++j) {
    const Complex w1 = tw[4 * j + 1], w2 = tw[4 * j + 2], w3 = tw[4 * j + 3];
    for (std::size_t q = 0; q < s; ++q) {
      const Complex a0 = x[q + s * j];
      const Complex a1 = x[q + s * (j + m)];
      const Complex a2 = x[q + s * (j + 2 * m)];
      const Complex a3 = x[q + s * (j + 3 * m)];
      const Complex b0 = Add(a0, a2), b1 = Sub(a0, a2);
      const Complex b2 = Add(a1, a3), b3 = MulMinusI(Sub(a1, a3));
      y[q + s * (4 * j)] = Add(b0, b2);
      y[q + s * (4 * j + 1)] = Mul(Add(b1, b3), w1);
      y[q + s * (4 * j + 2)] = Mul(Sub(b0, b2), w2);
      y[q + s * (4 * j + 3)] = Mul(Sub(b1, b3), w3);
    }
  }
}

void Radix5(const Complex* x, Complex* y, std::size_t m, std::size_t s, const Complex* tw) {
  const double c1 = 0.30901699437494742410229341718282;   // cos(2 pi / 5)
  const double c2 = -0.80901699437494742410229341718282;  // cos(4 pi / 5)
  const double s1 = 0.95105651629515357211643933337938;   // sin(2 pi / 5)
  const double s2 = 0.58778525229247312916870595463907;   // sin(4 pi / 5)
  for (std::size_t j = 0; j < m; ++j) {
    const Complex w1 = tw[5 * j + 1], w2 = tw[5 * j + 2];
    const Complex w3 = tw[5 * j + 3], w4 = tw[5 * j + 4];
    for (std::size_t q = 0; q < s; ++q) {
      const Complex a0 = x[q + s * j];
      const Complex a1 = x[q + s * (j + m)];
      const Complex a2 = x[q + s * (j + 2 * m)];
      const Complex a3 = x[q + s * (j + 3 * m)];
      const Complex a4 = x[q + s * (j + 4 * m)];
      const Complex t1 = Add(a1, a4), t2 = Add(a2, a3);
      const Complex d1 = Sub(a1, a4), d2 = Sub(a2, a3);
      // k = 1, 4: a0 + c1 t1 + c2 t2 -/+ i (s1 d1 + s2 d2)
      const Complex u1 = Add(a0, Add(Scale(t1, c1), Scale(t2, c2)));
      const Complex v1 = MulMinusI(Add(Scale(d1, s1), Scale(d2, s2)));
      // k = 2, 3: a0 + c2 t1 + c1 t2 -/+ i (s2 d1 - s1 d2)
      const Complex u2 = Add(a0, Add(Scale(t1, c2), Scale(t2, c1)));
      const Complex v2 = MulMinusI(Sub(Scale(d1, s2), Scale(d2, s1)));
      y[q + s * (5 * j)] = Add(a0, Add(t1, t2));
      y[q + s * (5 * j + 1)] = Mul(Add(u1, v1), w1);
      y[q + s * (5 * j + 2)] = Mul(Add(u2, v2), w2);
      y[q + s * (5 * j + 3)] = Mul(Sub(u2, v2), w3);
      y[q + s * (5 * j + 4)] = Mul(Sub(u1, v1), w4);
    }
  }
}

// Any radix p by a direct p-point DFT; roots[r] = e^{-2 pi i r / p}.
void RadixGeneric(const Complex* x, Complex* y, std::size_t p, std::size_t m, std::size_t s,
                  const Complex* tw, const Complex* roots) {
  for (std::size_t j = 0; j < m; ++j) {
    for (std::size_t q = 0; q < s; ++q) {
      for (std::size_t k = 0; k < p; ++k) {
        Complex sum = {0.0, 0.0};
        for (std::size_t r = 0; r < p; ++r) {
          sum = Add(sum, Mul(x[q + s * (j + r * m)], roots[(r * k) % p]));
        }
        y[q + s * (p * j + k)] = Mul(sum, tw[p * j + k]);
      }
    }
  }
}

}  // namespace

std::size_t LargestPrimeFactor(std::size_t n) {
  std::size_t largest = 1;
  for (std::size_t p = 2; p * p <= n; ++p) {
    while (n % p == 0) {
      largest = p;
      n /= p;
    }
  }
  return n > 1 ? n : largest;
}

void CheckFftLength(std::size_t n) {
  if (n == 0) throw std::invalid_argument("FFT length must be positive, got 0");
  if (n > kMaxFftLength) {
    throw std::invalid_argument("FFT length " + std::to_string(n) + " is above the limit " +
                                std::to_string(kMaxFftLength));
  }
  const std::size_t prime = LargestPrimeFactor(n);
  if (prime > kMaxPrimeFactor) {
    throw std::invalid_argument("FFT length " + std::to_string(n) + " has the prime factor " +
                                std::to_string(prime) + " (limit " +
                                std::to_string(kMaxPrimeFactor) +
                                "); choose a length with small prime factors, e.g. 800 = 2^5 * 5^2");
  }
}

ComplexFft::ComplexFft(std::size_t n) : n_(n) {
  if (n == 0) throw std::invalid_argument("FFT length must be positive, got 0");
  factors_ = Factorize(n);
  std::size_t length = n, stride = 1;
  for (std::size_t p : factors_) {
    const std::size_t m = length / p;
    stages_.push_back({p, length, stride, twiddles_.size()});
    for (std::size_t j = 0; j < m; ++j) {
      for (std::size_t k = 0; k < p; ++k) twiddles_.push_back(Root(j * k, length));
    }
    root_at_.push_back(radix_roots_.size());
    if (p != 2 && p != 3 && p != 4 && p != 5) {
      for (std::size_t r = 0; r < p; ++r) radix_roots_.push_back(Root(r, p));
    }
    length = m;
    stride *= p;
  }
}

void ComplexFft::Forward(Complex* data, Complex* work) const {
  Complex* in = data;
  Complex* out = work;
  for (std::size_t i = 0; i < stages_.size(); ++i) {
    const Stage& st = stages_[i];
    const std::size_t m = st.length / st.radix;
    const Complex* tw = twiddles_.data() + st.twiddle_at;
    switch (st.radix) {
      case 2: Radix2(in, out, m, st.stride, tw); break;
      case 3: Radix3(in, out, m, st.stride, tw); break;
      case 4: Radix4(in, out, m, st.stride, tw); break;
      case 5: Radix5(in, out, m, st.stride, tw); break;
      default:
        RadixGeneric(in, out, st.radix, m, st.stride, tw, radix_roots_.data() + root_at_[i]);
    }
    std::swap(in, out);
  }
  if (in != data) {
    for (std::size_t i = 0; i < n_; ++i) data[i] = in[i];
  }
}

RealFft::RealFft(std::size_t n)
    : n_(n), half_(n == 0 ? 1 : (n % 2 == 0 ? n / 2 : n)) {
  if (n == 0) throw std::invalid_argument("FFT length must be positive, got 0");
  if (n % 2 == 0) {
    const std::size_t h = n / 2;
    unpack_.reserve(h + 1);
    for (std::size_t k = 0; k <= h; ++k) unpack_.push_back(Root(k, n));
  }
}

std::size_t RealFft::work_size() const { return n_ % 2 == 0 ? n_ / 2 : 2 * n_; }

void RealFft::Forward(const double* in, Complex* out, Complex* work) const {
  if (n_ % 2 != 0) {
    // Odd length: plain complex transform of the real signal.
    Complex* data = work;
    for (std::size_t i = 0; i < n_; ++i) data[i] = {in[i], 0.0};
    half_.Forward(data, work + n_);
    for (std::size_t k = 0; k < num_bins(); ++k) out[k] = data[k];
    return;
  }
  // Even length n = 2h: z[j] = x[2j] + i x[2j+1]; Z = FFT_h(z); then
  // X[k] = E[k] + w_n^k O[k] with E = (Z[k] + conj Z[h-k]) / 2 and
  // O = (Z[k] - conj Z[h-k]) / 2i, indices modulo h.
  const std::size_t h = n_ / 2;
  for (std::size_t j = 0; j < h; ++j) out[j] = {in[2 * j], in[2 * j + 1]};
  half_.Forward(out, work);
  out[h] = out[0];
  // Bins k and h - k are computed from the same pair Z[k], Z[h-k]: do them
  // together so the transform can be unpacked in place.
  for (std::size_t k = 0; k <= h / 2; ++k) {
    const std::size_t kc = h - k;
    const Complex zk = out[k];
    const Complex zc = out[kc];
    // Bin k.
    const Complex e_k = {0.5 * (zk.re + zc.re), 0.5 * (zk.im - zc.im)};
    const Complex o_k = {0.5 * (zk.im + zc.im), -0.5 * (zk.re - zc.re)};
    // Bin h - k (the roles of zk and zc swap).
    const Complex e_c = {0.5 * (zc.re + zk.re), 0.5 * (zc.im - zk.im)};
    const Complex o_c = {0.5 * (zc.im + zk.im), -0.5 * (zc.re - zk.re)};
    out[k] = Add(e_k, Mul(unpack_[k], o_k));
    out[kc] = Add(e_c, Mul(unpack_[kc], o_c));
  }
}

}  // namespace synctalk
