// The native CPU sequence path of jaxrnn: the time loop of the LSTM, the GRU (reset_after=True) and the simple RNN,
// forward and backward, as XLA FFI handlers (jax.ffi).
//
// Only the sequential part runs here. The input projection u = x W_i + b before the loop, and after the backward loop
// the weight and input gradients (h_{t-1}^T dz summed over steps, dz W_i^T, ...) are large matrix products that
// XLA runs (jaxrnn/native/sequence.py). Per step: one [B, H] x [H, G H] product (single-threaded sgemm from the
// BLAS numpy ships, OpenBLAS, handed over at load time by jaxrnn_native_set_blas) and the gate arithmetic.
//
// Threads: the hidden units are split into chunks; a chunk's product and its gate arithmetic are one work item, and
// the items of step t start only when every item of step t - 1 is done. The items are claimed from a shared counter
// by the calling thread and by helpers scheduled on XLA's own intra-op thread pool (the FFI ThreadPool), so the
// process never runs more threads than XLA has: no oversubscription. A helper that starts late (or never) costs
// nothing: the calling thread can finish every item alone.
//
// Masks (seq_lengths): where mask[t, b] == 0 the carry is kept and the output is zero; backward passes the carry's
// cotangent through and the step's gate cotangent is zero.

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <algorithm>
#include <memory>
#include <sched.h>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// ----------------------------------------------------------------------------------------------- BLAS (from numpy)
using sgemm64_t = void (*)(int, int, int, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                           int64_t, float, float*, int64_t);
using sgemm32_t = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*,
                           int);
using sgemv64_t = void (*)(int, int, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t, float,
                           float*, int64_t);
using sgemv32_t = void (*)(int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
using set_threads_t = int (*)(int);

sgemm64_t g_sgemm64 = nullptr;
sgemm32_t g_sgemm32 = nullptr;
sgemv64_t g_sgemv64 = nullptr;
sgemv32_t g_sgemv32 = nullptr;
set_threads_t g_set_threads_local = nullptr;

constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;

// Rows below which a product runs as one matrix-vector product per row: sgemm copies (packs) its B operand on every
// call, which for a step of one example costs more than the product itself (B=1 T=1024 H=128 LSTM: 3x the time).
constexpr int64_t kGemvRows = 4;

// C[M, N] = op(A) op(B) + beta C, row-major.
inline void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (!trans_a && M < kGemvRows && (g_sgemv64 || g_sgemv32)) {
    // Row m of C: op(B)^T applied to row m of A. B is [K, N] (no trans: y = B^T a) or [N, K] (trans: y = B a).
    const int tb = trans_b ? kNoTrans : kTrans;
    const int64_t rows = trans_b ? N : K, cols = trans_b ? K : N;
    for (int64_t m = 0; m < M; ++m) {
      if (g_sgemv64) {
        g_sgemv64(kRowMajor, tb, rows, cols, 1.0f, B, ldb, A + m * lda, 1, beta, C + m * ldc, 1);
      } else {
        g_sgemv32(kRowMajor, tb, (int)rows, (int)cols, 1.0f, B, (int)ldb, A + m * lda, 1, beta, C + m * ldc, 1);
      }
    }
    return;
  }
  const int ta = trans_a ? kTrans : kNoTrans, tb = trans_b ? kTrans : kNoTrans;
  if (g_sgemm64) {
    g_sgemm64(kRowMajor, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
  } else {
    g_sgemm32(kRowMajor, ta, tb, (int)M, (int)N, (int)K, 1.0f, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
  }
}

// ----------------------------------------------------------------------------------------------- work sharing
// Items 0 .. steps * chunks - 1, in order; item (s, k) may start once every item of steps < s is done.
// A helper holds the job (shared_ptr) but touches the caller's buffers only inside an item; the caller returns
// once every item is done, without waiting for helpers that have not started: with every pool thread busy (two
// native loops side by side, as in a bidirectional layer, on a 2-thread pool) they may start only after it
// returns, find nothing left to claim and exit.
struct Job {
  int64_t steps = 0, chunks = 0;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
  std::function<void(int64_t, int64_t)> work;
};

inline void wait_until(const std::atomic<int64_t>& counter, int64_t target) {
  int spins = 0;
  while (counter.load(std::memory_order_acquire) < target) {
    if (++spins < 4000) {
      __builtin_ia32_pause();
    } else {
      sched_yield();  // the partner may be descheduled on a loaded machine
    }
  }
}

void participate(Job& job) {
  int old_threads = g_set_threads_local ? g_set_threads_local(1) : 1;  // one BLAS thread per worker
  const int64_t total = job.steps * job.chunks;
  for (;;) {
    int64_t item = job.next.fetch_add(1, std::memory_order_relaxed);
    if (item >= total) break;
    int64_t s = item / job.chunks, k = item % job.chunks;
    wait_until(job.done, s * job.chunks);
    job.work(s, k);
    job.done.fetch_add(1, std::memory_order_release);
  }
  if (g_set_threads_local) g_set_threads_local(old_threads);
}

// Runs job.work over every item with the caller and up to threads - 1 helpers from XLA's pool.
void run_job(ffi::ThreadPool& pool, std::shared_ptr<Job> job, int64_t threads) {
  for (int64_t i = 1; i < std::min(threads, job->chunks); ++i) {
    pool.Schedule([job]() { participate(*job); });
  }
  participate(*job);
  wait_until(job->done, job->steps * job->chunks);
}

struct Chunks {
  std::vector<int64_t> start;  // chunk k covers hidden units [start[k], start[k + 1])
};

// Chunks of at least 32 units (whole multiples of 8) and 2^16 multiply-adds of the step's product (below that a
// step is a few microseconds, as short as handing work to another core), at most one per thread.
Chunks split(int64_t H, int64_t threads, int64_t step_macs) {
  int64_t n = std::max<int64_t>(1, std::min<int64_t>({threads, H / 32, step_macs >> 16}));
  Chunks c;
  int64_t per = ((H + n - 1) / n + 7) / 8 * 8;
  for (int64_t j = 0; j < H; j += per) c.start.push_back(j);
  c.start.push_back(H);
  return c;
}

// XLA's intra-op pool size, capped by JAXRNN_NATIVE_THREADS if set (read once).
int64_t pool_threads(ffi::ThreadPool& pool) {
  static const int64_t cap = [] {
    const char* v = std::getenv("JAXRNN_NATIVE_THREADS");
    return v ? std::max<int64_t>(1, std::atoll(v)) : int64_t{1} << 30;
  }();
  int64_t n = pool.num_threads();
  return std::min(cap, n > 0 ? n : int64_t{1});
}

enum Kind : int64_t { kLSTM = 0, kGRU = 1, kRNN = 2 };

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

int64_t gates_of(int64_t kind) { return kind == kLSTM ? 4 : kind == kGRU ? 3 : 1; }

// ----------------------------------------------------------------------------------------------- forward
// u: [T, B, G H] (input projection with bias), w_h: [H, G H], b_hn: [H] (GRU) or [0], h0, c0: [B, H] (c0: LSTM; else
// [B, 0]... any size), mask: [T, B] int32.
// Results: hs [T, B, H]; h_last, c_last [B, H] (c_last: LSTM, else any size); with train: h_all, c_all [T, B, H]
// (the carries after each step; c_all: LSTM) and gates [T, B, W] (LSTM: i f g o; GRU: r z n hn; RNN: none).
ffi::Error Forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> u, ffi::Buffer<ffi::F32> w_h,
                   ffi::Buffer<ffi::F32> b_hn, ffi::Buffer<ffi::F32> h0, ffi::Buffer<ffi::F32> c0,
                   ffi::Buffer<ffi::S32> mask, ffi::ResultBuffer<ffi::F32> hs, ffi::ResultBuffer<ffi::F32> h_last,
                   ffi::ResultBuffer<ffi::F32> c_last, ffi::ResultBuffer<ffi::F32> h_all,
                   ffi::ResultBuffer<ffi::F32> c_all, ffi::ResultBuffer<ffi::F32> gates, int64_t kind, int64_t relu,
                   int64_t train) {
  if (!g_sgemm64 && !g_sgemm32) return ffi::Error::Internal("jaxrnn native: no BLAS set");
  auto ud = u.dimensions();
  if (ud.size() != 3) return ffi::Error::InvalidArgument("jaxrnn native: u must be [T, B, G*H]");
  const int64_t T = ud[0], B = ud[1], G = gates_of(kind), GH = ud[2], H = GH / G;
  if (H * G != GH || w_h.dimensions()[0] != H || w_h.dimensions()[1] != GH) {
    return ffi::Error::InvalidArgument("jaxrnn native: w_h must be [H, G*H]");
  }
  const bool lstm = kind == kLSTM, gru = kind == kGRU;
  const float* U = u.typed_data();
  const float* W = w_h.typed_data();
  const float* BN = b_hn.typed_data();
  const int32_t* M = mask.typed_data();
  float* HS = hs->typed_data();
  // Carries: all steps when training (the backward pass reads them), else two alternating slots.
  std::vector<float> slots_h, slots_c;
  float* HA = nullptr;
  float* CA = nullptr;
  if (train) {
    HA = h_all->typed_data();
    CA = lstm ? c_all->typed_data() : nullptr;
  } else {
    slots_h.resize(2 * B * H);
    if (lstm) slots_c.resize(2 * B * H);
  }
  auto h_at = [&](int64_t t) -> float* { return train ? HA + t * B * H : slots_h.data() + (t & 1) * B * H; };
  auto c_at = [&](int64_t t) -> float* { return train ? CA + t * B * H : slots_c.data() + (t & 1) * B * H; };
  float* GW = train && (lstm || gru) ? gates->typed_data() : nullptr;
  const int64_t GWW = lstm ? 4 * H : 4 * H;  // width of a gates row (LSTM: 4 gates; GRU: r z n hn)

  const int64_t threads = pool_threads(pool);
  Chunks ch = split(H, threads, B * H * GH);
  const int64_t nk = (int64_t)ch.start.size() - 1;
  // Recurrent kernel packed per chunk: chunk k's columns g*H + j (j in the chunk), gate-major, [H, G*jc] contiguous.
  std::vector<float> packed(H * GH);
  std::vector<int64_t> offset(nk);
  {
    int64_t off = 0;
    for (int64_t k = 0; k < nk; ++k) {
      const int64_t j0 = ch.start[k], jc = ch.start[k + 1] - j0;
      offset[k] = off;
      for (int64_t r = 0; r < H; ++r) {
        for (int64_t g = 0; g < G; ++g) {
          std::memcpy(&packed[off + r * G * jc + g * jc], W + r * GH + g * H + j0, jc * sizeof(float));
        }
      }
      off += H * G * jc;
    }
  }
  std::vector<float> scratch(B * GH);  // chunk k's products at scratch + B * G * start[k]

  auto job = std::make_shared<Job>();
  job->steps = T;
  job->chunks = nk;
  job->work = [&](int64_t t, int64_t k) {
    const int64_t j0 = ch.start[k], j1 = ch.start[k + 1], jc = j1 - j0;
    const float* hp = t == 0 ? h0.typed_data() : h_at(t - 1);
    const float* cp = lstm ? (t == 0 ? c0.typed_data() : c_at(t - 1)) : nullptr;
    float* s = scratch.data() + B * G * j0;
    sgemm(false, false, B, G * jc, H, hp, H, packed.data() + offset[k], G * jc, 0.0f, s, G * jc);
    float* hn = h_at(t);
    float* cn = lstm ? c_at(t) : nullptr;
    for (int64_t b = 0; b < B; ++b) {
      const float* ub = U + (t * B + b) * GH;
      const float* sb = s + b * G * jc;
      const float* hpb = hp + b * H;
      float* hnb = hn + b * H;
      float* hsb = HS + (t * B + b) * H;
      if (!M[t * B + b]) {  // padding: keep the carry, output zero
        for (int64_t j = j0; j < j1; ++j) {
          hnb[j] = hpb[j];
          hsb[j] = 0.0f;
        }
        if (lstm) {
          for (int64_t j = j0; j < j1; ++j) cn[b * H + j] = cp[b * H + j];
        }
        if (GW) {
          for (int64_t g = 0; g < 4; ++g) std::memset(GW + (t * B + b) * GWW + g * H + j0, 0, jc * sizeof(float));
        }
        continue;
      }
      if (lstm) {
        const float* cpb = cp + b * H;
        float* cnb = cn + b * H;
        float* gw = GW ? GW + (t * B + b) * GWW : nullptr;
#pragma GCC ivdep
        for (int64_t jj = 0; jj < jc; ++jj) {
          const int64_t j = j0 + jj;
          float i = sigmoid(ub[j] + sb[jj]);
          float f = sigmoid(ub[H + j] + sb[jc + jj]);
          float g = std::tanh(ub[2 * H + j] + sb[2 * jc + jj]);
          float o = sigmoid(ub[3 * H + j] + sb[3 * jc + jj]);
          float c = f * cpb[j] + i * g;
          float h = o * std::tanh(c);
          cnb[j] = c;
          hnb[j] = h;
          hsb[j] = h;
          if (gw) {
            gw[j] = i;
            gw[H + j] = f;
            gw[2 * H + j] = g;
            gw[3 * H + j] = o;
          }
        }
      } else if (gru) {
        float* gw = GW ? GW + (t * B + b) * GWW : nullptr;
#pragma GCC ivdep
        for (int64_t jj = 0; jj < jc; ++jj) {
          const int64_t j = j0 + jj;
          float r = sigmoid(ub[j] + sb[jj]);
          float z = sigmoid(ub[H + j] + sb[jc + jj]);
          float hw_n = sb[2 * jc + jj] + BN[j];
          float n = std::tanh(ub[2 * H + j] + r * hw_n);
          float h = (1.0f - z) * n + z * hpb[j];
          hnb[j] = h;
          hsb[j] = h;
          if (gw) {
            gw[j] = r;
            gw[H + j] = z;
            gw[2 * H + j] = n;
            gw[3 * H + j] = hw_n;
          }
        }
      } else {
#pragma GCC ivdep
        for (int64_t jj = 0; jj < jc; ++jj) {
          const int64_t j = j0 + jj;
          float z = ub[j] + sb[jj];
          float h = relu ? (z > 0.0f ? z : 0.0f) : std::tanh(z);
          hnb[j] = h;
          hsb[j] = h;
        }
      }
    }
  };
  if (T > 0) run_job(pool, job, threads);
  const float* hl = T > 0 ? h_at(T - 1) : h0.typed_data();
  std::memcpy(h_last->typed_data(), hl, B * H * sizeof(float));
  if (lstm) std::memcpy(c_last->typed_data(), T > 0 ? c_at(T - 1) : c0.typed_data(), B * H * sizeof(float));
  return ffi::Error::Success();
}

// ----------------------------------------------------------------------------------------------- backward
// Inputs: w_h [H, G H]; h0, c0 [B, H]; h_all, c_all [T, B, H]; gates [T, B, 4H] (LSTM, GRU); mask [T, B];
// dhs [T, B, H]; dh_last, dc_last [B, H].
// Results: dz [T, B, G H] (cotangent of u); dzr [T, B, G H] (GRU: cotangent of h_{t-1} W_h + [0, 0, b_hn]; else
// size 0: it equals dz); dh0, dc0 [B, H]; dw [H, G H] = sum_t h_{t-1}^T dzr_t (the recurrent kernel's cotangent: one
// product with a transposed operand, which OpenBLAS runs faster than XLA:CPU does).
ffi::Error Backward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> w_h, ffi::Buffer<ffi::F32> h0,
                    ffi::Buffer<ffi::F32> c0, ffi::Buffer<ffi::F32> h_all, ffi::Buffer<ffi::F32> c_all,
                    ffi::Buffer<ffi::F32> gates, ffi::Buffer<ffi::S32> mask, ffi::Buffer<ffi::F32> dhs,
                    ffi::Buffer<ffi::F32> dh_last, ffi::Buffer<ffi::F32> dc_last, ffi::ResultBuffer<ffi::F32> dz,
                    ffi::ResultBuffer<ffi::F32> dzr, ffi::ResultBuffer<ffi::F32> dh0, ffi::ResultBuffer<ffi::F32> dc0,
                    ffi::ResultBuffer<ffi::F32> dw, int64_t kind, int64_t relu) {
  if (!g_sgemm64 && !g_sgemm32) return ffi::Error::Internal("jaxrnn native: no BLAS set");
  auto dd = dz->dimensions();
  const int64_t T = dd[0], B = dd[1], G = gates_of(kind), GH = dd[2], H = GH / G;
  const bool lstm = kind == kLSTM, gru = kind == kGRU;
  const float* W = w_h.typed_data();
  const float* HA = h_all.typed_data();
  const float* CA = c_all.typed_data();
  const float* GW = gates.typed_data();
  const int32_t* M = mask.typed_data();
  const float* DHS = dhs.typed_data();
  float* DZ = dz->typed_data();
  float* DZR = gru ? dzr->typed_data() : DZ;
  // Carry cotangents, two alternating slots: slot s & 1 holds the cotangent of the carry after step T - 1 - s.
  std::vector<float> dh_slot(2 * B * H), dc_slot(lstm ? 2 * B * H : 0);
  std::memcpy(dh_slot.data(), dh_last.typed_data(), B * H * sizeof(float));
  if (lstm) std::memcpy(dc_slot.data(), dc_last.typed_data(), B * H * sizeof(float));

  const int64_t threads = pool_threads(pool);
  Chunks ch = split(H, threads, B * H * GH);
  const int64_t nk = (int64_t)ch.start.size() - 1;

  auto job = std::make_shared<Job>();
  // Step s < T handles time T - 1 - s; step T adds the last product (into dh0); step T + 1 computes dw, chunk k
  // its columns [k GH / nk, (k + 1) GH / nk).
  job->steps = T + 2;
  job->chunks = nk;
  job->work = [&](int64_t s, int64_t k) {
    if (s == T + 1) {
      const int64_t n0 = k * GH / nk, n1 = (k + 1) * GH / nk;
      float* DW = dw->typed_data() + n0;
      sgemm(true, false, H, n1 - n0, B, h0.typed_data(), H, DZR + n0, GH, 0.0f, DW, GH);
      if (T > 1) sgemm(true, false, H, n1 - n0, (T - 1) * B, HA, H, DZR + B * GH + n0, GH, 1.0f, DW, GH);
      return;
    }
    const int64_t j0 = ch.start[k], j1 = ch.start[k + 1], jc = j1 - j0;
    float* dh_in = dh_slot.data() + (s & 1) * B * H;
    float* dc_in = lstm ? dc_slot.data() + (s & 1) * B * H : nullptr;
    if (s > 0) {  // complete dh_in: the recurrent product's share, dzr_{t+1} W_h^T on this chunk's units
      const float* dzr_next = DZR + (T - s) * B * GH;
      sgemm(false, true, B, jc, GH, dzr_next, GH, W + j0 * GH, GH, 1.0f, dh_in + j0, H);
    }
    if (s == T) {
      for (int64_t b = 0; b < B; ++b) {
        std::memcpy(dh0->typed_data() + b * H + j0, dh_in + b * H + j0, jc * sizeof(float));
        if (lstm) std::memcpy(dc0->typed_data() + b * H + j0, dc_in + b * H + j0, jc * sizeof(float));
      }
      return;
    }
    const int64_t t = T - 1 - s;
    float* dh_out = dh_slot.data() + ((s + 1) & 1) * B * H;
    float* dc_out = lstm ? dc_slot.data() + ((s + 1) & 1) * B * H : nullptr;
    const float* hp = t == 0 ? h0.typed_data() : HA + (t - 1) * B * H;
    const float* cp = lstm ? (t == 0 ? c0.typed_data() : CA + (t - 1) * B * H) : nullptr;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t row = t * B + b;
      float* dzb = DZ + row * GH;
      float* dzrb = DZR + row * GH;
      const float* dhb = dh_in + b * H;
      float* dhob = dh_out + b * H;
      if (!M[row]) {  // padding: the carry's cotangent passes through
        for (int64_t g = 0; g < G; ++g) {
          std::memset(dzb + g * H + j0, 0, jc * sizeof(float));
          if (gru) std::memset(dzrb + g * H + j0, 0, jc * sizeof(float));
        }
        std::memcpy(dhob + j0, dhb + j0, jc * sizeof(float));
        if (lstm) std::memcpy(dc_out + b * H + j0, dc_in + b * H + j0, jc * sizeof(float));
        continue;
      }
      const float* dys = DHS + row * H;
      if (lstm) {
        const float* gw = GW + row * 4 * H;
        const float* cb = CA + row * H;
        const float* cpb = cp + b * H;
        const float* dcb = dc_in + b * H;
        float* dcob = dc_out + b * H;
#pragma GCC ivdep
        for (int64_t j = j0; j < j1; ++j) {
          float i = gw[j], f = gw[H + j], g = gw[2 * H + j], o = gw[3 * H + j];
          float tc = std::tanh(cb[j]);
          float dh = dhb[j] + dys[j];
          float dc = dcb[j] + dh * o * (1.0f - tc * tc);
          dzb[j] = dc * g * i * (1.0f - i);
          dzb[H + j] = dc * cpb[j] * f * (1.0f - f);
          dzb[2 * H + j] = dc * i * (1.0f - g * g);
          dzb[3 * H + j] = dh * tc * o * (1.0f - o);
          dcob[j] = dc * f;
          dhob[j] = 0.0f;
        }
      } else if (gru) {
        const float* gw = GW + row * 4 * H;
        const float* hpb = hp + b * H;
#pragma GCC ivdep
        for (int64_t j = j0; j < j1; ++j) {
          float r = gw[j], z = gw[H + j], n = gw[2 * H + j], hw_n = gw[3 * H + j];
          float dh = dhb[j] + dys[j];
          float dn = dh * (1.0f - z) * (1.0f - n * n);
          float dr = dn * hw_n * r * (1.0f - r);
          float dzz = dh * (hpb[j] - n) * z * (1.0f - z);
          dzb[j] = dr;
          dzb[H + j] = dzz;
          dzb[2 * H + j] = dn;
          dzrb[j] = dr;
          dzrb[H + j] = dzz;
          dzrb[2 * H + j] = dn * r;
          dhob[j] = dh * z;
        }
      } else {
        const float* hb = HA + row * H;
#pragma GCC ivdep
        for (int64_t j = j0; j < j1; ++j) {
          float dh = dhb[j] + dys[j];
          float h = hb[j];
          dzb[j] = relu ? (h > 0.0f ? dh : 0.0f) : dh * (1.0f - h * h);
          dhob[j] = 0.0f;
        }
      }
    }
  };
  run_job(pool, job, threads);
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxrnnRnnForward, Forward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // u
                                  .Arg<ffi::Buffer<ffi::F32>>()  // w_h
                                  .Arg<ffi::Buffer<ffi::F32>>()  // b_hn
                                  .Arg<ffi::Buffer<ffi::F32>>()  // h0
                                  .Arg<ffi::Buffer<ffi::F32>>()  // c0
                                  .Arg<ffi::Buffer<ffi::S32>>()  // mask
                                  .Ret<ffi::Buffer<ffi::F32>>()  // hs
                                  .Ret<ffi::Buffer<ffi::F32>>()  // h_last
                                  .Ret<ffi::Buffer<ffi::F32>>()  // c_last
                                  .Ret<ffi::Buffer<ffi::F32>>()  // h_all
                                  .Ret<ffi::Buffer<ffi::F32>>()  // c_all
                                  .Ret<ffi::Buffer<ffi::F32>>()  // gates
                                  .Attr<int64_t>("kind")
                                  .Attr<int64_t>("relu")
                                  .Attr<int64_t>("train"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxrnnRnnBackward, Backward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // w_h
                                  .Arg<ffi::Buffer<ffi::F32>>()  // h0
                                  .Arg<ffi::Buffer<ffi::F32>>()  // c0
                                  .Arg<ffi::Buffer<ffi::F32>>()  // h_all
                                  .Arg<ffi::Buffer<ffi::F32>>()  // c_all
                                  .Arg<ffi::Buffer<ffi::F32>>()  // gates
                                  .Arg<ffi::Buffer<ffi::S32>>()  // mask
                                  .Arg<ffi::Buffer<ffi::F32>>()  // dhs
                                  .Arg<ffi::Buffer<ffi::F32>>()  // dh_last
                                  .Arg<ffi::Buffer<ffi::F32>>()  // dc_last
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dz
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dzr
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dh0
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dc0
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dw
                                  .Attr<int64_t>("kind")
                                  .Attr<int64_t>("relu"));

// Called once at load with the addresses of numpy's BLAS: an ILP64 (int64_t dims) or an LP64 cblas_sgemm and
// cblas_sgemv (or 0), and openblas_set_num_threads_local (or 0).
extern "C" int jaxrnn_native_set_blas(void* sgemm, void* sgemv, int ilp64, void* set_threads_local) {
  if (ilp64) {
    g_sgemm64 = reinterpret_cast<sgemm64_t>(sgemm);
    g_sgemv64 = reinterpret_cast<sgemv64_t>(sgemv);
  } else {
    g_sgemm32 = reinterpret_cast<sgemm32_t>(sgemm);
    g_sgemv32 = reinterpret_cast<sgemv32_t>(sgemv);
  }
  g_set_threads_local = reinterpret_cast<set_threads_t>(set_threads_local);
  return 0;
}
