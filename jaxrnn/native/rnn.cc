// The native CPU sequence path of jaxrnn: the time loop of the LSTM, the GRU (reset_after=True, and False: kGRUB),
// the simple RNN and the LSTM with a projection (kLSTMP), forward and backward, as XLA FFI handlers (jax.ffi). kGRUB
// and kLSTMP have a second product a step that needs the first's results for every unit (r h_prev W_hn; the
// projection m W_r), so two work items a step (below).
//
// Forward, per step: the products x_t W_i + b and h_{t-1} W_h ([B, F] x [F, G H] and [B, H] x [H, G H]) and the
// gate arithmetic. Backward, per step: the gate derivatives dz_t and dz_t W_h^T; after the loop, the kernels' and
// inputs' gradients (see the next sentences but one). The step's products are
// this file's own register-blocked kernel (6 rows x 16 columns of accumulators with AVX2 + FMA, 6 x 32 with AVX-512,
// as compiled for the machine: -march=native)
// over copies of W_i and W_h packed once per call into 16-column panels: a BLAS sgemm packs its operand again on
// every call, which at B=32..64 cost more than the product (LSTM B=64 H=128: the sgemm loop was 3x the pure-JAX
// path's CPU time). The gradients after the backward loop, sum_t h_{t-1}^T dz_t, x^T dz and dz W_i^T, are three
// large products: the sgemm of the BLAS numpy ships (OpenBLAS), handed over at load time by jaxrnn_native_set_blas.
//
// Threads: the batch's rows (Split: where each thread gets rows enough) or the hidden units are split into chunks;
// a chunk's product and its gate arithmetic are one work item, and the items of step t start only when every item
// of step t - 1 is done (chunks of rows: of a segment of steps). Each chunk's items are claimed in order by
// its owner, the calling thread or one of the helpers scheduled on XLA's own intra-op thread pool (the FFI
// ThreadPool), so the process never runs more threads than XLA has: no oversubscription. A helper that starts late
// (or never) costs nothing: a waiting thread does the items nobody has claimed, the calling thread all of them if
// need be.
//
// Masks (seq_lengths): where mask[t, b] == 0 the carry is kept and the output is zero; backward passes the carry's
// cotangent through and the step's gate cotangent is zero.

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <algorithm>
#include <memory>
#include <new>
#include <sched.h>
#include <unistd.h>
#include <vector>

#if (defined(__AVX2__) && defined(__FMA__)) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// ----------------------------------------------------------------------------------------------- BLAS (from numpy)
using sgemm64_t = void (*)(int, int, int, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                           int64_t, float, float*, int64_t);
using sgemm32_t = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*,
                           int);
using set_threads_t = int (*)(int);

sgemm64_t g_sgemm64 = nullptr;
sgemm32_t g_sgemm32 = nullptr;
set_threads_t g_set_threads_local = nullptr;

constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;

// C[M, N] = op(A) op(B) + beta C, row-major.
inline void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const int ta = trans_a ? kTrans : kNoTrans, tb = trans_b ? kTrans : kNoTrans;
  if (g_sgemm64) {
    g_sgemm64(kRowMajor, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
  } else {
    g_sgemm32(kRowMajor, ta, tb, (int)M, (int)N, (int)K, 1.0f, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
  }
}

// ----------------------------------------------------------------------------------------------- step product
// The step's product C[m, n] = sum_k A[m, k] P[k, n] for the columns n of one chunk, with P packed once per call:
// panel p holds columns [16 p, 16 p + 16) as K rows of 16 contiguous floats (columns past the chunk's are zero).
// kMR rows a micro-tile (kMR2 in AVX-512's tiles over two panels: 16 zmm accumulators of the 32, where AVX2's 16
// ymm registers hold 12). Tiles of 8 rows leave no short tile in a block of 24 rows or of 8 (B=32: 24 + 8, where 6
// gave 6, 6, 6, 6 and 6, 2): LSTM W1 training (B=32 T=128 F=128 H=256) 53.2 / 51.5 / 49.0 / 49.1 -> 48.1 / 45.0 /
// 46.1 / 46.3 ms, GRU W1 by mins 37.5 / 37.6 / 38.4 -> 34.6 / 36.9 / 36.6 (alternating processes, 2 threads).
constexpr int64_t kMR = 6, kNR = 16, kMR2 = 8;
// Rows of A whose products are computed panel by panel before their gate arithmetic (row_block): a panel (K x 16
// floats) is read from cache once per block of rows, the rows' products (rows x chunk columns) stay in L2.
constexpr int64_t kRowBlock = 4 * kMR, kWideRowBlock = 22 * kMR;

inline int64_t round_up(int64_t n, int64_t to) { return (n + to - 1) / to * to; }

// An allocator of cache-line aligned arrays (for std::vector): buffers that several threads write parts of.
template <typename V>
struct AlignedAllocator {
  using value_type = V;
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  V* allocate(size_t n) { return static_cast<V*>(::operator new(n * sizeof(V), std::align_val_t{64})); }
  void deallocate(V* p, size_t) { ::operator delete(p, std::align_val_t{64}); }
  bool operator==(const AlignedAllocator&) const { return true; }
  bool operator!=(const AlignedAllocator&) const { return false; }
};

// Packs columns n in [0, N) of a K-row matrix (element (k, n) = at(k, n)) into panels at `out`
// (round_up(N, 16) / 16 panels of K x 16).
template <typename At>
void pack(int64_t K, int64_t N, At at, float* out) {
  for (int64_t p = 0; p < N; p += kNR) {
    float* panel = out + p * K;
    for (int64_t k = 0; k < K; ++k) {
      for (int64_t c = 0; c < kNR; ++c) panel[k * kNR + c] = p + c < N ? at(k, p + c) : 0.0f;
    }
  }
}

// pack() of columns of a row-major matrix: element (k, n) = src[k ld + column[n]]. A panel whose 16 columns are
// adjacent in src (inside one gate of a chunk) is copied row by row (the element-wise form took 1.6 ms of an LSTM W1
// training call, B=32 T=128 F=128 H=256, with an integer division per element; 0.7 ms this way).
void pack_columns(int64_t K, int64_t N, const float* src, int64_t ld, const std::vector<int64_t>& column, float* out) {
  for (int64_t p = 0; p < N; p += kNR) {
    if (p + kNR <= N && column[p + kNR - 1] - column[p] == kNR - 1) {
      for (int64_t k = 0; k < K; ++k) std::memcpy(out + p * K + k * kNR, src + k * ld + column[p], kNR * sizeof(float));
    } else {
      pack(K, std::min(kNR, N - p), [&](int64_t k, int64_t c) { return src[k * ld + column[p + c]]; }, out + p * K);
    }
  }
}

// The columns [first, first + n) (for pack_columns).
std::vector<int64_t> columns(int64_t first, int64_t n) {
  std::vector<int64_t> c(n);
  for (int64_t i = 0; i < n; ++i) c[i] = first + i;
  return c;
}

// The vector operations of the micro-kernels' two-vector tile (tile2), per instruction set.
#if defined(__AVX2__) && defined(__FMA__)
struct Avx2 {
  using V = __m256;
  static constexpr int64_t kWidth = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V set1(const float* a) { return _mm256_broadcast_ss(a); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
};
#endif
#if defined(__AVX512F__)
struct Avx512 {
  using V = __m512;
  static constexpr int64_t kWidth = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V set1(const float* a) { return _mm512_set1_ps(*a); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
};
#endif

// C[m, 0:W] (+)= sum_k A[m, k] Q0[k, 0:W] and C[m, W:2W] (+)= sum_k A[m, k] Q1[k, 0:W] for m < M, W the vector
// width of S (Avx2: the two halves of one 16-column panel, M <= kMR; Avx512: two panels, M <= kMR2); Q0's and Q1's
// rows are kNR floats apart. Per k two loads and M broadcasts feed 2 M FMAs into named accumulators (an array of
// them is kept on the stack by GCC, a store per FMA).
template <class S, int M, bool ACC>
inline void tile2(int64_t K, const float* A, int64_t lda, const float* Q0, const float* Q1, float* C, int64_t ldc) {
  using V = typename S::V;
  V a0 = S::zero(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0, a4 = a0, b4 = a0, a5 = a0, b5 = a0;
  V a6 = a0, b6 = a0, a7 = a0, b7 = a0;
  const float* A1 = A + lda;
  const float* A2 = A + 2 * lda;
  const float* A3 = A + 3 * lda;
  const float* A4 = A + 4 * lda;
  const float* A5 = A + 5 * lda;
  const float* A6 = A + 6 * lda;
  const float* A7 = A + 7 * lda;
  for (int64_t k = 0; k < K; ++k) {
    const V p0 = S::load(Q0 + k * kNR), p1 = S::load(Q1 + k * kNR);
    V x = S::set1(A + k);
    a0 = S::fmadd(x, p0, a0);
    b0 = S::fmadd(x, p1, b0);
    if (M > 1) {
      x = S::set1(A1 + k);
      a1 = S::fmadd(x, p0, a1);
      b1 = S::fmadd(x, p1, b1);
    }
    if (M > 2) {
      x = S::set1(A2 + k);
      a2 = S::fmadd(x, p0, a2);
      b2 = S::fmadd(x, p1, b2);
    }
    if (M > 3) {
      x = S::set1(A3 + k);
      a3 = S::fmadd(x, p0, a3);
      b3 = S::fmadd(x, p1, b3);
    }
    if (M > 4) {
      x = S::set1(A4 + k);
      a4 = S::fmadd(x, p0, a4);
      b4 = S::fmadd(x, p1, b4);
    }
    if (M > 5) {
      x = S::set1(A5 + k);
      a5 = S::fmadd(x, p0, a5);
      b5 = S::fmadd(x, p1, b5);
    }
    if (M > 6) {
      x = S::set1(A6 + k);
      a6 = S::fmadd(x, p0, a6);
      b6 = S::fmadd(x, p1, b6);
    }
    if (M > 7) {
      x = S::set1(A7 + k);
      a7 = S::fmadd(x, p0, a7);
      b7 = S::fmadd(x, p1, b7);
    }
  }
  auto put = [&](int m, V lo, V hi) {
    float* c = C + m * ldc;
    if (ACC) {
      lo = S::add(lo, S::load(c));
      hi = S::add(hi, S::load(c + S::kWidth));
    }
    S::store(c, lo);
    S::store(c + S::kWidth, hi);
  };
  put(0, a0, b0);
  if (M > 1) put(1, a1, b1);
  if (M > 2) put(2, a2, b2);
  if (M > 3) put(3, a3, b3);
  if (M > 4) put(4, a4, b4);
  if (M > 5) put(5, a5, b5);
  if (M > 6) put(6, a6, b6);
  if (M > 7) put(7, a7, b7);
}

// C[0:M, 0:16] (+)= A[0:M, 0:K] P[0:K, 0:16] (one panel); A row stride lda, C row stride ldc.
template <int M, bool ACC>
inline void micro(int64_t K, const float* A, int64_t lda, const float* P, float* C, int64_t ldc) {
#if defined(__AVX512F__)
  // One zmm holds a panel row: two sets of M accumulators over even and odd k (M <= 6 chains alone would wait on
  // the FMA latency). Used for a chunk's last panel when its panels are odd in number (product() pairs the rest).
  __m512 a0 = _mm512_setzero_ps(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0, a4 = a0, b4 = a0,
         a5 = a0, b5 = a0;
  const float* A1 = A + lda;
  const float* A2 = A + 2 * lda;
  const float* A3 = A + 3 * lda;
  const float* A4 = A + 4 * lda;
  const float* A5 = A + 5 * lda;
  int64_t k = 0;
  for (; k + 2 <= K; k += 2) {
    const __m512 p0 = _mm512_loadu_ps(P + k * kNR), p1 = _mm512_loadu_ps(P + (k + 1) * kNR);
    a0 = _mm512_fmadd_ps(_mm512_set1_ps(A[k]), p0, a0);
    b0 = _mm512_fmadd_ps(_mm512_set1_ps(A[k + 1]), p1, b0);
    if (M > 1) {
      a1 = _mm512_fmadd_ps(_mm512_set1_ps(A1[k]), p0, a1);
      b1 = _mm512_fmadd_ps(_mm512_set1_ps(A1[k + 1]), p1, b1);
    }
    if (M > 2) {
      a2 = _mm512_fmadd_ps(_mm512_set1_ps(A2[k]), p0, a2);
      b2 = _mm512_fmadd_ps(_mm512_set1_ps(A2[k + 1]), p1, b2);
    }
    if (M > 3) {
      a3 = _mm512_fmadd_ps(_mm512_set1_ps(A3[k]), p0, a3);
      b3 = _mm512_fmadd_ps(_mm512_set1_ps(A3[k + 1]), p1, b3);
    }
    if (M > 4) {
      a4 = _mm512_fmadd_ps(_mm512_set1_ps(A4[k]), p0, a4);
      b4 = _mm512_fmadd_ps(_mm512_set1_ps(A4[k + 1]), p1, b4);
    }
    if (M > 5) {
      a5 = _mm512_fmadd_ps(_mm512_set1_ps(A5[k]), p0, a5);
      b5 = _mm512_fmadd_ps(_mm512_set1_ps(A5[k + 1]), p1, b5);
    }
  }
  if (k < K) {
    const __m512 p0 = _mm512_loadu_ps(P + k * kNR);
    a0 = _mm512_fmadd_ps(_mm512_set1_ps(A[k]), p0, a0);
    if (M > 1) a1 = _mm512_fmadd_ps(_mm512_set1_ps(A1[k]), p0, a1);
    if (M > 2) a2 = _mm512_fmadd_ps(_mm512_set1_ps(A2[k]), p0, a2);
    if (M > 3) a3 = _mm512_fmadd_ps(_mm512_set1_ps(A3[k]), p0, a3);
    if (M > 4) a4 = _mm512_fmadd_ps(_mm512_set1_ps(A4[k]), p0, a4);
    if (M > 5) a5 = _mm512_fmadd_ps(_mm512_set1_ps(A5[k]), p0, a5);
  }
  auto put = [&](int m, __m512 sum) {
    float* c = C + m * ldc;
    if (ACC) sum = _mm512_add_ps(sum, _mm512_loadu_ps(c));
    _mm512_storeu_ps(c, sum);
  };
  put(0, _mm512_add_ps(a0, b0));
  if (M > 1) put(1, _mm512_add_ps(a1, b1));
  if (M > 2) put(2, _mm512_add_ps(a2, b2));
  if (M > 3) put(3, _mm512_add_ps(a3, b3));
  if (M > 4) put(4, _mm512_add_ps(a4, b4));
  if (M > 5) put(5, _mm512_add_ps(a5, b5));
#elif defined(__AVX2__) && defined(__FMA__)
  tile2<Avx2, M, ACC>(K, A, lda, P, P + Avx2::kWidth, C, ldc);
#else
  float acc[M][kNR] = {};
  for (int64_t k = 0; k < K; ++k) {
    for (int m = 0; m < M; ++m) {
      const float a = A[m * lda + k];
      for (int64_t c = 0; c < kNR; ++c) acc[m][c] += a * P[k * kNR + c];
    }
  }
  for (int m = 0; m < M; ++m) {
    for (int64_t c = 0; c < kNR; ++c) C[m * ldc + c] = ACC ? C[m * ldc + c] + acc[m][c] : acc[m][c];
  }
#endif
}

// One row (a step of one example): four independent pairs of accumulators over k mod 4, since one pair would wait
// on the FMA latency at every k (a matrix-vector product: at B=1 this kernel is most of a step).
template <bool ACC>
inline void micro_one(int64_t K, const float* A, const float* P, float* C) {
#if defined(__AVX512F__)
  // A panel row is one zmm: eight accumulators over k mod 8.
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    const float* p = P + k * kNR;
    a0 = _mm512_fmadd_ps(_mm512_set1_ps(A[k]), _mm512_loadu_ps(p), a0);
    a1 = _mm512_fmadd_ps(_mm512_set1_ps(A[k + 1]), _mm512_loadu_ps(p + 16), a1);
    a2 = _mm512_fmadd_ps(_mm512_set1_ps(A[k + 2]), _mm512_loadu_ps(p + 32), a2);
    a3 = _mm512_fmadd_ps(_mm512_set1_ps(A[k + 3]), _mm512_loadu_ps(p + 48), a3);
    a4 = _mm512_fmadd_ps(_mm512_set1_ps(A[k + 4]), _mm512_loadu_ps(p + 64), a4);
    a5 = _mm512_fmadd_ps(_mm512_set1_ps(A[k + 5]), _mm512_loadu_ps(p + 80), a5);
    a6 = _mm512_fmadd_ps(_mm512_set1_ps(A[k + 6]), _mm512_loadu_ps(p + 96), a6);
    a7 = _mm512_fmadd_ps(_mm512_set1_ps(A[k + 7]), _mm512_loadu_ps(p + 112), a7);
  }
  for (; k < K; ++k) a0 = _mm512_fmadd_ps(_mm512_set1_ps(A[k]), _mm512_loadu_ps(P + k * kNR), a0);
  __m512 sum = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
  if (ACC) sum = _mm512_add_ps(sum, _mm512_loadu_ps(C));
  _mm512_storeu_ps(C, sum);
#elif defined(__AVX2__) && defined(__FMA__)
  __m256 a0 = _mm256_setzero_ps(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
  int64_t k = 0;
  for (; k + 4 <= K; k += 4) {
    const float* p = P + k * kNR;
    __m256 x = _mm256_broadcast_ss(A + k);
    a0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(p), a0);
    b0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(p + 8), b0);
    x = _mm256_broadcast_ss(A + k + 1);
    a1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(p + 16), a1);
    b1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(p + 24), b1);
    x = _mm256_broadcast_ss(A + k + 2);
    a2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(p + 32), a2);
    b2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(p + 40), b2);
    x = _mm256_broadcast_ss(A + k + 3);
    a3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(p + 48), a3);
    b3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(p + 56), b3);
  }
  for (; k < K; ++k) {
    const __m256 x = _mm256_broadcast_ss(A + k);
    a0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(P + k * kNR), a0);
    b0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(P + k * kNR + 8), b0);
  }
  __m256 lo = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
  __m256 hi = _mm256_add_ps(_mm256_add_ps(b0, b1), _mm256_add_ps(b2, b3));
  if (ACC) {
    lo = _mm256_add_ps(lo, _mm256_loadu_ps(C));
    hi = _mm256_add_ps(hi, _mm256_loadu_ps(C + 8));
  }
  _mm256_storeu_ps(C, lo);
  _mm256_storeu_ps(C + 8, hi);
#else
  micro<1, ACC>(K, A, 0, P, C, 0);
#endif
}

template <bool ACC>
inline void micro_rows(int64_t M, int64_t K, const float* A, int64_t lda, const float* P, float* C, int64_t ldc) {
  switch (M) {
    case 1: micro_one<ACC>(K, A, P, C); break;
    case 2: micro<2, ACC>(K, A, lda, P, C, ldc); break;
    case 3: micro<3, ACC>(K, A, lda, P, C, ldc); break;
    case 4: micro<4, ACC>(K, A, lda, P, C, ldc); break;
    case 5: micro<5, ACC>(K, A, lda, P, C, ldc); break;
    default: micro<6, ACC>(K, A, lda, P, C, ldc); break;
  }
}

#if defined(__AVX512F__)
// C[0:M, 0:32] = A[0:M, 0:K] [P0 P1] (two panels, a zmm per panel row).
inline void micro2_rows(int64_t M, int64_t K, const float* A, int64_t lda, const float* P0, const float* P1, float* C,
                        int64_t ldc) {
  switch (M) {
    case 1:  // one row: micro_one's k-split chains, panel by panel
      micro_one<false>(K, A, P0, C);
      micro_one<false>(K, A, P1, C + kNR);
      break;
    case 2: tile2<Avx512, 2, false>(K, A, lda, P0, P1, C, ldc); break;
    case 3: tile2<Avx512, 3, false>(K, A, lda, P0, P1, C, ldc); break;
    case 4: tile2<Avx512, 4, false>(K, A, lda, P0, P1, C, ldc); break;
    case 5: tile2<Avx512, 5, false>(K, A, lda, P0, P1, C, ldc); break;
    case 6: tile2<Avx512, 6, false>(K, A, lda, P0, P1, C, ldc); break;
    case 7: tile2<Avx512, 7, false>(K, A, lda, P0, P1, C, ldc); break;
    default: tile2<Avx512, 8, false>(K, A, lda, P0, P1, C, ldc); break;
  }
}
#endif

// C[0:M, 0:round_up(N, 16)] = A[0:M, 0:K] P for the panels of N columns (C's row stride ldc >= round_up(N, 16)):
// panel-major over micro-tiles of kMR rows, so a panel is reused from L1 by all M (<= kRowBlock) rows. With AVX-512
// the panels go in pairs (tile2 over two panels: a zmm per panel row, so one panel alone gives a micro-tile too few
// accumulators), over tiles of kMR2 rows.
inline void product(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* P, float* C,
                    int64_t ldc) {
  int64_t p = 0;
#if defined(__AVX512F__)
  for (; p + kNR < N; p += 2 * kNR) {
    for (int64_t m = 0; m < M; m += kMR2) {
      micro2_rows(std::min(kMR2, M - m), K, A + m * lda, lda, P + p * K, P + (p + kNR) * K, C + m * ldc + p, ldc);
    }
  }
#endif
  for (; p < N; p += kNR) {
    for (int64_t m = 0; m < M; m += kMR) {
      micro_rows<false>(std::min(kMR, M - m), K, A + m * lda, lda, P + p * K, C + m * ldc + p, ldc);
    }
  }
}

// ----------------------------------------------------------------------------------------------- work sharing
// Items (s, k): step s < steps, chunk k < chunks; item (s, k) may start once every item of steps < s is done. Each
// chunk has an owner, the caller (chunk 0) or the helper from XLA's pool that took chunk k, which claims its chunk's
// items in order: a chunk's weights, carries and scratch stay in its owner's core caches from step to step (two
// threads claiming the next free item from a shared counter swapped chunks at about half the steps; LSTM W2
// inference, B=64 T=512 F=H=128, 2 threads, medians of 15 calls, three interleaved pairs of processes: 48.6, 52.8,
// 53.8 ms with the counter, 45.8, 49.0, 47.8 with owners). A thread that waits for the items of step s - 1 and finds
// one not claimed yet (its owner has not started: its pool thread is busy, or it stopped after the job went solo,
// below) claims and does it itself.
// A helper holds the job (shared_ptr) but touches the caller's buffers only inside an item; the caller returns
// once every item is done, without waiting for helpers that have not started: with every pool thread busy (two
// native loops side by side, as in a bidirectional layer, on a 2-thread pool) they may start only after it
// returns, find nothing left to claim and exit.
//
// On a loaded machine a helper may be descheduled in the middle of an item and every other thread then waits for it
// at the next step for the rest of its time slice (milliseconds: with 2 threads on 2 cores shared by ~16 busy
// threads a loop of 512 steps took 1.6x the single-threaded pure-JAX path). So when the caller has waited
// kSoloAfter for one step and, in all, at least 1 / kSoloShare of the job's time so far, the job turns solo:
// helpers claim nothing more and the caller does the rest alone. The share matters where steps are long: at B=128
// F=H=512 (LSTM W4, ~2 ms a step) one descheduled helper used to turn a job solo after its first wait; LSTM W4
// training, default / pure-JAX path, medians of 5 interleaved calls on the shared 2-core machine: 0.95 and 0.96
// after the first wait, 0.81 and 0.78 with the share (W1-W3 unchanged: their stalls are most of a job).
// The next job tries its helpers again: a solo job used to keep the jobs of the next 500 ms solo too, and one stall
// then cost a model whose native calls alternate with XLA programs several calls on one thread. jax.grad of LSTM W1
// (B=32 T=128 F=128 H=256) called alternately with the pure-JAX path's, 2 threads, two rounds of alternating
// processes, 30 calls, median / 75th percentile ms: 67.2 / 79.7 and 78.9 / 82.7 with the 500 ms, 46.5 / 49.5 and
// 46.2 / 51.6 without; GRU W1 39.3 / 62.4 and 38.8 / 58.0 against 36.0 / 40.3 and 37.8 / 41.3; LSTM W4 1753 / 1764
// and 1701 / 1714 against 1700 / 1745 and 1662 / 1697; beside a process busy 37% of one core in bursts of ~3 ms,
// LSTM W1 87.1 and 82.3 against 73.1 and 68.1. Called alone in a process the two ran alike (W1 training, W2 and
// B=1 inference).
// Which thread computes an item never changes its value: the split into chunks is fixed, so results do not depend
// on any of this.
constexpr auto kSoloAfter = std::chrono::milliseconds(2);
constexpr int64_t kSoloShare = 4;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Job {
  explicit Job(int64_t chunks) : chunks(chunks), claimed(new Counter[chunks]) {
    for (int64_t k = 0; k < chunks; ++k) claimed[k].steps.store(0, std::memory_order_relaxed);
  }
  struct alignas(64) Counter {  // a cache line each: an owner's claims do not move its partners' lines
    std::atomic<int64_t> steps;
  };
  int64_t steps = 0;
  const int64_t chunks;
  int64_t start_ns = 0, waited_ns = 0;  // when the caller started the job; how long it has waited on helpers
  std::unique_ptr<Counter[]> claimed;  // per chunk: the steps claimed so far
  std::atomic<int64_t> helpers{0};  // helpers started (helper i owns chunk i + 1)
  std::atomic<bool> solo{false};
  alignas(64) std::atomic<int64_t> done{0};  // items done: written every item, alone on its cache line
  char after_done[64 - sizeof(std::atomic<int64_t>)];
  std::function<void(int64_t, int64_t)> work;
};

// Claims item (s, k) if its owner has not (true: claimed by this thread).
inline bool claim(Job& job, int64_t s, int64_t k) {
  int64_t expected = s;
  return job.claimed[k].steps.load(std::memory_order_relaxed) == s &&
         job.claimed[k].steps.compare_exchange_strong(expected, s + 1, std::memory_order_relaxed);
}

inline void run_item(Job& job, int64_t s, int64_t k) {
  job.work(s, k);
  job.done.fetch_add(1, std::memory_order_release);
}

// Waits until every item of the steps before s is done, doing those of step s - 1 that nobody has claimed; the
// caller's waits (caller == true) turn the job solo after kSoloAfter.
void wait_for_step(Job& job, int64_t s, bool caller) {
  const int64_t target = s * job.chunks;
  int spins = 0;
  int64_t start = 0;
  while (job.done.load(std::memory_order_acquire) < target) {
    bool stole = false;
    for (int64_t k = 0; k < job.chunks && !stole; ++k) {
      if (claim(job, s - 1, k)) {
        run_item(job, s - 1, k);
        stole = true;
      }
    }
    if (stole) continue;
    if (++spins < 4000) {
      __builtin_ia32_pause();
      continue;
    }
    sched_yield();  // the partner may be descheduled on a loaded machine
    if (caller && !job.solo.load(std::memory_order_relaxed)) {
      const int64_t t = now_ns();
      if (start == 0) {
        start = t;
      } else if (t - start > std::chrono::nanoseconds(kSoloAfter).count() &&
                 (job.waited_ns + t - start) * kSoloShare > t - job.start_ns) {
        job.solo.store(true, std::memory_order_relaxed);
      }
    }
  }
  if (caller && start) job.waited_ns += now_ns() - start;
}

// The items of chunk k, in order, as far as nobody else has claimed them (a helper stops when the job turns solo).
void participate(Job& job, int64_t k, bool caller) {
  int old_threads = g_set_threads_local ? g_set_threads_local(1) : 1;  // one BLAS thread per worker
  for (;;) {
    if (!caller && job.solo.load(std::memory_order_relaxed)) break;
    const int64_t s = job.claimed[k].steps.load(std::memory_order_relaxed);
    if (s >= job.steps) break;
    if (!claim(job, s, k)) continue;  // the caller took it
    wait_for_step(job, s, caller);
    run_item(job, s, k);
  }
  if (g_set_threads_local) g_set_threads_local(old_threads);
}

// Runs job.work over every item with the caller (chunk 0) and up to threads - 1 helpers from XLA's pool, each owning
// one chunk.
void run_job(ffi::ThreadPool& pool, std::shared_ptr<Job> job, int64_t threads) {
  job->start_ns = now_ns();
  for (int64_t i = 1; i < std::min(threads, job->chunks); ++i) {
    pool.Schedule([job]() { participate(*job, 1 + job->helpers.fetch_add(1), false); });
  }
  participate(*job, 0, true);
  wait_for_step(*job, job->steps, true);
}

// Runs work(s, k) over the steps s in [s0, s1) and chunks k < chunks, segment steps of a chunk an item: its steps
// one after the other, the chunks meeting only between items (segment > 1: independent chunks, Split::by_rows).
void run_steps(ffi::ThreadPool& pool, const std::function<void(int64_t, int64_t)>& work, int64_t s0, int64_t s1,
               int64_t chunks, int64_t threads, int64_t segment) {
  if (s1 <= s0) return;
  auto job = std::make_shared<Job>(chunks);
  job->steps = (s1 - s0 + segment - 1) / segment;
  job->work = [&work, s0, s1, segment](int64_t g, int64_t k) {
    for (int64_t s = s0 + g * segment; s < std::min(s1, s0 + (g + 1) * segment); ++s) work(s, k);
  };
  run_job(pool, job, threads);
}

struct Chunks {
  std::vector<int64_t> start;  // chunk k covers hidden units [start[k], start[k + 1])
};

// Chunks of at least 32 units (whole multiples of 8) and 2^14 multiply-adds of the step's products, at most one
// per thread. Below that a step takes about a microsecond, too short to wait on another core each step. Measured
// at B=1 T=1024 I=64 (input projection hoisted, wall clock, 2 threads, quiet 2-core machine, medians of 31
// interleaved calls): LSTM H=128 (6.6e4 per step) 5.68 ms on one chunk, 3.93 on two; H=96 3.37 / 2.51; H=64 (1.6e4)
// 1.87 / 1.75. On the loaded machine (two busy processes on the two cores) two chunks cost up to 1.6x one (GRU
// H=128: 5.06 / 8.21 ms; the pure-JAX path 8.38): the solo fallback (kSoloAfter) bounds the loss.
constexpr int64_t kChunkMacs = int64_t{1} << 14;
Chunks split(int64_t H, int64_t threads, int64_t step_macs) {
  int64_t n = std::max<int64_t>(1, std::min<int64_t>({threads, H / 32, step_macs / kChunkMacs}));
  Chunks c;
  int64_t per = ((H + n - 1) / n + 7) / 8 * 8;
  for (int64_t j = 0; j < H; j += per) c.start.push_back(j);
  c.start.push_back(H);
  return c;
}

// The core's L2 cache in bytes (1 MiB where the system does not say).
int64_t l2_bytes() {
  static const int64_t l2 = [] {
    const long bytes = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return bytes > 0 ? int64_t{bytes} : int64_t{1} << 20;
  }();
  return l2;
}

// The rows of a block (above): kRowBlock (4 micro-tiles) where a chunk's packed weights (weight_bytes) fit in half
// the core's L2 and so stay there from one block to the next; kWideRowBlock where they do not: each block of 24 rows
// then read them again from L3 and the step was memory-bound (LSTM W4, B=128 F=H=512: 4 MiB a chunk on two threads,
// the forward loop at 47% of the machine's sgemm rate; inference 743 -> 630-690 ms with the wide blocks, medians of
// interleaved calls, 2 threads). W1-W3 (weights of 0.2-0.8 MiB a chunk) keep kRowBlock.
int64_t row_block(int64_t weight_bytes) { return weight_bytes > l2_bytes() / 2 ? kWideRowBlock : kRowBlock; }

// XLA's intra-op pool size, capped by JAXRNN_NATIVE_THREADS if set (read once).
int64_t pool_threads(ffi::ThreadPool& pool) {
  static const int64_t cap = [] {
    const char* v = std::getenv("JAXRNN_NATIVE_THREADS");
    return v ? std::max<int64_t>(1, std::atoll(v)) : int64_t{1} << 30;
  }();
  int64_t n = pool.num_threads();
  return std::min(cap, n > 0 ? n : int64_t{1});
}

// kGRUB: the GRU with reset_after=False (the reset gate applied to h before its product: two products a step).
// kLSTMP: the LSTM with a projection (h = (o tanh c) W_r, P wide, c H wide: two products a step).
enum Kind : int64_t { kLSTM = 0, kGRU = 1, kRNN = 2, kGRUB = 3, kLSTMP = 4 };

// How a loop's items are shared: by chunks of rows (examples) where the batch has kRowsPerChunk rows for each of
// two or more threads, else by chunks of hidden units (split). Rows are independent: a chunk of rows is the whole
// step for its examples (all units, every product), so its owner runs its steps one after the other and the owners
// meet only every `segment` steps (run_steps), where chunks of units meet after every step (each needs all of
// h_{t-1}: 5-8% of the samples were threads waiting there) and each step's h crossed between the cores' caches.
// Measured on the 2-core machine (2 threads, alternating processes, medians of 30 calls, ms; units -> rows): LSTM W2
// inference (B=64 T=512 F=H=128) 32.4 / 32.0 / 32.8 -> 28.7 / 29.0 / 33.2; LSTM W1 training (B=32 T=128 F=128
// H=256) by mins 36.1 / 40.0 / 36.7 -> 32.6 / 35.3 / 34.5; GRU W2 inference 25.6 / 26.5 / 25.3 -> 24.2 / 25.1 /
// 22.2; LSTM W4 training (B=128 T=256 F=H=512) 1598 / 1536 -> 1555 / 1453.
// But every owner reads all the weights each step: where they exceed the L2, a chunk of rows must have kStreamRows
// rows to pay for reading them from L3 (GRU training B=16 T=256 F=64 H=512, 3.4 MiB of weights, 8 rows a chunk: 121
// / 123 / 123 by rows against 117 / 109 / 117 by units). Kinds with two products a step (GRUB, LSTMP) met twice a step
// by units; by rows a chunk runs both phases of a step on its rows: W2-sized inference (B=64 T=512 F=H=128; LSTMP
// P=64) GRUB 48.0 / 49.8 / 48.1 -> 37.7 / 39.0 / 39.3 ms, LSTMP 35.9 / 35.2 / 39.5 -> 28.6 / 30.0 / 33.3. Their
// backward loops likewise (W1-sized training, B=32 T=128 F=128 H=256, forward by rows either way): GRUB 38.0 / 37.5 /
// 38.6 -> 37.7 / 36.8 / 35.7 ms, LSTMP 35.0 / 36.2 / 36.2 -> 34.6 / 34.1 / 32.5.
constexpr int64_t kRowsPerChunk = 8;  // one AVX-512 micro-tile
constexpr int64_t kStreamRows = 32;
struct Split {
  Chunks units;               // the packed weights' chunks of units: one chunk ({0, H}) when by rows
  std::vector<int64_t> rows;  // by rows: job chunk k covers rows [rows[k], rows[k + 1]); else {0, B}
  bool by_rows() const { return rows.size() > 2; }
  int64_t chunks() const { return by_rows() ? (int64_t)rows.size() - 1 : (int64_t)units.start.size() - 1; }
  int64_t unit(int64_t k) const { return by_rows() ? 0 : k; }  // job chunk k's chunk of units
  int64_t row0(int64_t k) const { return by_rows() ? rows[k] : 0; }
  int64_t row1(int64_t k) const { return by_rows() ? rows[k + 1] : rows[1]; }
  // Steps between the owners' meetings: every step by units; by rows about kSegments meetings a loop (where a late
  // helper's steps are taken over by a waiting thread, and the solo fallback can act).
  int64_t segment(int64_t steps) const {
    return by_rows() ? std::max<int64_t>(1, (steps + kSegments - 1) / kSegments) : 1;
  }
  static constexpr int64_t kSegments = 8;
  // A per-chunk scratch laid out by `offsets` (prefix sums over the chunks of units, offsets.back() in all): by units
  // job chunk k uses its own part, at offsets[k]; by rows each job chunk has a whole copy (copies()), at share(k).
  int64_t copies() const { return by_rows() ? chunks() : 1; }
  int64_t share(int64_t k, const std::vector<int64_t>& offsets) const {
    return by_rows() ? offsets.back() * k : offsets[k];
  }
};
Split split_work(int64_t B, int64_t H, int64_t threads, int64_t step_macs, int64_t weight_bytes) {
  Split sp;
  const int64_t n = std::min(threads, B / kRowsPerChunk);
  const bool fit = weight_bytes <= l2_bytes() || B / std::max<int64_t>(n, 1) >= kStreamRows;
  if (n > 1 && fit) {
    sp.units.start = {0, H};
    for (int64_t k = 0; k <= n; ++k) sp.rows.push_back(k * B / n);
  } else {
    sp.units = split(H, threads, step_macs);
    sp.rows = {0, B};
  }
  return sp;
}

// exp(x) in float: Cephes' range reduction and polynomial (relative error below 2e-7), in plain code that the
// compiler vectorizes (glibc's expf is a scalar call). x is clamped to [-87, 88] (results stay normal floats:
// 1 / (1 + exp(88)) is 6e-39 where expf gives 0 — the same to any tolerance); NaN stays NaN.
inline float fast_exp(float x) {
  const float xc = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);  // (fminf/fmaxf do not vectorize)
  const float n = std::floor(xc * 1.44269504088896341f + 0.5f);
  const float r = std::fma(n, 2.12194440e-4f, std::fma(n, -0.693359375f, xc));  // fma: no reassociation
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  const int32_t bits = ((int32_t)n + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return x == x ? y * scale : x;
}

inline float sigmoid(float x) { return 1.0f / (1.0f + fast_exp(-x)); }

// tanh(x) in float: the rational approximation of Eigen (and XLA:CPU), odd polynomials of degree 13 / 6 on
// [-7.9053, 7.9053] (beyond: +-1 to float precision); below 4e-4 in magnitude tanh(x) = x to float precision.
inline float fast_tanh(float x) {
  constexpr float kMax = 7.90531110763549805f;
  const float xc = x < -kMax ? -kMax : (x > kMax ? kMax : x);
  const float x2 = xc * xc;
  float p = -2.76076847742355e-16f;
  p = p * x2 + 2.00018790482477e-13f;
  p = p * x2 - 8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  float q = 1.19825839466702e-06f;
  q = q * x2 + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  const float t = xc * p / q;
  return std::fabs(x) < 4e-4f ? x : (x == x ? t : x);
}

// The gate arithmetic of one row (one example) for n units, as plain loops over restrict pointers that the compiler
// vectorizes. u: the input projection x W_i + b (gate g of unit j at u[g ss + j]); s: the recurrent product h W_h
// (s[g ss + j]); with TRAIN the activated gates go to gw (gate g at gw[g sg + j]) for the backward pass.
// LSTM (gates i f g o): c = f c_prev + i g, h = o tanh(c).
template <bool TRAIN>
void lstm_row(int64_t n, int64_t ss, int64_t sg, const float* __restrict u, const float* __restrict s,
              const float* __restrict cp, float* __restrict cn, float* __restrict hn, float* __restrict hs,
              float* __restrict gw) {
  for (int64_t j = 0; j < n; ++j) {
    const float i = sigmoid(u[j] + s[j]);
    const float f = sigmoid(u[ss + j] + s[ss + j]);
    const float g = fast_tanh(u[2 * ss + j] + s[2 * ss + j]);
    const float o = sigmoid(u[3 * ss + j] + s[3 * ss + j]);
    const float c = f * cp[j] + i * g;
    const float h = o * fast_tanh(c);
    cn[j] = c;
    hn[j] = h;
    if (hs) hs[j] = h;  // null: LSTMP's m = o tanh(c), which its projection reads
    if (TRAIN) {
      gw[j] = i;
      gw[sg + j] = f;
      gw[2 * sg + j] = g;
      gw[3 * sg + j] = o;
    }
  }
}

// GRU, reset_after=True (gates r z n): n = tanh(u_n + r (s_n + b_hn)), h = (1 - z) n + z h_prev; gw: r z n and
// s_n + b_hn.
template <bool TRAIN>
void gru_row(int64_t n, int64_t ss, int64_t sg, const float* __restrict u, const float* __restrict s,
             const float* __restrict b_hn, const float* __restrict hp, float* __restrict hn, float* __restrict hs,
             float* __restrict gw) {
  for (int64_t j = 0; j < n; ++j) {
    const float r = sigmoid(u[j] + s[j]);
    const float z = sigmoid(u[ss + j] + s[ss + j]);
    const float hw_n = s[2 * ss + j] + b_hn[j];
    const float c = fast_tanh(u[2 * ss + j] + r * hw_n);
    const float h = (1.0f - z) * c + z * hp[j];
    hn[j] = h;
    hs[j] = h;
    if (TRAIN) {
      gw[j] = r;
      gw[sg + j] = z;
      gw[2 * sg + j] = c;
      gw[3 * sg + j] = hw_n;
    }
  }
}

// GRU, reset_after=False, the second phase of a step (gates r z from the first): n = tanh(u_n + a + b_hn) with
// a = (r h_prev) W_hn, h = (1 - z) n + z h_prev; gw: r z n and r h_prev (the product's operand, for dW_hn).
template <bool TRAIN>
void gru_before_row(int64_t n, int64_t sg, const float* __restrict r, const float* __restrict z,
                    const float* __restrict un, const float* __restrict a, const float* __restrict b_hn,
                    const float* __restrict hp, float* __restrict hn, float* __restrict hs, float* __restrict gw) {
  for (int64_t j = 0; j < n; ++j) {
    const float c = fast_tanh(un[j] + a[j] + b_hn[j]);
    const float h = (1.0f - z[j]) * c + z[j] * hp[j];
    hn[j] = h;
    hs[j] = h;
    if (TRAIN) {
      gw[j] = r[j];
      gw[sg + j] = z[j];
      gw[2 * sg + j] = c;
      gw[3 * sg + j] = r[j] * hp[j];
    }
  }
}

// Simple RNN: h = tanh(u + s) or relu(u + s).
void rnn_row(int64_t n, bool relu, const float* __restrict u, const float* __restrict s, float* __restrict hn,
             float* __restrict hs) {
  if (relu) {
    for (int64_t j = 0; j < n; ++j) {
      const float z = u[j] + s[j];
      hn[j] = hs[j] = z > 0.0f ? z : 0.0f;
    }
  } else {
    for (int64_t j = 0; j < n; ++j) hn[j] = hs[j] = fast_tanh(u[j] + s[j]);
  }
}

int64_t gates_of(int64_t kind) { return (kind == kLSTM || kind == kLSTMP) ? 4 : (kind == kGRU || kind == kGRUB) ? 3 : 1; }

// ----------------------------------------------------------------------------------------------- forward
// x: [B, T, F] (batch-major inputs: see below), w_i: [F, G H], bias: [G H] or [0] (none), w_h: [H, G H], b_hn: [H]
// (GRU) or [0], h0, c0: [B, H] (c0: LSTM; else any size), mask: [T, B] int32. The input projection x_t W_i + b runs
// inside the loop, per step and chunk, beside h_{t-1} W_h (as the pure-JAX path does on CPU: no [T, B, G H] buffer);
// with projected == 1 the caller has run it for all steps at once (hoisted: one large product instead of T
// matrix-vector ones at a few rows) and x is [B, T, G H] = x W_i + b (w_i and bias are then not read).
// Results: hs [B, T, H]; h_last, c_last [B, H] (c_last: LSTM, else any size); with train == 1 (the native
// backward's residuals) h_all, c_all [T, B, H] (the carries after each step; c_all: LSTM) and gates [T, B, W]
// (LSTM: i f g o; GRU: r z n hn; RNN: none).
// Layouts: the forward's x and hs and the backward's x, dhs and dx are batch-major, the layout of jaxrnn.unroll's
// default (time_major=False), of Flax's and of Equinox's: there XLA cancels unroll's transposes against the wrapper's
// (jaxrnn/cells/_native_scan.py), where time-major operands cost a transpose of x and of hs a call (LSTM W2 inference,
// B=64 T=512 F=H=128: 55.4 ms time-major against 52.2 batch-major). The loops' own arrays (h_all, c_all, gates, dz)
// are time-major, a step's rows adjacent. The backward's large products meet x and dx with dz a block of steps at a
// time, through copies of the block's rows in dz's order (B products of T rows each, batch-major, were slower than
// XLA's transposes of x and dx: LSTM W1 training, B=32 T=128 F=128 H=256, 18.5 ms a call against 16.9).
ffi::Error Forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w_i,
                   ffi::Buffer<ffi::F32> bias, ffi::Buffer<ffi::F32> w_h, ffi::Buffer<ffi::F32> b_hn,
                   ffi::Buffer<ffi::F32> h0, ffi::Buffer<ffi::F32> c0, ffi::Buffer<ffi::S32> mask,
                   ffi::ResultBuffer<ffi::F32> hs, ffi::ResultBuffer<ffi::F32> h_last,
                   ffi::ResultBuffer<ffi::F32> c_last, ffi::ResultBuffer<ffi::F32> h_all,
                   ffi::ResultBuffer<ffi::F32> c_all, ffi::ResultBuffer<ffi::F32> gates, int64_t kind, int64_t relu,
                   int64_t train, int64_t projected) {
  auto xd = x.dimensions();
  if (xd.size() != 3) return ffi::Error::InvalidArgument("jaxrnn native: x must be [B, T, F]");
  const int64_t B = xd[0], T = xd[1], G = gates_of(kind), GH = w_h.dimensions()[1], H = GH / G;
  const int64_t F = projected ? 0 : xd[2];  // features multiplied inside the loop
  const bool lstmp = kind == kLSTMP;
  const int64_t R = lstmp ? w_h.dimensions()[0] : H;  // the carried h's width (LSTMP: P)
  if (H * G != GH || w_h.dimensions()[0] != R) {
    return ffi::Error::InvalidArgument("jaxrnn native: w_h must be [H, G*H] (LSTMP: [P, 4H])");
  }
  if (lstmp && (b_hn.dimensions().size() != 2 || b_hn.dimensions()[0] != H || b_hn.dimensions()[1] != R)) {
    return ffi::Error::InvalidArgument("jaxrnn native: LSTMP's w_r (the b_hn operand) must be [H, P]");
  }
  if (projected ? xd[2] != GH : (w_i.dimensions()[0] != F || w_i.dimensions()[1] != GH)) {
    return ffi::Error::InvalidArgument("jaxrnn native: w_i must be [F, G*H] (projected: x must be [B, T, G*H])");
  }
  const bool lstm = kind == kLSTM, gru = kind == kGRU, grub = kind == kGRUB;
  const float* X = x.typed_data();
  const float* WI = w_i.typed_data();
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
    CA = lstm || lstmp ? c_all->typed_data() : nullptr;
  } else {
    slots_h.resize(2 * B * R);
    if (lstm || lstmp) slots_c.resize(2 * B * H);
  }
  auto h_at = [&](int64_t t) -> float* { return train ? HA + t * B * R : slots_h.data() + (t & 1) * B * R; };
  auto c_at = [&](int64_t t) -> float* { return train ? CA + t * B * H : slots_c.data() + (t & 1) * B * H; };
  float* GW = train && (lstm || gru || grub || lstmp) ? gates->typed_data() : nullptr;
  const int64_t GWW = 4 * H;  // width of a gates row (LSTM: i f g o; GRU: r z n hn; GRUB: r z n (r h_prev))

  const int64_t threads = pool_threads(pool);
  const int64_t weights = (F + R) * GH + H * (lstmp ? R : 0);  // the step products' weights: a row's multiply-adds
  const Split sp = split_work(B, H, threads, B * weights, weights * sizeof(float));
  const Chunks& ch = sp.units;
  const int64_t nk = (int64_t)ch.start.size() - 1, nj = sp.chunks();  // chunks of units; the job's chunks
  // Both kernels packed per chunk: chunk k's columns n = g jc + jj (gate g, unit j0 + jj) in 16-column panels,
  // its bias in the same column order. width[k]: its columns padded to 16; per chunk k, `base` counts columns.
  std::vector<int64_t> width(nk), base(nk + 1, 0);
  for (int64_t k = 0; k < nk; ++k) {
    width[k] = round_up(G * (ch.start[k + 1] - ch.start[k]), kNR);
    base[k + 1] = base[k] + width[k];
  }
  std::vector<float> packed_i(F * base[nk]), packed_h(R * base[nk]), bias_k(base[nk], 0.0f);
  for (int64_t k = 0; k < nk; ++k) {
    const int64_t j0 = ch.start[k], jc = ch.start[k + 1] - j0;
    std::vector<int64_t> column(G * jc);  // the chunk's column n: gate n / jc of unit j0 + n % jc
    for (int64_t g = 0; g < G; ++g) {
      for (int64_t jj = 0; jj < jc; ++jj) column[g * jc + jj] = g * H + j0 + jj;
    }
    if (!projected) pack_columns(F, G * jc, WI, GH, column, packed_i.data() + F * base[k]);
    // GRUB: its first phase multiplies h by the r and z columns only.
    pack_columns(R, (grub ? 2 : G) * jc, W, GH, column, packed_h.data() + R * base[k]);
    if (!projected && bias.element_count() == GH) {
      for (int64_t n = 0; n < G * jc; ++n) bias_k[base[k] + n] = bias.typed_data()[column[n]];
    }
  }
  const int64_t rb = row_block((F + R) * *std::max_element(width.begin(), width.end()) * sizeof(float));
  // Job chunk k's products of a block of rows, rb x width[u] floats each (u: its chunk of units): x W_i + b and h W_h.
  // By rows every job chunk has its own (at slot(k)).
  std::vector<float> scratch_u(rb * base[nk] * sp.copies()), scratch_s(scratch_u.size());
  auto slot = [&](int64_t k) { return rb * sp.share(k, base); };

  // Job chunk k's products at step t for rows [b, b + rows): su = x_t W_i + b (the caller's, when projected) on its
  // G jc columns, ss = h_{t-1} W_h on the first hcols of them.
  auto block_products = [&](int64_t t, int64_t k, int64_t b, int64_t rows, const float* hp, int64_t hcols) {
    const int64_t u = sp.unit(k), j0 = ch.start[u], jc = ch.start[u + 1] - j0, ld = width[u];
    float* su = scratch_u.data() + slot(k);
    float* ss = scratch_s.data() + slot(k);
    if (projected) {  // this chunk's columns of the caller's x W_i + b
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t g = 0; g < G; ++g) {
          std::memcpy(su + r * ld + g * jc, X + ((b + r) * T + t) * GH + g * H + j0, jc * sizeof(float));
        }
      }
    } else {
      const float* bk = bias_k.data() + base[u];
      product(rows, G * jc, F, X + (b * T + t) * F, T * F, packed_i.data() + F * base[u], su, ld);
      for (int64_t r = 0; r < rows; ++r) {
        float* row = su + r * ld;
        for (int64_t n = 0; n < G * jc; ++n) row[n] += bk[n];
      }
    }
    product(rows, hcols, R, hp + b * R, R, packed_h.data() + R * base[u], ss, ld);
  };

  // A padded row (mask 0) of step t: a carried value kept (h, or the LSTMP's c) and a zero output beside it (hs, or
  // the LSTMP's m), n columns; and zero gates on the chunk's units [j0, j0 + jc) (the backward pass reads none there).
  auto keep_carry = [&](const float* h_prev, float* h_next, float* out, int64_t n) {
    std::memcpy(h_next, h_prev, n * sizeof(float));
    std::memset(out, 0, n * sizeof(float));
  };
  auto zero_gates = [&](int64_t t, int64_t b, int64_t j0, int64_t jc) {
    if (!GW) return;
    for (int64_t g = 0; g < 4; ++g) std::memset(GW + (t * B + b) * GWW + g * H + j0, 0, jc * sizeof(float));
  };

  int64_t steps = T;  // the loop's steps (run_steps runs work over them)
  std::function<void(int64_t, int64_t)> work = [&](int64_t t, int64_t k) {  // step t of job chunk k: its units, rows
    const int64_t u = sp.unit(k), j0 = ch.start[u], jc = ch.start[u + 1] - j0, b0 = sp.row0(k), b1 = sp.row1(k);
    const float* hp = t == 0 ? h0.typed_data() : h_at(t - 1);
    const float* cp = lstm ? (t == 0 ? c0.typed_data() : c_at(t - 1)) : nullptr;
    const float* su = scratch_u.data() + slot(k);
    const float* ss = scratch_s.data() + slot(k);
    const int64_t ld = width[u];
    float* hn = h_at(t);
    float* cn = lstm ? c_at(t) : nullptr;
    for (int64_t b = b0; b < b1; ++b) {
      if ((b - b0) % rb == 0) block_products(t, k, b, std::min(rb, b1 - b), hp, G * jc);
      // This row's gate pre-activations: gate g of unit j0 + jj at ub[g jc + jj] (input) and sb[g jc + jj].
      const float* ub = su + ((b - b0) % rb) * ld;
      const float* sb = ss + ((b - b0) % rb) * ld;
      const float* hpb = hp + b * H;
      float* hnb = hn + b * H;
      float* hsb = HS + (b * T + t) * H;
      if (!M[t * B + b]) {  // padding: keep the carry, output zero
        keep_carry(hpb + j0, hnb + j0, hsb + j0, jc);
        if (lstm) std::memcpy(cn + b * H + j0, cp + b * H + j0, jc * sizeof(float));
        zero_gates(t, b, j0, jc);
        continue;
      }
      float* gw = GW ? GW + (t * B + b) * GWW + j0 : nullptr;
      if (lstm) {
        if (gw) {
          lstm_row<true>(jc, jc, H, ub, sb, cp + b * H + j0, cn + b * H + j0, hnb + j0, hsb + j0, gw);
        } else {
          lstm_row<false>(jc, jc, H, ub, sb, cp + b * H + j0, cn + b * H + j0, hnb + j0, hsb + j0, gw);
        }
      } else if (gru) {
        if (gw) {
          gru_row<true>(jc, jc, H, ub, sb, BN + j0, hpb + j0, hnb + j0, hsb + j0, gw);
        } else {
          gru_row<false>(jc, jc, H, ub, sb, BN + j0, hpb + j0, hnb + j0, hsb + j0, gw);
        }
      } else {
        rnn_row(jc, relu, ub, sb, hnb + j0, hsb + j0);
      }
    }
  };
  // GRUB: two items per step and chunk. Phase A (the work above up to the gates): r and z of the chunk's units from
  // x_t W_i + b and h W_h[:, r z], kept with u_n and r h_prev for every example (RHg, read by every chunk in phase B).
  // Phase B, once every chunk's r h_prev is done: a = (r h_prev) W_hn on the chunk's units, then n and h.
  std::vector<int64_t> nbase(nk + 1, 0);
  std::vector<float> packed_hn, Rg, Zg, UNg, RHg, scratch_n;  // GRUB's r, z, u_n, r h_prev
  if (grub) {
    for (int64_t k = 0; k < nk; ++k) nbase[k + 1] = nbase[k] + round_up(ch.start[k + 1] - ch.start[k], kNR);
    packed_hn.resize(H * nbase[nk]);
    for (int64_t k = 0; k < nk; ++k) {
      const int64_t j0 = ch.start[k];
      pack_columns(H, ch.start[k + 1] - j0, W, GH, columns(2 * H + j0, ch.start[k + 1] - j0),
                   packed_hn.data() + H * nbase[k]);
    }
    Rg.resize(B * H);
    Zg.resize(B * H);
    UNg.resize(B * H);
    RHg.resize(B * H);
    scratch_n.resize(rb * nbase[nk] * sp.copies());
    steps = 2 * T;
    work = [&](int64_t s, int64_t k) {  // by rows a job chunk's two phases follow each other on its rows
      const int64_t t = s / 2, u = sp.unit(k), j0 = ch.start[u], jc = ch.start[u + 1] - j0;
      const int64_t b0 = sp.row0(k), b1 = sp.row1(k);
      const float* hp = t == 0 ? h0.typed_data() : h_at(t - 1);
      if (s % 2 == 0) {
        const float* su = scratch_u.data() + slot(k);
        const float* ss = scratch_s.data() + slot(k);
        const int64_t ld = width[u];
        for (int64_t b = b0; b < b1; ++b) {
          if ((b - b0) % rb == 0) block_products(t, k, b, std::min(rb, b1 - b), hp, 2 * jc);
          const float* ub = su + ((b - b0) % rb) * ld;
          const float* sb = ss + ((b - b0) % rb) * ld;
          const float* hpb = hp + b * H + j0;
          float* r_row = Rg.data() + b * H + j0;
          float* zb = Zg.data() + b * H + j0;
          float* unb = UNg.data() + b * H + j0;
          float* rhb = RHg.data() + b * H + j0;
          if (!M[t * B + b]) {  // padding: phase B keeps the carry; a zero operand row keeps its product finite
            std::memset(rhb, 0, jc * sizeof(float));
            continue;
          }
          for (int64_t jj = 0; jj < jc; ++jj) {
            const float r = sigmoid(ub[jj] + sb[jj]);
            r_row[jj] = r;
            zb[jj] = sigmoid(ub[jc + jj] + sb[jc + jj]);
            unb[jj] = ub[2 * jc + jj];
            rhb[jj] = r * hpb[jj];
          }
        }
        return;
      }
      float* sn = scratch_n.data() + rb * sp.share(k, nbase);
      const int64_t ldn = round_up(jc, kNR);
      float* hn = h_at(t);
      for (int64_t b = b0; b < b1; ++b) {
        if ((b - b0) % rb == 0) {
          product(std::min(rb, b1 - b), jc, H, RHg.data() + b * H, H, packed_hn.data() + H * nbase[u], sn, ldn);
        }
        const float* hpb = hp + b * H;
        float* hnb = hn + b * H;
        float* hsb = HS + (b * T + t) * H;
        if (!M[t * B + b]) {  // padding: keep the carry, output zero
          keep_carry(hpb + j0, hnb + j0, hsb + j0, jc);
          zero_gates(t, b, j0, jc);
          continue;
        }
        const float* a = sn + ((b - b0) % rb) * ldn;
        const int64_t o = b * H + j0;
        if (GW) {
          gru_before_row<true>(jc, H, Rg.data() + o, Zg.data() + o, UNg.data() + o, a, BN + j0, hpb + j0, hnb + j0,
                               hsb + j0, GW + (t * B + b) * GWW + j0);
        } else {
          gru_before_row<false>(jc, H, Rg.data() + o, Zg.data() + o, UNg.data() + o, a, BN + j0, hpb + j0, hnb + j0,
                                hsb + j0, nullptr);
        }
      }
    };
  }
  // LSTMP: two items per step and chunk. Phase A: the LSTM's gates and c on the chunk's units, and m = o tanh(c)
  // for every example (MB, read by every chunk in phase B). Phase B, once every unit's m is done: h = m W_r on the
  // chunk's share of the P outputs (pstart).
  std::vector<int64_t> pstart(nk + 1, 0), pbase(nk + 1, 0);
  std::vector<float> packed_r, MB, scratch_p;
  if (lstmp) {
    const float* WR = b_hn.typed_data();
    for (int64_t k = 0; k <= nk; ++k) pstart[k] = k * R / nk;
    for (int64_t k = 0; k < nk; ++k) pbase[k + 1] = pbase[k] + round_up(pstart[k + 1] - pstart[k], kNR);
    packed_r.resize(H * pbase[nk]);
    for (int64_t k = 0; k < nk; ++k) {
      pack_columns(H, pstart[k + 1] - pstart[k], WR, R, columns(pstart[k], pstart[k + 1] - pstart[k]),
                   packed_r.data() + H * pbase[k]);
    }
    MB.resize(B * H);
    scratch_p.resize(rb * pbase[nk] * sp.copies());
    steps = 2 * T;
    work = [&](int64_t s, int64_t k) {  // by rows a job chunk's two phases follow each other on its rows
      const int64_t t = s / 2, u = sp.unit(k), b0 = sp.row0(k), b1 = sp.row1(k);
      const float* hp = t == 0 ? h0.typed_data() : h_at(t - 1);
      if (s % 2 == 0) {
        const int64_t j0 = ch.start[u], jc = ch.start[u + 1] - j0, ld = width[u];
        const float* su = scratch_u.data() + slot(k);
        const float* ss = scratch_s.data() + slot(k);
        const float* cp = t == 0 ? c0.typed_data() : c_at(t - 1);
        float* cn = c_at(t);
        for (int64_t b = b0; b < b1; ++b) {
          if ((b - b0) % rb == 0) block_products(t, k, b, std::min(rb, b1 - b), hp, G * jc);
          float* mb = MB.data() + b * H;
          if (!M[t * B + b]) {  // padding: keep c; a zero m row keeps phase B's product finite
            keep_carry(cp + b * H + j0, cn + b * H + j0, mb + j0, jc);
            zero_gates(t, b, j0, jc);
            continue;
          }
          const float* ub = su + ((b - b0) % rb) * ld;
          const float* sb = ss + ((b - b0) % rb) * ld;
          if (GW) {
            lstm_row<true>(jc, jc, H, ub, sb, cp + b * H + j0, cn + b * H + j0, mb + j0, nullptr,
                           GW + (t * B + b) * GWW + j0);
          } else {
            lstm_row<false>(jc, jc, H, ub, sb, cp + b * H + j0, cn + b * H + j0, mb + j0, nullptr, nullptr);
          }
        }
        return;
      }
      const int64_t p0 = pstart[u], pc = pstart[u + 1] - p0, ldp = round_up(pc, kNR);
      float* sproj = scratch_p.data() + rb * sp.share(k, pbase);
      float* hn = h_at(t);
      for (int64_t b = b0; b < b1; ++b) {
        if ((b - b0) % rb == 0 && pc > 0) {
          product(std::min(rb, b1 - b), pc, H, MB.data() + b * H, H, packed_r.data() + H * pbase[u], sproj, ldp);
        }
        const float* hpb = hp + b * R + p0;
        float* hnb = hn + b * R + p0;
        float* hsb = HS + (b * T + t) * R + p0;
        if (!M[t * B + b]) {  // padding: keep h, output zero
          keep_carry(hpb, hnb, hsb, pc);
          continue;
        }
        const float* h = sproj + ((b - b0) % rb) * ldp;
        std::memcpy(hnb, h, pc * sizeof(float));
        std::memcpy(hsb, h, pc * sizeof(float));
      }
    };
  }
  run_steps(pool, work, 0, steps, nj, threads, sp.segment(steps));
  const float* hl = T > 0 ? h_at(T - 1) : h0.typed_data();
  std::memcpy(h_last->typed_data(), hl, B * R * sizeof(float));
  if (lstm || lstmp) {
    std::memcpy(c_last->typed_data(), T > 0 ? c_at(T - 1) : c0.typed_data(), B * H * sizeof(float));
  }
  return ffi::Error::Success();
}

// acc[g H + j] += sum_b rows[b ld + g H + j] for the gates [g0, g1) and the units [j0, j1) of B rows (a chunk's own
// columns of a step's dz: the bias gradient summed as the loop goes, from cache): the step's rows summed in float in
// blocks of kSumCols columns, their sums added into the double accumulators once a step (adding every row into acc,
// a double read and written per element and row, took 4% of an LSTM W1 training call, B=32 T=128 F=128 H=256).
constexpr int64_t kSumCols = 64;
void add_rows(const float* rows, int64_t B, int64_t ld, int64_t H, int64_t g0, int64_t g1, int64_t j0, int64_t j1,
              double* acc) {
  for (int64_t g = g0; g < g1; ++g) {
    for (int64_t jb = j0; jb < j1; jb += kSumCols) {
      const int64_t n = std::min(kSumCols, j1 - jb);
      const float* col = rows + g * H + jb;
      float sum[kSumCols] = {};
      for (int64_t b = 0; b < B; ++b) {
#pragma GCC ivdep
        for (int64_t j = 0; j < n; ++j) sum[j] += col[b * ld + j];
      }
      double* a = acc + g * H + jb;
      for (int64_t j = 0; j < n; ++j) a[j] += sum[j];
    }
  }
}

// d[b ldd + j] += tile[b ld + j] for b < rows, j < n: a block of rows' product added into the carry's cotangent.
inline void add_tile(float* d, int64_t ldd, const float* tile, int64_t ld, int64_t rows, int64_t n) {
  for (int64_t b = 0; b < rows; ++b) {
    float* row = d + b * ldd;
    const float* add = tile + b * ld;
    for (int64_t j = 0; j < n; ++j) row[j] += add[j];
  }
}

// ----------------------------------------------------------------------------------------------- backward
// The backward's gate arithmetic of one row (one example) for n units, as lstm_row's: plain loops over restrict
// pointers, which the compiler vectorizes (inline in the step's loop over j0..j1 GCC kept a scalar loop hot: its
// vector form sat behind run-time checks). gw: the forward's activated gates (gate g of unit j at gw[g H + j]); c, cp:
// c_t and c_{t-1}; dh, dy: the carry's cotangent from the step after and the output's; dc: c_t's from the step after.
// Writes dz (gate g at dz[g H + j]), dc_{t-1} = dc_t f into dc_out and zeros into dh_out (the step's product
// dz W_h^T is added there next).
// LSTM: dc_t = dc + (dh + dy) o (1 - tanh(c)^2); dz = [dc g i (1 - i), dc c_{t-1} f (1 - f), dc i (1 - g^2),
// (dh + dy) tanh(c) o (1 - o)].
// PROJ (LSTMP): dh is the cotangent of m = o tanh(c), the projection's input (the output's already in it: dy is not
// read), m itself is written (for dw_r) and dh_out is not.
template <bool PROJ>
void lstm_row_backward(int64_t n, int64_t H, const float* __restrict gw, const float* __restrict c,
                       const float* __restrict cp, const float* __restrict dh, const float* __restrict dy,
                       const float* __restrict dc, float* __restrict dz, float* __restrict dc_out,
                       float* __restrict dh_out, float* __restrict m) {
  for (int64_t j = 0; j < n; ++j) {
    const float i = gw[j], f = gw[H + j], g = gw[2 * H + j], o = gw[3 * H + j];
    const float tc = fast_tanh(c[j]);
    if (PROJ) m[j] = o * tc;
    const float d = PROJ ? dh[j] : dh[j] + dy[j];
    const float dct = dc[j] + d * o * (1.0f - tc * tc);
    dz[j] = dct * g * i * (1.0f - i);
    dz[H + j] = dct * cp[j] * f * (1.0f - f);
    dz[2 * H + j] = dct * i * (1.0f - g * g);
    dz[3 * H + j] = d * tc * o * (1.0f - o);
    dc_out[j] = dct * f;
    if (!PROJ) dh_out[j] = 0.0f;
  }
}

// GRU, reset_after=True (gw: r z n and s_n + b_hn, as gru_row writes them; hp: h_{t-1}): with d = dh + dy,
// dn = d (1 - z)(1 - n^2), dz = [dn (s_n + b_hn) r (1 - r), d (h_{t-1} - n) z (1 - z), dn], dzn = dn r (the
// candidate's product operand), dh_{t-1} = d z (the products are added next).
void gru_row_backward(int64_t n, int64_t H, const float* __restrict gw, const float* __restrict hp,
                      const float* __restrict dh, const float* __restrict dy, float* __restrict dz,
                      float* __restrict dzn, float* __restrict dh_out) {
  for (int64_t j = 0; j < n; ++j) {
    const float r = gw[j], z = gw[H + j], c = gw[2 * H + j], hw_n = gw[3 * H + j];
    const float d = dh[j] + dy[j];
    const float dn = d * (1.0f - z) * (1.0f - c * c);
    dz[j] = dn * hw_n * r * (1.0f - r);
    dz[H + j] = d * (hp[j] - c) * z * (1.0f - z);
    dz[2 * H + j] = dn;
    dzn[j] = dn * r;
    dh_out[j] = d * z;
  }
}

// Inputs: x [B, T, F] (batch-major, as the forward's); w_i [F, G H]; w_h [H, G H]; h0, c0 [B, H]; h_all, c_all
// [T, B, H]; gates [T, B, 4H] (LSTM, GRU); mask [T, B]; dhs [B, T, H] (batch-major, as the forward's hs); dh_last,
// dc_last [B, H].
// Results: dz [TZ, B, G H] (cotangent of u = x W_i + b) and dzn [TZ, B, H] (GRU: dn r, the cotangent of h_{t-1} W_hn
// + b_hn, where dz's n columns hold dn; else size 0), scratch for TZ <= T steps at a time (the caller's choice:
// _native_scan.dz_steps says why); dh0, dc0 [B, H]; dw [H, G H] = sum_t h_{t-1}^T dz_t (the recurrent kernel's
// cotangent; GRU: dzn_t in its n columns); dx [B, T, F] = dz W_i^T (size 0: not computed) and dw_i [F, G H] = x^T dz
// (the input side's). The last three are large products after each block's steps, with a transposed operand:
// OpenBLAS's sgemm, one per thread over a share of the columns (dw, dw_i) or rows (dx), runs them faster than
// XLA:CPU's dot (at B=128 T=256 F=H=512, LSTM: dx and dw_i 384 + 417 ms in numpy's sgemm, 477 + 588 in XLA's, 2
// threads).
// LSTMP: w_h [P, 4H], w_r [H, P]; h0, dh0, dh_last [B, P], h_all [T, B, P], dhs [B, T, P]; dw [P, 4H], dw_r [H, P] (the
// projection's cotangent, sum_t m_t^T dh_t); for the other kinds w_r and dw_r have size 0. db [G H] = sum_t sum_b dz
// (the bias's cotangent) and db_hn [H] (GRU: the sum of dzn, b_hn's; else size 0), summed in double as the loop
// goes (add_rows) instead of reading dz again afterwards (XLA's sum of dz took about 2% of an LSTM W1 training call).
ffi::Error Backward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w_i,
                    ffi::Buffer<ffi::F32> w_h, ffi::Buffer<ffi::F32> w_r, ffi::Buffer<ffi::F32> h0,
                    ffi::Buffer<ffi::F32> c0, ffi::Buffer<ffi::F32> h_all, ffi::Buffer<ffi::F32> c_all,
                    ffi::Buffer<ffi::F32> gates, ffi::Buffer<ffi::S32> mask, ffi::Buffer<ffi::F32> dhs,
                    ffi::Buffer<ffi::F32> dh_last, ffi::Buffer<ffi::F32> dc_last, ffi::ResultBuffer<ffi::F32> dz,
                    ffi::ResultBuffer<ffi::F32> dzn, ffi::ResultBuffer<ffi::F32> dh0, ffi::ResultBuffer<ffi::F32> dc0,
                    ffi::ResultBuffer<ffi::F32> dw, ffi::ResultBuffer<ffi::F32> dx,
                    ffi::ResultBuffer<ffi::F32> dw_i, ffi::ResultBuffer<ffi::F32> dw_r, ffi::ResultBuffer<ffi::F32> db,
                    ffi::ResultBuffer<ffi::F32> db_hn, int64_t kind, int64_t relu) {
  if (!g_sgemm64 && !g_sgemm32) return ffi::Error::Internal("jaxrnn native: no BLAS set");
  auto dd = dz->dimensions();
  const int64_t T = h_all.dimensions()[0], TZ = dd[0], B = dd[1], G = gates_of(kind), GH = dd[2], H = GH / G;
  const int64_t F = x.dimensions()[2];
  if (x.dimensions()[0] != B || x.dimensions()[1] != T) {
    return ffi::Error::InvalidArgument("jaxrnn native: x must be [B, T, F]");
  }
  if (TZ < 1 || TZ > T) return ffi::Error::InvalidArgument("jaxrnn native: dz must hold 1 to T steps");
  if (w_i.dimensions()[0] != F || w_i.dimensions()[1] != GH) {
    return ffi::Error::InvalidArgument("jaxrnn native: w_i must be [F, G*H]");
  }
  const bool lstm = kind == kLSTM, gru = kind == kGRU, grub = kind == kGRUB, lstmp = kind == kLSTMP;
  const int64_t R = lstmp ? w_h.dimensions()[0] : H;  // the carried h's width (LSTMP: P)
  if (lstmp && (w_r.dimensions().size() != 2 || w_r.dimensions()[0] != H || w_r.dimensions()[1] != R)) {
    return ffi::Error::InvalidArgument("jaxrnn native: LSTMP's w_r must be [H, P]");
  }
  const float* W = w_h.typed_data();
  const float* HA = h_all.typed_data();
  const float* CA = c_all.typed_data();
  const float* GW = gates.typed_data();
  const int32_t* M = mask.typed_data();
  const float* DHS = dhs.typed_data();
  float* DZ = dz->typed_data();
  float* DZN = gru ? dzn->typed_data() : nullptr;  // GRU: dn r, the cotangent of h_{t-1} W_hn + b_hn
  // Step t's rows of dz and dzn: rings of TZ steps (blocks of steps [j TZ, (j + 1) TZ) in turn, below).
  auto dz_at = [&](int64_t t) { return DZ + (t % TZ) * B * GH; };
  auto dzn_at = [&](int64_t t) { return DZN + (t % TZ) * B * H; };
  // Carry cotangents, two alternating slots: slot s & 1 holds the cotangent of the carry after step T - 1 - s.
  std::vector<float> dh_slot(2 * B * R), dc_slot(lstm || lstmp ? 2 * B * H : 0);
  std::memcpy(dh_slot.data(), dh_last.typed_data(), B * R * sizeof(float));
  if (lstm || lstmp) std::memcpy(dc_slot.data(), dc_last.typed_data(), B * H * sizeof(float));

  const int64_t threads = pool_threads(pool);
  const Split sp = split_work(B, H, threads, B * H * GH, (R * GH + (lstmp ? R * H : 0)) * 4);
  const Chunks& ch = sp.units;
  const int64_t nk = (int64_t)ch.start.size() - 1, nj = sp.chunks();  // chunks of units; the job's chunks

  // W_h^T packed per chunk: chunk k's columns are units j0 .. j1 - 1, its rows the G H gate columns of W_h.
  std::vector<int64_t> offset(nk + 1, 0);
  for (int64_t k = 0; k < nk; ++k) offset[k + 1] = offset[k] + GH * round_up(ch.start[k + 1] - ch.start[k], kNR);
  const bool split_n = gru || grub;  // W_h^T's r z and n rows packed apart (below)
  std::vector<float> packed(split_n || lstmp ? 0 : offset[nk]);
  for (int64_t k = 0; k < nk && !split_n && !lstmp; ++k) {
    const int64_t j0 = ch.start[k];
    pack(GH, ch.start[k + 1] - j0, [&](int64_t n, int64_t jj) { return W[(j0 + jj) * GH + n]; },
         packed.data() + offset[k]);
  }
  int64_t widest = 0;
  for (int64_t k = 0; k < nk; ++k) widest = std::max(widest, offset[k + 1] - offset[k]);
  const int64_t rb = row_block(widest * sizeof(float));  // W_h^T of a chunk: GH x its columns
  // Job chunk k's product tiles at tile_of(k): rb rows x its units (by rows, every job chunk has its own).
  std::vector<float> scratch(rb * offset[nk] / std::max<int64_t>(GH, 1) * sp.copies());
  auto tile_of = [&](int64_t k) { return scratch.data() + rb * sp.share(k, offset) / GH; };
  // The bias gradients, sum_t sum_b dz (and for the GRU, of dn r: b_hn's), job chunk k's at db_acc[k] (by units
  // only its own columns; summed after the loop), cache-line aligned: no two owners write one line.
  using Accumulator = std::vector<double, AlignedAllocator<double>>;
  std::vector<Accumulator> db_acc(nj, Accumulator(GH, 0.0)), db_hn_acc(nj, Accumulator(gru ? H : 0, 0.0));
  // GRU and GRUB: W_h^T's rows of the r and z columns, and of the n columns, packed apart per chunk (cols: the
  // chunks' padded widths). The GRU's candidate term multiplies dn r (DZN), not dz's dn: two products a step instead
  // of a copy of dz with dn r in its n columns (a [T, B, 3H] array written and read again, 200 MB at W4).
  std::vector<int64_t> cols(nk + 1, 0);
  std::vector<float> packed_rz, packed_n;
  if (split_n) {
    for (int64_t k = 0; k < nk; ++k) cols[k + 1] = cols[k] + round_up(ch.start[k + 1] - ch.start[k], kNR);
    packed_rz.resize(2 * H * cols[nk]);
    packed_n.resize(H * cols[nk]);
    for (int64_t k = 0; k < nk; ++k) {
      const int64_t j0 = ch.start[k], jc = ch.start[k + 1] - j0;
      pack(2 * H, jc, [&](int64_t n, int64_t jj) { return W[(j0 + jj) * GH + n]; }, packed_rz.data() + 2 * H * cols[k]);
      pack(H, jc, [&](int64_t n, int64_t jj) { return W[(j0 + jj) * GH + 2 * H + n]; }, packed_n.data() + H * cols[k]);
    }
  }

  // Step s < T handles time T - 1 - s; step T adds the last product (into dh0).
  int64_t steps = T + 1;
  std::function<void(int64_t, int64_t)> work = [&](int64_t s, int64_t k) {  // step s of job chunk k: units, rows
    const int64_t u = sp.unit(k), j0 = ch.start[u], j1 = ch.start[u + 1], jc = j1 - j0;
    const int64_t r0 = sp.row0(k), r1 = sp.row1(k);
    float* dh_in = dh_slot.data() + (s & 1) * B * H;
    float* dc_in = lstm ? dc_slot.data() + (s & 1) * B * H : nullptr;
    if (s > 0) {  // complete dh_in: the recurrent product's share, dz_{t+1} W_h^T on this chunk's units (GRU: the
                  // n columns' dz replaced by dn r)
      const float* dz_next = dz_at(T - s);
      float* tile = tile_of(k);
      const int64_t ld = round_up(jc, kNR);
      for (int64_t b0 = r0; b0 < r1; b0 += rb) {
        const int64_t rows = std::min(rb, r1 - b0);
        if (gru) {
          product(rows, jc, 2 * H, dz_next + b0 * GH, GH, packed_rz.data() + 2 * H * cols[u], tile, ld);
          add_tile(dh_in + b0 * H + j0, H, tile, ld, rows, jc);
          product(rows, jc, H, dzn_at(T - s) + b0 * H, H, packed_n.data() + H * cols[u], tile, ld);
        } else {
          product(rows, jc, GH, dz_next + b0 * GH, GH, packed.data() + offset[u], tile, ld);
        }
        add_tile(dh_in + b0 * H + j0, H, tile, ld, rows, jc);
      }
    }
    if (s == T) {
      for (int64_t b = r0; b < r1; ++b) {
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
    for (int64_t b = r0; b < r1; ++b) {
      const int64_t row = t * B + b;
      float* dzb = dz_at(t) + b * GH;
      float* dznb = gru ? dzn_at(t) + b * H : nullptr;
      const float* dhb = dh_in + b * H;
      float* dhob = dh_out + b * H;
      if (!M[row]) {  // padding: the carry's cotangent passes through
        for (int64_t g = 0; g < G; ++g) {
          std::memset(dzb + g * H + j0, 0, jc * sizeof(float));
        }
        if (gru) std::memset(dznb + j0, 0, jc * sizeof(float));
        std::memcpy(dhob + j0, dhb + j0, jc * sizeof(float));
        if (lstm) std::memcpy(dc_out + b * H + j0, dc_in + b * H + j0, jc * sizeof(float));
        continue;
      }
      const float* dys = DHS + (b * T + t) * H;
      if (lstm) {
        const float* gw = GW + row * 4 * H;
        const float* cb = CA + row * H;
        const float* cpb = cp + b * H;
        const float* dcb = dc_in + b * H;
        float* dcob = dc_out + b * H;
        lstm_row_backward<false>(jc, H, gw + j0, cb + j0, cpb + j0, dhb + j0, dys + j0, dcb + j0, dzb + j0,
                                 dcob + j0, dhob + j0, nullptr);
      } else if (gru) {
        const float* gw = GW + row * 4 * H;
        const float* hpb = hp + b * H;
        gru_row_backward(jc, H, gw + j0, hpb + j0, dhb + j0, dys + j0, dzb + j0, dznb + j0, dhob + j0);
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
    add_rows(dz_at(t) + r0 * GH, r1 - r0, GH, H, 0, G, j0, j1, db_acc[k].data());
    if (gru) add_rows(dzn_at(t) + r0 * H, r1 - r0, H, H, 0, 1, j0, j1, db_hn_acc[k].data());
  };
  std::vector<float> tiles;
  if (grub) {
    // GRU, reset_after=False: two items per step and chunk (time t = T - 1 - q at step q).
    // Phase 1 (s = 2 q): dh_t complete on the chunk's units (adding [dr, dz]_{t+1} W_h[:, r z]^T), then
    // dn = dh (1 - z)(1 - n^2) and dz = dh (h_prev - n) z (1 - z) into DZ, and dh_{t-1} = dh z for now.
    // Phase 2 (s = 2 q + 1), once every unit's dn is done: d(r h_prev) = dn W_hn^T on the chunk's units, then
    // dr = d(r h_prev) h_prev r (1 - r) into DZ and dh_{t-1} += d(r h_prev) r. Step 2 T completes dh0.
    tiles.resize(rb * cols[nk] * sp.copies());
    steps = 2 * T + 1;
    work = [&](int64_t s, int64_t k) {  // by rows a job chunk's two phases follow each other on its rows
      const int64_t q = s / 2, u = sp.unit(k), j0 = ch.start[u], j1 = ch.start[u + 1], jc = j1 - j0;
      const int64_t ld = round_up(jc, kNR), r0 = sp.row0(k), r1 = sp.row1(k);
      float* tile = tiles.data() + rb * sp.share(k, cols);
      float* dh_in = dh_slot.data() + (q & 1) * B * H;
      float* dh_out = dh_slot.data() + ((q + 1) & 1) * B * H;
      const int64_t t = T - 1 - q;
      if (s % 2 == 0) {
        if (q > 0) {  // dh_in += [dr, dz]_{t+1} W_h[:, r z]^T on this chunk's units
          for (int64_t b0 = r0; b0 < r1; b0 += rb) {
            const int64_t rows = std::min(rb, r1 - b0);
            product(rows, jc, 2 * H, dz_at(t + 1) + b0 * GH, GH, packed_rz.data() + 2 * H * cols[u], tile, ld);
            add_tile(dh_in + b0 * H + j0, H, tile, ld, rows, jc);
          }
        }
        if (q == T) {
          for (int64_t b = r0; b < r1; ++b) {
            std::memcpy(dh0->typed_data() + b * H + j0, dh_in + b * H + j0, jc * sizeof(float));
          }
          return;
        }
        const float* hp = t == 0 ? h0.typed_data() : HA + (t - 1) * B * H;
        for (int64_t b = r0; b < r1; ++b) {
          const int64_t row = t * B + b;
          float* dzb = dz_at(t) + b * GH;
          const float* dhb = dh_in + b * H;
          float* dhob = dh_out + b * H;
          if (!M[row]) {  // padding: the carry's cotangent passes through
            for (int64_t g = 0; g < G; ++g) std::memset(dzb + g * H + j0, 0, jc * sizeof(float));
            std::memcpy(dhob + j0, dhb + j0, jc * sizeof(float));
            continue;
          }
          const float* dys = DHS + (b * T + t) * H;
          const float* gw = GW + row * 4 * H;
          const float* hpb = hp + b * H;
#pragma GCC ivdep
          for (int64_t j = j0; j < j1; ++j) {
            const float z = gw[H + j], n = gw[2 * H + j];
            const float dh = dhb[j] + dys[j];
            dzb[H + j] = dh * (hpb[j] - n) * z * (1.0f - z);
            dzb[2 * H + j] = dh * (1.0f - z) * (1.0f - n * n);
            dhob[j] = dh * z;
          }
        }
        add_rows(dz_at(t) + r0 * GH, r1 - r0, GH, H, 1, 3, j0, j1, db_acc[k].data());
        return;
      }
      const float* hp = t == 0 ? h0.typed_data() : HA + (t - 1) * B * H;
      for (int64_t b0 = r0; b0 < r1; b0 += rb) {  // d(r h_prev) = dn W_hn^T on this chunk's units
        const int64_t rows = std::min(rb, r1 - b0);
        product(rows, jc, H, dz_at(t) + b0 * GH + 2 * H, GH, packed_n.data() + H * cols[u], tile, ld);
        for (int64_t b = 0; b < rows; ++b) {
          const int64_t row = t * B + b0 + b;
          if (!M[row]) continue;  // phase 1 zeroed its dr and passed dh through
          const float* gw = GW + row * 4 * H;
          const float* hpb = hp + (b0 + b) * H;
          const float* drh = tile + b * ld - j0;
          float* dzb = dz_at(t) + (b0 + b) * GH;
          float* dhob = dh_out + (b0 + b) * H;
#pragma GCC ivdep
          for (int64_t j = j0; j < j1; ++j) {
            const float r = gw[j];
            dzb[j] = drh[j] * hpb[j] * r * (1.0f - r);
            dhob[j] += drh[j] * r;
          }
        }
      }
      add_rows(dz_at(t) + r0 * GH, r1 - r0, GH, H, 0, 1, j0, j1, db_acc[k].data());
    };
  }
  // LSTMP: the full cotangent of every step's h (dhs added; zero at padding) and m = o tanh(c), for dw_r after the loop.
  // Steps: 0 sets DH for t = T - 1; 2 q + 1 (t = T - 1 - q, chunks of the H units): dm = DH_t W_r^T, the gates'
  // cotangents into DZ and c's; 2 q + 2 (chunks of the P outputs, pstart): dh_{t-1} = dz_t W_h^T (padding: passed
  // through), then DH_{t-1} (or dh0).
  std::vector<int64_t> pstart(nk + 1, 0), pcols(nk + 1, 0), ucols(nk + 1, 0);
  std::vector<float> DH, MA, packed_whT, packed_wrT, ptiles, utiles;
  if (lstmp) {
    const float* WR = w_r.typed_data();
    for (int64_t k = 0; k <= nk; ++k) pstart[k] = k * R / nk;
    for (int64_t k = 0; k < nk; ++k) {
      pcols[k + 1] = pcols[k] + round_up(pstart[k + 1] - pstart[k], kNR);
      ucols[k + 1] = ucols[k] + round_up(ch.start[k + 1] - ch.start[k], kNR);
    }
    DH.resize(T * B * R);
    MA.resize(T * B * H);
    packed_whT.resize(GH * pcols[nk]);
    packed_wrT.resize(R * ucols[nk]);
    ptiles.resize(rb * pcols[nk] * sp.copies());
    utiles.resize(rb * ucols[nk] * sp.copies());
    for (int64_t k = 0; k < nk; ++k) {
      const int64_t p0 = pstart[k], j0 = ch.start[k];
      pack(GH, pstart[k + 1] - p0, [&](int64_t n, int64_t pp) { return W[(p0 + pp) * GH + n]; },
           packed_whT.data() + GH * pcols[k]);
      pack(R, ch.start[k + 1] - j0, [&](int64_t n, int64_t jj) { return WR[(j0 + jj) * R + n]; },
           packed_wrT.data() + R * ucols[k]);
    }
    // DH rows [r0, r1) of step t on outputs [p0, p1): dh + dhs_t, zero at padding.
    auto full_dh = [&](int64_t t, const float* dh, int64_t p0, int64_t p1, int64_t r0, int64_t r1) {
      for (int64_t b = r0; b < r1; ++b) {
        float* d = DH.data() + (t * B + b) * R;
        const float* ys = DHS + (b * T + t) * R;
        const float* in = dh + b * R;
        for (int64_t p = p0; p < p1; ++p) d[p] = M[t * B + b] ? in[p] + ys[p] : 0.0f;
      }
    };
    steps = 2 * T + 1;
    work = [&, full_dh](int64_t s, int64_t k) {  // by rows a job chunk's steps all run on its rows
      const int64_t u = sp.unit(k), r0 = sp.row0(k), r1 = sp.row1(k);
      if (s == 0) {
        full_dh(T - 1, dh_slot.data(), pstart[u], pstart[u + 1], r0, r1);
        return;
      }
      const int64_t q = (s - 1) / 2, t = T - 1 - q;
      if (s % 2 == 1) {  // the chunk's H units
        const int64_t j0 = ch.start[u], j1 = ch.start[u + 1], jc = j1 - j0, ld = round_up(jc, kNR);
        float* tile = utiles.data() + rb * sp.share(k, ucols);
        const float* dc_in = dc_slot.data() + (q & 1) * B * H;
        float* dc_out = dc_slot.data() + ((q + 1) & 1) * B * H;
        const float* cp = t == 0 ? c0.typed_data() : CA + (t - 1) * B * H;
        for (int64_t b0 = r0; b0 < r1; b0 += rb) {
          const int64_t rows = std::min(rb, r1 - b0);
          product(rows, jc, R, DH.data() + (t * B + b0) * R, R, packed_wrT.data() + R * ucols[u], tile, ld);
          for (int64_t bb = 0; bb < rows; ++bb) {
            const int64_t b = b0 + bb, row = t * B + b;
            float* dzb = dz_at(t) + b * GH;
            float* mb = MA.data() + row * H;
            if (!M[row]) {  // padding: c's cotangent passes through
              for (int64_t g = 0; g < 4; ++g) std::memset(dzb + g * H + j0, 0, jc * sizeof(float));
              std::memset(mb + j0, 0, jc * sizeof(float));
              std::memcpy(dc_out + b * H + j0, dc_in + b * H + j0, jc * sizeof(float));
              continue;
            }
            const float* gw = GW + row * 4 * H;
            const float* cb = CA + row * H;
            const float* cpb = cp + b * H;
            const float* dcb = dc_in + b * H;
            const float* dm = tile + bb * ld;  // the cotangent of m on the chunk's units
            lstm_row_backward<true>(jc, H, gw + j0, cb + j0, cpb + j0, dm, nullptr, dcb + j0, dzb + j0,
                                    dc_out + b * H + j0, nullptr, mb + j0);
          }
        }
        add_rows(dz_at(t) + r0 * GH, r1 - r0, GH, H, 0, 4, j0, j1, db_acc[k].data());
        if (t == 0) {
          for (int64_t b = r0; b < r1; ++b) {
            std::memcpy(dc0->typed_data() + b * H + j0, dc_out + b * H + j0, jc * sizeof(float));
          }
        }
        return;
      }
      // the chunk's P outputs: dh_{t-1} = dz_t W_h^T
      const int64_t p0 = pstart[u], p1 = pstart[u + 1], pc = p1 - p0, ld = round_up(pc, kNR);
      float* tile = ptiles.data() + rb * sp.share(k, pcols);
      const float* dh_in = dh_slot.data() + (q & 1) * B * R;
      float* dh_out = dh_slot.data() + ((q + 1) & 1) * B * R;
      for (int64_t b0 = r0; b0 < r1 && pc > 0; b0 += rb) {
        const int64_t rows = std::min(rb, r1 - b0);
        product(rows, pc, GH, dz_at(t) + b0 * GH, GH, packed_whT.data() + GH * pcols[u], tile, ld);
        for (int64_t bb = 0; bb < rows; ++bb) {
          const int64_t b = b0 + bb;
          const float* from = M[t * B + b] ? tile + bb * ld : dh_in + b * R + p0;
          std::memcpy(dh_out + b * R + p0, from, pc * sizeof(float));
        }
      }
      if (t > 0) {
        full_dh(t - 1, dh_out, p0, p1, r0, r1);
      } else {
        for (int64_t b = r0; b < r1; ++b) {
          std::memcpy(dh0->typed_data() + b * R + p0, dh_out + b * R + p0, pc * sizeof(float));
        }
      }
    };
  }
  // The products of dz after its steps, block by block: the steps of times [ta, tb) fill the ring (from tb - 1 down),
  // then the block's share of dw, dw_i (chunk k: columns [k GH / n, (k + 1) GH / n)) and dx (chunk k: a share of the
  // block's rows), over as many threads as there are (the loop's chunks follow H; these follow the products' size).
  // The first block (the last times) writes dw and dw_i, the others add to them.
  // x and dx are batch-major, dz's rows time-major: x's rows of a block are gathered (x_block) for x^T dz, and dz W_i^T
  // goes through dx_block to dx's rows (a copy of the block's rows, where XLA's transposes of x and dx copied all of
  // them through two more [T, B, F] buffers).
  const float* X = x.typed_data();
  float* DX = dx->typed_data();
  const bool with_dx = dx->element_count() > 0;  // size 0: the caller needs no dx (inputs not differentiated)
  std::vector<float> x_block(TZ * B * F), dx_block(with_dx ? TZ * B * F : 0);
  auto block_products = [&](int64_t ta, int64_t tb) {
    const int64_t rows = (tb - ta) * B, macs = rows * GH * (H + 2 * F);
    auto last = std::make_shared<Job>(std::max<int64_t>(1, std::min<int64_t>(threads, macs / kChunkMacs)));
    last->steps = 2;  // 0: a chunk's share of the block's rows; 1: its share of dw's and dw_i's columns
    const int64_t n = last->chunks;
    const float beta = tb == T ? 0.0f : 1.0f;
    last->work = [&, ta, tb, rows, n, beta](int64_t step, int64_t k) {
      if (step == 0) {  // rows r = (t - ta) B + b in [r0, r1): x's gathered, dx = dz W_i^T
        const int64_t r0 = k * rows / n, r1 = (k + 1) * rows / n;
        auto batch_major = [&](int64_t r) { return ((r % B) * T + ta + r / B) * F; };  // row r's offset in x, dx
        for (int64_t r = r0; r < r1; ++r) {
          std::memcpy(x_block.data() + r * F, X + batch_major(r), F * sizeof(float));
        }
        if (!with_dx) return;
        sgemm(false, true, r1 - r0, F, GH, dz_at(ta) + r0 * GH, GH, w_i.typed_data(), GH, 0.0f,
              dx_block.data() + r0 * F, F);
        for (int64_t r = r0; r < r1; ++r) {
          std::memcpy(DX + batch_major(r), dx_block.data() + r * F, F * sizeof(float));
        }
        return;
      }
      const int64_t n0 = k * GH / n, n1 = (k + 1) * GH / n;
      // h_{t-1}^T dz_t (h0 at t = 0); the GRU's n columns multiply dn r (DZN) instead of dn, GRUB's dn multiplies
      // r h_{t-1} (the gates' 4th slot).
      auto recurrent = [&](int64_t col0, int64_t col1, int64_t width, const float* z, int64_t ldz) {
        if (col1 <= col0) return;
        float* out = dw->typed_data() + col0;
        float scale = beta;  // of what out holds
        const int64_t t1 = std::max<int64_t>(ta, 1);
        if (ta == 0) {
          sgemm(true, false, width, col1 - col0, B, h0.typed_data(), width, z, ldz, scale, out, GH);
          scale = 1.0f;
        }
        if (tb > t1) {
          sgemm(true, false, width, col1 - col0, (tb - t1) * B, HA + (t1 - 1) * B * width, width,
                z + (t1 - ta) * B * ldz, ldz, scale, out, GH);
        }
      };
      const int64_t m1 = split_n ? std::min(n1, 2 * H) : n1, m0 = std::max(n0, m1);
      recurrent(n0, m1, R, dz_at(ta) + n0, GH);
      if (n1 > m0 && grub) {
        sgemm(true, false, H, n1 - m0, rows, GW + ta * B * 4 * H + 3 * H, 4 * H, dz_at(ta) + m0, GH, beta,
              dw->typed_data() + m0, GH);
      } else if (n1 > m0) {
        recurrent(m0, n1, H, dzn_at(ta) + m0 - 2 * H, H);
      }
      sgemm(true, false, F, n1 - n0, rows, x_block.data(), F, dz_at(ta) + n0, GH, beta, dw_i->typed_data() + n0, GH);
      const int64_t q0 = k * R / n, q1 = (k + 1) * R / n;  // LSTMP: dw_r = sum_t m_t^T DH_t, columns [q0, q1)
      if (lstmp && ta == 0 && q1 > q0) {
        sgemm(true, false, H, q1 - q0, T * B, MA.data(), H, DH.data() + q0, R, 0.0f, dw_r->typed_data() + q0, R);
      }
    };
    run_job(pool, last, threads);
  };
  // The loop's steps, block by block: those of the q-th time from the end start at first_step(q) (q = T: the end).
  auto first_step = [&](int64_t q) -> int64_t {
    if (q == T) return steps;
    if (grub) return 2 * q;
    if (lstmp) return q == 0 ? 0 : 2 * q + 1;
    return q;
  };
  for (int64_t tb = T; tb > 0;) {
    const int64_t ta = (tb - 1) / TZ * TZ, s0 = first_step(T - tb);
    run_steps(pool, work, s0, first_step(T - ta), nj, threads, sp.segment(steps));
    block_products(ta, tb);
    tb = ta;
  }
  for (int64_t k = 1; k < nj; ++k) {  // the job chunks' sums
    for (int64_t n = 0; n < GH; ++n) db_acc[0][n] += db_acc[k][n];
    for (int64_t j = 0; j < (int64_t)db_hn_acc[k].size(); ++j) db_hn_acc[0][j] += db_hn_acc[k][j];
  }
  for (int64_t n = 0; n < GH; ++n) db->typed_data()[n] = static_cast<float>(db_acc[0][n]);
  for (int64_t j = 0; j < (int64_t)db_hn_acc[0].size(); ++j) {
    db_hn->typed_data()[j] = static_cast<float>(db_hn_acc[0][j]);
  }

  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxrnnRnnForward, Forward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // x
                                  .Arg<ffi::Buffer<ffi::F32>>()  // w_i
                                  .Arg<ffi::Buffer<ffi::F32>>()  // bias
                                  .Arg<ffi::Buffer<ffi::F32>>()  // w_h
                                  .Arg<ffi::Buffer<ffi::F32>>()  // b_hn (GRU), w_r (LSTMP)
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
                                  .Attr<int64_t>("train")
                                  .Attr<int64_t>("projected"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxrnnRnnBackward, Backward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // x
                                  .Arg<ffi::Buffer<ffi::F32>>()  // w_i
                                  .Arg<ffi::Buffer<ffi::F32>>()  // w_h
                                  .Arg<ffi::Buffer<ffi::F32>>()  // w_r (LSTMP; else size 0)
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
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dzn (GRU; else size 0)
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dh0
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dc0
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dw
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dx
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dw_i
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dw_r (LSTMP; else size 0)
                                  .Ret<ffi::Buffer<ffi::F32>>()  // db
                                  .Ret<ffi::Buffer<ffi::F32>>()  // db_hn (GRU; else size 0)
                                  .Attr<int64_t>("kind")
                                  .Attr<int64_t>("relu"));

// Which micro-kernels this build compiled (-march=native picks them): for jaxrnn.native.reason() and benchmark
// headers, since the same source runs at different speeds on machines with and without AVX-512.
extern "C" const char* jaxrnn_native_kernels() {
#if defined(__AVX512F__)
  return "AVX-512";
#elif defined(__AVX2__) && defined(__FMA__)
  return "AVX2 + FMA";
#else
  return "portable C++";
#endif
}

// Called once at load with the addresses of numpy's BLAS: an ILP64 (int64_t dims) or an LP64 cblas_sgemm, and
// openblas_set_num_threads_local (or 0).
extern "C" int jaxrnn_native_set_blas(void* sgemm, int ilp64, void* set_threads_local) {
  if (ilp64) {
    g_sgemm64 = reinterpret_cast<sgemm64_t>(sgemm);
  } else {
    g_sgemm32 = reinterpret_cast<sgemm32_t>(sgemm);
  }
  g_set_threads_local = reinterpret_cast<set_threads_t>(set_threads_local);
  return 0;
}
