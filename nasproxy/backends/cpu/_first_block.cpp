// A ConvNet's first block (3x3 convolution of a few input channels, normalisation, activation, 2x2 pooling)
// computed one (image, channel) plane at a time, in cache. The convolution of 1-4 input channels costs 9-36
// multiply-adds per value, less than reading a stored activation back from memory, so nothing of the block
// is stored: every pass recomputes the plane's convolution from the input. See _first_block.py.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

namespace {

enum Act { SIGMOID = 0, RELU = 1, LEAKY = 2 };
enum Pool { POOL_NONE = 0, POOL_MAX = 1, POOL_AVG = 2 };

// One call's tensors. x is the padded input [N, Cin, H + 2, W + 2]; planes are the convolution's H x W
// outputs. A plane's normalised value is y = A z + B (per plane), times ge and plus be (elementwise, [C, H, W])
// for a layer norm.
struct Block {
  int64_t N, Cin, C, H, W;
  const float* x;
  const float* weight;
  const float* bias;
  const float* A;
  const float* B;
  const float* ge;
  const float* be;
  float slope;
};

const float* optional_data(const torch::Tensor& t) { return t.numel() ? t.data_ptr<float>() : nullptr; }

Block make_block(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                 const torch::Tensor& A, const torch::Tensor& B, const torch::Tensor& ge,
                 const torch::Tensor& be, double slope) {
  TORCH_CHECK(x.is_contiguous() && weight.is_contiguous() && x.scalar_type() == torch::kFloat32,
              "first block: contiguous fp32 tensors expected");
  return Block{x.size(0), x.size(1), weight.size(0), x.size(2) - 2, x.size(3) - 2,
               x.data_ptr<float>(), weight.data_ptr<float>(), optional_data(bias), optional_data(A),
               optional_data(B), optional_data(ge), optional_data(be), static_cast<float>(slope)};
}

// z = the convolution's plane (n, c): per input channel one pass with all 9 taps of a row in registers
inline void convolve(const Block& k, int64_t n, int64_t c, float* __restrict__ z) {
  const int64_t H = k.H, W = k.W, Wp = W + 2;
  for (int64_t ci = 0; ci < k.Cin; ++ci) {
    const float* in = k.x + (n * k.Cin + ci) * (H + 2) * Wp;
    const float* w = k.weight + (c * k.Cin + ci) * 9;
    const float w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5], w6 = w[6], w7 = w[7], w8 = w[8];
    const float base = k.bias ? k.bias[c] : 0.0f;
    for (int64_t h = 0; h < H; ++h) {
      const float *r0 = in + h * Wp, *r1 = r0 + Wp, *r2 = r1 + Wp;
      float* __restrict__ row = z + h * W;
#pragma omp simd
      for (int64_t j = 0; j < W; ++j) {
        const float taps = w0 * r0[j] + w1 * r0[j + 1] + w2 * r0[j + 2] + w3 * r1[j] + w4 * r1[j + 1] +
                           w5 * r1[j + 2] + w6 * r2[j] + w7 * r2[j + 1] + w8 * r2[j + 2];
        row[j] = (ci == 0 ? base : row[j]) + taps;
      }
    }
  }
}

// Adds image n's share of the filter and bias gradients, per lane: weight_lanes[(ci * 9 + tap) * W + j] += the
// products of dz with the input under the tap, summed over rows; bias_lanes[i] += dz[i]. Horizontal sums come
// once per channel (reduce_filter_gradient).
inline void accumulate_filter_gradient(const Block& k, int64_t n, const float* __restrict__ dz,
                                       float* __restrict__ bias_lanes, float* __restrict__ lanes) {
  const int64_t H = k.H, W = k.W, Wp = W + 2;
#pragma omp simd
  for (int64_t i = 0; i < H * W; ++i) bias_lanes[i] += dz[i];
  for (int64_t ci = 0; ci < k.Cin; ++ci) {
    const float* in = k.x + (n * k.Cin + ci) * (H + 2) * Wp;
    float* __restrict__ l = lanes + ci * 9 * W;
    for (int64_t h = 0; h < H; ++h) {
      const float *r0 = in + h * Wp, *r1 = r0 + Wp, *r2 = r1 + Wp;
      const float* __restrict__ row = dz + h * W;
#pragma omp simd
      for (int64_t j = 0; j < W; ++j) {
        const float d = row[j];
        l[j] += d * r0[j];
        l[W + j] += d * r0[j + 1];
        l[2 * W + j] += d * r0[j + 2];
        l[3 * W + j] += d * r1[j];
        l[4 * W + j] += d * r1[j + 1];
        l[5 * W + j] += d * r1[j + 2];
        l[6 * W + j] += d * r2[j];
        l[7 * W + j] += d * r2[j + 1];
        l[8 * W + j] += d * r2[j + 2];
      }
    }
  }
}

inline void reduce_filter_gradient(const Block& k, int64_t c, const float* bias_lanes, const float* weight_lanes,
                                   float* dweight, float* dbias) {
  float total = 0.0f;
  for (int64_t i = 0; i < k.H * k.W; ++i) total += bias_lanes[i];
  dbias[c] = total;
  for (int64_t t = 0; t < k.Cin * 9; ++t) {
    float acc = 0.0f;
    for (int64_t j = 0; j < k.W; ++j) acc += weight_lanes[t * k.W + j];
    dweight[c * k.Cin * 9 + t] = acc;
  }
}

// y = the normalised plane, from z
template <bool LAYER>
inline void normalise(const Block& k, int64_t n, int64_t c, const float* __restrict__ z, float* __restrict__ y) {
  const int64_t HW = k.H * k.W;
  const float a = k.A ? k.A[n * k.C + c] : 1.0f, b = k.B ? k.B[n * k.C + c] : 0.0f;
  if constexpr (LAYER) {
    const float* __restrict__ ge = k.ge + c * HW;
    const float* __restrict__ be = k.be + c * HW;
#pragma omp simd
    for (int64_t i = 0; i < HW; ++i) y[i] = ge[i] * (a * z[i] + b) + be[i];
  } else {
#pragma omp simd
    for (int64_t i = 0; i < HW; ++i) y[i] = a * z[i] + b;
  }
}

// e^x to ~2 ulp (Cephes' expf), written so that loops over it vectorise: std::exp does not without -ffast-math
inline float exp_vectorisable(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return (p * r * r + r + 1.0f) * scale;
}

template <int ACT>
inline float activate(float v, float slope) {
  if constexpr (ACT == RELU) return v > 0.0f ? v : 0.0f;
  else if constexpr (ACT == LEAKY) return v > 0.0f ? v : v * slope;
  else return 1.0f / (1.0f + exp_vectorisable(-v));
}

// the activation's derivative at pre-activation v
template <int ACT>
inline float activation_slope(float v, float slope) {
  if constexpr (ACT == RELU) return v > 0.0f ? 1.0f : 0.0f;
  else if constexpr (ACT == LEAKY) return v > 0.0f ? 1.0f : slope;
  else {
    const float s = 1.0f / (1.0f + exp_vectorisable(-v));
    return s * (1.0f - s);
  }
}

template <int ACT, int POOL>
inline void activate_and_pool(const Block& k, const float* __restrict__ y, float* __restrict__ out) {
  const int64_t H = k.H, W = k.W, W2 = W / 2;
  const float slope = k.slope;
  if constexpr (POOL == POOL_NONE) {
#pragma omp simd
    for (int64_t i = 0; i < H * W; ++i) out[i] = activate<ACT>(y[i], slope);
  } else {
    for (int64_t i = 0; i < H / 2; ++i) {
      const float* __restrict__ top = y + 2 * i * W;
      const float* __restrict__ bottom = top + W;
      float* __restrict__ o = out + i * W2;
#pragma omp simd
      for (int64_t j = 0; j < W2; ++j) {
        if constexpr (POOL == POOL_AVG) {
          // the columns of each window first, then its rows, as _AvgPool2x2Function adds them
          const float upper = activate<ACT>(top[2 * j], slope) + activate<ACT>(top[2 * j + 1], slope);
          const float lower = activate<ACT>(bottom[2 * j], slope) + activate<ACT>(bottom[2 * j + 1], slope);
          o[j] = (upper + lower) * 0.25f;
        } else {  // a monotone activation commutes with the maximum
          const float upper = std::max(top[2 * j], top[2 * j + 1]);
          const float lower = std::max(bottom[2 * j], bottom[2 * j + 1]);
          o[j] = activate<ACT>(std::max(upper, lower), slope);
        }
      }
    }
  }
}

// dy = the gradient of the normalised plane y, from the gradient g of the block's output plane. Max pooling
// passes each window's gradient to its first maximum in row-major order, as max_pool2d does.
template <int ACT, int POOL>
inline void backprop_activation(const Block& k, const float* __restrict__ g, const float* __restrict__ y,
                                float* __restrict__ dy) {
  const int64_t H = k.H, W = k.W, W2 = W / 2;
  const float slope = k.slope;
  if constexpr (POOL == POOL_NONE) {
#pragma omp simd
    for (int64_t i = 0; i < H * W; ++i) dy[i] = g[i] * activation_slope<ACT>(y[i], slope);
  } else {
    for (int64_t i = 0; i < H / 2; ++i) {
      const float* __restrict__ top = y + 2 * i * W;
      const float* __restrict__ bottom = top + W;
      float* __restrict__ dtop = dy + 2 * i * W;
      float* __restrict__ dbottom = dtop + W;
      const float* __restrict__ gi = g + i * W2;
#pragma omp simd
      for (int64_t j = 0; j < W2; ++j) {
        if constexpr (POOL == POOL_AVG) {
          const float q = 0.25f * gi[j];
          dtop[2 * j] = q * activation_slope<ACT>(top[2 * j], slope);
          dtop[2 * j + 1] = q * activation_slope<ACT>(top[2 * j + 1], slope);
          dbottom[2 * j] = q * activation_slope<ACT>(bottom[2 * j], slope);
          dbottom[2 * j + 1] = q * activation_slope<ACT>(bottom[2 * j + 1], slope);
        } else {
          // selects only (no && or ||), so that the loop has no control flow and vectorises
          const float t0 = top[2 * j], t1 = top[2 * j + 1], b0 = bottom[2 * j], b1 = bottom[2 * j + 1];
          const float upper = t1 > t0 ? t1 : t0, lower = b1 > b0 ? b1 : b0;
          const float d = gi[j] * activation_slope<ACT>(lower > upper ? lower : upper, slope);
          const float d_top = lower > upper ? 0.0f : d, d_bottom = lower > upper ? d : 0.0f;
          dtop[2 * j] = t1 > t0 ? 0.0f : d_top;
          dtop[2 * j + 1] = t1 > t0 ? d_top : 0.0f;
          dbottom[2 * j] = b1 > b0 ? 0.0f : d_bottom;
          dbottom[2 * j + 1] = b1 > b0 ? d_bottom : 0.0f;
        }
      }
    }
  }
}

// A plane's mean and sum of squared deviations from it: two passes over a plane in cache, more accurate than
// one pass of sums and sums of squares.
inline void moments(const float* __restrict__ z, int64_t HW, float& mean, float& squares) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < HW; ++i) sum += z[i];
  mean = sum / HW;
  squares = 0.0f;
#pragma omp simd reduction(+ : squares)
  for (int64_t i = 0; i < HW; ++i) squares += (z[i] - mean) * (z[i] - mean);
}

// Instance norm of one plane: its mean and 1/std, and y = the plane
// standardised, times gain, plus offset.
inline void instance_normalise(const float* __restrict__ z, int64_t HW, float eps, float gain, float offset,
                               float* __restrict__ y, float& mean, float& rstd) {
  float squares;
  moments(z, HW, mean, squares);
  rstd = 1.0f / std::sqrt(squares / HW + eps);
  const float scale = gain * rstd, shift = offset - scale * mean;
#pragma omp simd
  for (int64_t i = 0; i < HW; ++i) y[i] = scale * z[i] + shift;
}

// The instance norm's backward for one plane: dz from dy (the gradient of its output), and the sums of dy
// and of dy * xhat (the plane's shares of beta's and gamma's gradients).
inline void instance_backprop(const float* __restrict__ z, const float* __restrict__ dy, int64_t HW, float gain,
                              float mean, float rstd, float* __restrict__ dz, float& sum, float& dot) {
  sum = 0.0f;
  dot = 0.0f;
#pragma omp simd reduction(+ : sum, dot)
  for (int64_t i = 0; i < HW; ++i) {
    sum += dy[i];
    dot += dy[i] * (z[i] - mean) * rstd;
  }
  // dz = rstd (gain dy - mean(gain dy) - xhat mean(gain dy xhat)), xhat = (z - mean) rstd
  const float mean_dy = gain * sum / HW, mean_dy_xhat = gain * dot / HW;
  const float ad = gain * rstd, bd = -rstd * mean_dy_xhat * rstd, cd = -rstd * (mean_dy - mean_dy_xhat * rstd * mean);
#pragma omp simd
  for (int64_t i = 0; i < HW; ++i) dz[i] = ad * dy[i] + bd * z[i] + cd;
}

// Calls f(act, pool, layer) with each as a compile-time constant.
template <typename F>
void dispatch(int64_t act, int64_t pool, bool layer, F&& f) {
  auto with_layer = [&](auto a, auto p) {
    if (layer) f(a, p, std::true_type{});
    else f(a, p, std::false_type{});
  };
  auto with_pool = [&](auto a) {
    if (pool == POOL_MAX) with_layer(a, std::integral_constant<int, POOL_MAX>{});
    else if (pool == POOL_AVG) with_layer(a, std::integral_constant<int, POOL_AVG>{});
    else with_layer(a, std::integral_constant<int, POOL_NONE>{});
  };
  if (act == RELU) with_pool(std::integral_constant<int, RELU>{});
  else if (act == LEAKY) with_pool(std::integral_constant<int, LEAKY>{});
  else with_pool(std::integral_constant<int, SIGMOID>{});
}

int64_t pooled(int64_t size, int64_t pool) { return pool == POOL_NONE ? size : size / 2; }

}  // namespace

// [N, C, 2]: each plane's mean and sum of squared deviations from it
torch::Tensor plane_moments(torch::Tensor x, torch::Tensor weight, torch::Tensor bias) {
  const Block k = make_block(x, weight, bias, {}, {}, {}, {}, 0.0);
  auto result = torch::empty({k.N, k.C, 2}, x.options());
  float* out = result.data_ptr<float>();
  const int64_t HW = k.H * k.W;
  at::parallel_for(0, k.C, 1, [&](int64_t first, int64_t last) {
    std::vector<float> plane(HW);
    float* z = plane.data();
    for (int64_t c = first; c < last; ++c)
      for (int64_t n = 0; n < k.N; ++n) {
        convolve(k, n, c, z);
        moments(z, HW, out[(n * k.C + c) * 2], out[(n * k.C + c) * 2 + 1]);
      }
  });
  return result;
}

torch::Tensor block_forward(torch::Tensor x, torch::Tensor weight, torch::Tensor bias, torch::Tensor A,
                            torch::Tensor B, torch::Tensor ge, torch::Tensor be, int64_t act, double slope,
                            int64_t pool) {
  const Block k = make_block(x, weight, bias, A, B, ge, be, slope);
  const int64_t HW = k.H * k.W, Ho = pooled(k.H, pool), Wo = pooled(k.W, pool);
  auto result = torch::empty({k.N, k.C, Ho, Wo}, x.options());
  float* out = result.data_ptr<float>();
  dispatch(act, pool, k.ge != nullptr, [&](auto a, auto p, auto layer) {
    at::parallel_for(0, k.C, 1, [&](int64_t first, int64_t last) {
      std::vector<float> planes(2 * HW);
      float *z = planes.data(), *y = z + HW;
      for (int64_t c = first; c < last; ++c)
        for (int64_t n = 0; n < k.N; ++n) {
          convolve(k, n, c, z);
          normalise<decltype(layer)::value>(k, n, c, z, y);
          activate_and_pool<decltype(a)::value, decltype(p)::value>(k, y, out + (n * k.C + c) * Ho * Wo);
        }
    });
  });
  return result;
}

// For the normalisation's backward: per plane, the sums of dy' and of dy' * xhat, where dy' is dy (times ge
// for a layer norm) and xhat = xa z + xb the plane standardised; for a layer norm also ge's and be's
// gradients, summed over the images.
std::vector<torch::Tensor> block_backward_sums(torch::Tensor grad, torch::Tensor x, torch::Tensor weight,
                                               torch::Tensor bias, torch::Tensor A, torch::Tensor B,
                                               torch::Tensor ge, torch::Tensor be, torch::Tensor xa,
                                               torch::Tensor xb, int64_t act, double slope, int64_t pool) {
  const Block k = make_block(x, weight, bias, A, B, ge, be, slope);
  TORCH_CHECK(grad.is_contiguous(), "first block: contiguous gradient expected");
  const int64_t HW = k.H * k.W, Ho = pooled(k.H, pool), Wo = pooled(k.W, pool);
  auto sums = torch::empty({k.N, k.C, 2}, x.options());
  auto dge = torch::zeros_like(ge), dbe = torch::zeros_like(be);
  const float *g = grad.data_ptr<float>(), *pa = xa.data_ptr<float>(), *pb = xb.data_ptr<float>();
  float* s = sums.data_ptr<float>();
  float* dg = dge.numel() ? dge.data_ptr<float>() : nullptr;
  float* db = dbe.numel() ? dbe.data_ptr<float>() : nullptr;
  dispatch(act, pool, k.ge != nullptr, [&](auto a, auto p, auto layer) {
    at::parallel_for(0, k.C, 1, [&](int64_t first, int64_t last) {
      std::vector<float> planes(3 * HW);
      float *z = planes.data(), *y = z + HW, *dy = y + HW;
      for (int64_t c = first; c < last; ++c)
        for (int64_t n = 0; n < k.N; ++n) {
          convolve(k, n, c, z);
          normalise<decltype(layer)::value>(k, n, c, z, y);
          backprop_activation<decltype(a)::value, decltype(p)::value>(k, g + (n * k.C + c) * Ho * Wo, y, dy);
          const float xa_ = pa[n * k.C + c], xb_ = pb[n * k.C + c];
          float sum = 0.0f, dot = 0.0f;
          if constexpr (decltype(layer)::value) {
            const float* __restrict__ gamma = k.ge + c * HW;
            float* __restrict__ dgamma = dg + c * HW;
            float* __restrict__ dbeta = db + c * HW;
#pragma omp simd reduction(+ : sum, dot)
            for (int64_t i = 0; i < HW; ++i) {
              const float xhat = xa_ * z[i] + xb_;
              dgamma[i] += dy[i] * xhat;
              dbeta[i] += dy[i];
              sum += dy[i] * gamma[i];
              dot += dy[i] * gamma[i] * xhat;
            }
          } else {
#pragma omp simd reduction(+ : sum, dot)
            for (int64_t i = 0; i < HW; ++i) {
              sum += dy[i];
              dot += dy[i] * (xa_ * z[i] + xb_);
            }
          }
          s[(n * k.C + c) * 2] = sum;
          s[(n * k.C + c) * 2 + 1] = dot;
        }
    });
  });
  return {sums, dge, dbe};
}

// The convolution's weight and bias gradients, where the gradient of plane z is dz = Ad dy' + Bd z + Cd
// (per-plane coefficients: the normalisation's backward folded into three numbers).
std::vector<torch::Tensor> block_backward_conv(torch::Tensor grad, torch::Tensor x, torch::Tensor weight,
                                               torch::Tensor bias, torch::Tensor A, torch::Tensor B,
                                               torch::Tensor ge, torch::Tensor be, torch::Tensor Ad,
                                               torch::Tensor Bd, torch::Tensor Cd, int64_t act, double slope,
                                               int64_t pool) {
  const Block k = make_block(x, weight, bias, A, B, ge, be, slope);
  TORCH_CHECK(grad.is_contiguous(), "first block: contiguous gradient expected");
  const int64_t H = k.H, W = k.W, HW = H * W, Ho = pooled(H, pool), Wo = pooled(W, pool);
  auto dweight = torch::empty_like(weight);
  auto dbias = torch::empty({k.C}, x.options());
  const float *g = grad.data_ptr<float>(), *pa = optional_data(Ad), *pb = optional_data(Bd),
              *pc = optional_data(Cd);
  float *dw = dweight.data_ptr<float>(), *dbias_ = dbias.data_ptr<float>();
  dispatch(act, pool, k.ge != nullptr, [&](auto a, auto p, auto layer) {
    at::parallel_for(0, k.C, 1, [&](int64_t first, int64_t last) {
      std::vector<float> planes(4 * HW + 9 * k.Cin * W);
      float *z = planes.data(), *y = z + HW, *dy = y + HW, *bias_lanes = dy + HW, *weight_lanes = bias_lanes + HW;
      for (int64_t c = first; c < last; ++c) {
        std::fill(bias_lanes, bias_lanes + HW + 9 * k.Cin * W, 0.0f);
        for (int64_t n = 0; n < k.N; ++n) {
          convolve(k, n, c, z);
          normalise<decltype(layer)::value>(k, n, c, z, y);
          backprop_activation<decltype(a)::value, decltype(p)::value>(k, g + (n * k.C + c) * Ho * Wo, y, dy);
          const float ad = pa ? pa[n * k.C + c] : 1.0f, bd = pb ? pb[n * k.C + c] : 0.0f,
                      cd = pc ? pc[n * k.C + c] : 0.0f;
          float* __restrict__ dz = y;  // y is no longer needed
          if constexpr (decltype(layer)::value) {
            const float* __restrict__ gamma = k.ge + c * HW;
#pragma omp simd
            for (int64_t i = 0; i < HW; ++i) dz[i] = ad * dy[i] * gamma[i] + bd * z[i] + cd;
          } else {
#pragma omp simd
            for (int64_t i = 0; i < HW; ++i) dz[i] = ad * dy[i] + bd * z[i] + cd;
          }
          accumulate_filter_gradient(k, n, dz, bias_lanes, weight_lanes);
        }
        reduce_filter_gradient(k, c, bias_lanes, weight_lanes, dw, dbias_);
      }
    });
  });
  return {dweight, dbias};
}

// Instance norm: each plane is its own statistics group, so the statistics are computed in the output pass
// and the norm's backward in the filter-gradient pass: one pass each way. Returns the output and each
// plane's (mean, 1/std).
std::vector<torch::Tensor> instance_forward(torch::Tensor x, torch::Tensor weight, torch::Tensor bias,
                                            torch::Tensor gamma, torch::Tensor beta, double eps, int64_t act,
                                            double slope, int64_t pool) {
  Block k = make_block(x, weight, bias, {}, {}, {}, {}, slope);
  const int64_t HW = k.H * k.W, Ho = pooled(k.H, pool), Wo = pooled(k.W, pool);
  auto result = torch::empty({k.N, k.C, Ho, Wo}, x.options());
  auto stats = torch::empty({k.N, k.C, 2}, x.options());
  float *out = result.data_ptr<float>(), *st = stats.data_ptr<float>();
  const float *ga = optional_data(gamma), *be = optional_data(beta);
  dispatch(act, pool, false, [&](auto a, auto p, auto) {
    at::parallel_for(0, k.C, 1, [&](int64_t first, int64_t last) {
      std::vector<float> planes(2 * HW);
      float *z = planes.data(), *y = z + HW;
      for (int64_t c = first; c < last; ++c)
        for (int64_t n = 0; n < k.N; ++n) {
          convolve(k, n, c, z);
          float mean, rstd;
          instance_normalise(z, HW, eps, ga ? ga[c] : 1.0f, be ? be[c] : 0.0f, y, mean, rstd);
          activate_and_pool<decltype(a)::value, decltype(p)::value>(k, y, out + (n * k.C + c) * Ho * Wo);
          st[(n * k.C + c) * 2] = mean;
          st[(n * k.C + c) * 2 + 1] = rstd;
        }
    });
  });
  return {result, stats};
}

// Gradients of the filter, its bias and the norm's gamma and beta (each defined where its tensor is).
std::vector<torch::Tensor> instance_backward(torch::Tensor grad, torch::Tensor x, torch::Tensor weight,
                                             torch::Tensor bias, torch::Tensor gamma, torch::Tensor beta,
                                             torch::Tensor stats, int64_t act, double slope, int64_t pool) {
  const Block k = make_block(x, weight, bias, {}, {}, {}, {}, slope);
  TORCH_CHECK(grad.is_contiguous(), "first block: contiguous gradient expected");
  const int64_t H = k.H, W = k.W, HW = H * W, Ho = pooled(H, pool), Wo = pooled(W, pool);
  auto dweight = torch::empty_like(weight);
  auto dbias = torch::empty({k.C}, x.options());
  auto dgamma = torch::empty({k.C}, x.options()), dbeta = torch::empty({k.C}, x.options());
  const float *g = grad.data_ptr<float>(), *st = stats.data_ptr<float>(), *ga = optional_data(gamma),
              *be = optional_data(beta);
  float *dw = dweight.data_ptr<float>(), *db = dbias.data_ptr<float>(), *dga = dgamma.data_ptr<float>(),
        *dbe = dbeta.data_ptr<float>();
  dispatch(act, pool, false, [&](auto a, auto p, auto) {
    at::parallel_for(0, k.C, 1, [&](int64_t first, int64_t last) {
      std::vector<float> planes(4 * HW + 9 * k.Cin * W);
      float *z = planes.data(), *y = z + HW, *dy = y + HW, *bias_lanes = dy + HW, *weight_lanes = bias_lanes + HW;
      for (int64_t c = first; c < last; ++c) {
        std::fill(bias_lanes, bias_lanes + HW + 9 * k.Cin * W, 0.0f);
        const float gain = ga ? ga[c] : 1.0f, offset = be ? be[c] : 0.0f;
        float gamma_sum = 0.0f, beta_sum = 0.0f;
        for (int64_t n = 0; n < k.N; ++n) {
          convolve(k, n, c, z);
          const float mean = st[(n * k.C + c) * 2], rstd = st[(n * k.C + c) * 2 + 1];
          const float scale = gain * rstd, shift = offset - scale * mean;
#pragma omp simd
          for (int64_t i = 0; i < HW; ++i) y[i] = scale * z[i] + shift;
          backprop_activation<decltype(a)::value, decltype(p)::value>(k, g + (n * k.C + c) * Ho * Wo, y, dy);
          float* __restrict__ dz = y;  // y is no longer needed
          float sum, dot;
          instance_backprop(z, dy, HW, gain, mean, rstd, dz, sum, dot);
          gamma_sum += dot;
          beta_sum += sum;
          accumulate_filter_gradient(k, n, dz, bias_lanes, weight_lanes);
        }
        reduce_filter_gradient(k, c, bias_lanes, weight_lanes, dw, db);
        dga[c] = gamma_sum;
        dbe[c] = beta_sum;
      }
    });
  });
  return {dweight, dbias, dgamma, dbeta};
}

// The same instance norm, activation and pooling after a convolution computed elsewhere (the later blocks,
// whose convolutions are too costly to recompute): z is that convolution's output [N, C, H, W]. One pass each
// way instead of ATen's separate norm, activation and pooling passes and their backward passes.
std::vector<torch::Tensor> instance_tail_forward(torch::Tensor z, torch::Tensor gamma, torch::Tensor beta, double eps,
                                                 int64_t act, double slope, int64_t pool) {
  TORCH_CHECK(z.is_contiguous() && z.scalar_type() == torch::kFloat32, "instance tail: contiguous fp32 input");
  const int64_t N = z.size(0), C = z.size(1), H = z.size(2), W = z.size(3), HW = H * W;
  const Block k{N, 0, C, H, W, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, static_cast<float>(slope)};
  const int64_t Ho = pooled(H, pool), Wo = pooled(W, pool);
  auto result = torch::empty({N, C, Ho, Wo}, z.options());
  auto stats = torch::empty({N, C, 2}, z.options());
  float *out = result.data_ptr<float>(), *st = stats.data_ptr<float>();
  const float *in = z.data_ptr<float>(), *ga = optional_data(gamma), *be = optional_data(beta);
  dispatch(act, pool, false, [&](auto a, auto p, auto) {
    at::parallel_for(0, C, 1, [&](int64_t first, int64_t last) {
      std::vector<float> plane(HW);
      float* y = plane.data();
      for (int64_t c = first; c < last; ++c)
        for (int64_t n = 0; n < N; ++n) {
          float mean, rstd;
          instance_normalise(in + (n * C + c) * HW, HW, eps, ga ? ga[c] : 1.0f, be ? be[c] : 0.0f, y, mean, rstd);
          activate_and_pool<decltype(a)::value, decltype(p)::value>(k, y, out + (n * C + c) * Ho * Wo);
          st[(n * C + c) * 2] = mean;
          st[(n * C + c) * 2 + 1] = rstd;
        }
    });
  });
  return {result, stats};
}

// Gradients of z, gamma and beta.
std::vector<torch::Tensor> instance_tail_backward(torch::Tensor grad, torch::Tensor z, torch::Tensor gamma,
                                                  torch::Tensor beta, torch::Tensor stats, int64_t act, double slope,
                                                  int64_t pool) {
  TORCH_CHECK(grad.is_contiguous() && z.is_contiguous(), "instance tail: contiguous tensors expected");
  const int64_t N = z.size(0), C = z.size(1), H = z.size(2), W = z.size(3), HW = H * W;
  const Block k{N, 0, C, H, W, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, static_cast<float>(slope)};
  const int64_t Ho = pooled(H, pool), Wo = pooled(W, pool);
  auto dz = torch::empty_like(z);
  auto dgamma = torch::empty({C}, z.options()), dbeta = torch::empty({C}, z.options());
  const float *g = grad.data_ptr<float>(), *in = z.data_ptr<float>(), *st = stats.data_ptr<float>(),
              *ga = optional_data(gamma), *be = optional_data(beta);
  float *dzp = dz.data_ptr<float>(), *dga = dgamma.data_ptr<float>(), *dbe = dbeta.data_ptr<float>();
  dispatch(act, pool, false, [&](auto a, auto p, auto) {
    at::parallel_for(0, C, 1, [&](int64_t first, int64_t last) {
      std::vector<float> planes(2 * HW);
      float *y = planes.data(), *dy = y + HW;
      for (int64_t c = first; c < last; ++c) {
        const float gain = ga ? ga[c] : 1.0f, offset = be ? be[c] : 0.0f;
        float gamma_sum = 0.0f, beta_sum = 0.0f;
        for (int64_t n = 0; n < N; ++n) {
          const float* __restrict__ zp = in + (n * C + c) * HW;
          const float mean = st[(n * C + c) * 2], rstd = st[(n * C + c) * 2 + 1];
          const float scale = gain * rstd, shift = offset - scale * mean;
#pragma omp simd
          for (int64_t i = 0; i < HW; ++i) y[i] = scale * zp[i] + shift;
          backprop_activation<decltype(a)::value, decltype(p)::value>(k, g + (n * C + c) * Ho * Wo, y, dy);
          float sum, dot;
          instance_backprop(zp, dy, HW, gain, mean, rstd, dzp + (n * C + c) * HW, sum, dot);
          gamma_sum += dot;
          beta_sum += sum;
        }
        dga[c] = gamma_sum;
        dbe[c] = beta_sum;
      }
    });
  });
  return {dz, dgamma, dbeta};
}
