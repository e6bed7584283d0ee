/*
 * The fused contrastive log-sum-exp, lse_i = log sum_{j != i} exp(f_i.f_j / tau), and its gradient,
 * walking the similarity matrix in tiles (memory O(tile), never M x M), rows split among threads.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "engine.h"

enum { TILE_ROWS = 256, TILE_COLS = 1024 };

/*
 * exp(x) for x <= 0 in a form compilers vectorise (Cephes' expf: range reduction to |r| <= ln2/2,
 * degree-6 polynomial, exponent built in the float's bits): ~1 ulp, 4-16 lanes at a time, where
 * libm's expf is called once per element. Arguments below -87 give exp(-87) ~ 1e-38, not 0:
 * added to a sum holding exp(0) = 1 it changes nothing. Positive arguments (only ever a diagonal
 * element, overwritten afterwards) give a finite wrong value; a second clamp for them costs 3x.
 */
static inline __attribute__((always_inline)) float exp_nonpositive(float x) {
  x = x < -87.0f ? -87.0f : x;
  const float k = (float)(int32_t)(x * 1.44269504088896341f - 0.5f); /* round(x/ln2), x <= 0 */
  const float r = x - k * 0.693359375f + k * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  union { uint32_t i; float f; } scale = {.i = (uint32_t)((int32_t)k + 127) << 23};
  return y * scale.f;
}

/* One tile buffer per thread, kept between calls (fresh pages cost ~10 us each to touch here). */
static _Thread_local float *thread_tile = NULL;

static float *tile_buffer(void) {
  if (!thread_tile) thread_tile = malloc(TILE_ROWS * TILE_COLS * sizeof(float));
  return thread_tile;
}

/*
 * The fused kernels split the rows of the similarity matrix among threads (OpenMP, when compiled
 * with it), each calling single-threaded GEMMs on its own tiles: the exp work, which a
 * multithreaded BLAS leaves on one core, then runs on all of them.
 */
static int begin_row_parallel(void) {
  const int saved = openblas_get_num_threads();
#ifdef _OPENMP
  openblas_set_num_threads(1);
#endif
  return saved;
}

static void end_row_parallel(int saved) { openblas_set_num_threads(saved); }

/*
 * lse(F, M, D, invTau, out): out[i] = log sum_{j != i} exp(invTau * f_i.f_j), walking the similarity
 * matrix in TILE_ROWS x TILE_COLS tiles with an online log-sum-exp: memory O(tile), never M x M.
 */
napi_value FusedLse(napi_env env, napi_callback_info info) {
  ARGS(env, info, 5, argv, "fusedLse");
  float *f, *out;
  size_t lf, lo;
  int64_t m, d;
  double inv_tau;
  if (!float32_view(env, argv[0], &f, &lf) || !get_int(env, argv[1], &m) || !get_int(env, argv[2], &d) ||
      !float32_view(env, argv[4], &out, &lo))
    return NULL;
  CHECK(env, napi_get_value_double(env, argv[3], &inv_tau));
  REQUIRE(env, m >= 2 && d >= 1 && (size_t)(m * d) <= lf && (size_t)m <= lo, "fusedLse: bad sizes");
  const int64_t blocks = (m + TILE_ROWS - 1) / TILE_ROWS;
  int failed = 0;
  const int saved = begin_row_parallel();
#pragma omp parallel for schedule(dynamic)
  for (int64_t b = 0; b < blocks; b++) {
    float *tile = tile_buffer();
    if (!tile) {
      failed = 1;
      continue;
    }
    const int64_t r0 = b * TILE_ROWS, rows = m - r0 < TILE_ROWS ? m - r0 : TILE_ROWS;
    double maxv[TILE_ROWS], sum[TILE_ROWS];
    for (int64_t r = 0; r < rows; r++) { maxv[r] = -INFINITY; sum[r] = 0.0; }
    for (int64_t c0 = 0; c0 < m; c0 += TILE_COLS) {
      const int64_t cols = m - c0 < TILE_COLS ? m - c0 : TILE_COLS;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, d, (float)inv_tau, f + r0 * d, d, f + c0 * d, d, 0.0f, tile, cols);
      for (int64_t r = 0; r < rows; r++) {
        float *t = tile + r * cols;
        const int64_t self = r0 + r - c0;
        if (self >= 0 && self < cols) t[self] = -INFINITY;
        float tmax = -INFINITY;
#pragma omp simd reduction(max : tmax)
        for (int64_t c = 0; c < cols; c++) tmax = t[c] > tmax ? t[c] : tmax;
        if (tmax > maxv[r]) { sum[r] *= exp(maxv[r] - tmax); maxv[r] = tmax; }
        const float mx = (float)maxv[r];
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int64_t c = 0; c < cols; c++) acc += exp_nonpositive(t[c] - mx);
        sum[r] += acc;
      }
    }
    for (int64_t r = 0; r < rows; r++) out[r0 + r] = (float)(maxv[r] + log(sum[r]));
  }
  end_row_parallel(saved);
  REQUIRE(env, !failed, "fusedLse: out of memory");
  return NULL;
}

/*
 * lseGrad(F, lse, dy, M, D, invTau, out): the gradient of sum_i dy_i lse_i w.r.t. F,
 * out = invTau (P + P^T) F with P_ij = dy_i exp(invTau f_i.f_j - lse_i), P_ii = 0. The similarity
 * matrix is symmetric, so (P^T)_ij = dy_j exp(s_ij - lse_j) comes from the same tile: each row
 * block computes its rows of out alone (two GEMMs per tile, no writes shared between threads).
 */
napi_value FusedLseGrad(napi_env env, napi_callback_info info) {
  ARGS(env, info, 7, argv, "fusedLseGrad");
  float *f, *lse, *dy, *out;
  size_t lf, ll, ld, lo;
  int64_t m, d;
  double inv_tau;
  if (!float32_view(env, argv[0], &f, &lf) || !float32_view(env, argv[1], &lse, &ll) || !float32_view(env, argv[2], &dy, &ld) ||
      !get_int(env, argv[3], &m) || !get_int(env, argv[4], &d) || !float32_view(env, argv[6], &out, &lo))
    return NULL;
  CHECK(env, napi_get_value_double(env, argv[5], &inv_tau));
  REQUIRE(env, m >= 2 && (size_t)(m * d) <= lf && (size_t)m <= ll && (size_t)m <= ld && (size_t)(m * d) <= lo, "fusedLseGrad: bad sizes");
  const int64_t blocks = (m + TILE_ROWS - 1) / TILE_ROWS;
  int failed = 0;
  const int saved = begin_row_parallel();
#pragma omp parallel for schedule(dynamic)
  for (int64_t b = 0; b < blocks; b++) {
    float *tile = tile_buffer();
    if (!tile) {
      failed = 1;
      continue;
    }
    const int64_t r0 = b * TILE_ROWS, rows = m - r0 < TILE_ROWS ? m - r0 : TILE_ROWS;
    for (int64_t c0 = 0; c0 < m; c0 += TILE_COLS) {
      const int64_t cols = m - c0 < TILE_COLS ? m - c0 : TILE_COLS;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, d, (float)inv_tau, f + r0 * d, d, f + c0 * d, d, 0.0f, tile, cols);
      const float *lc = lse + c0, *wc = dy + c0;
      for (int64_t r = 0; r < rows; r++) {
        float *t = tile + r * cols;
        const int64_t self = r0 + r - c0;
        const float l = lse[r0 + r], w = dy[r0 + r];
#pragma omp simd
        for (int64_t c = 0; c < cols; c++)
          t[c] = w * exp_nonpositive(t[c] - l) + wc[c] * exp_nonpositive(t[c] - lc[c]);
        if (self >= 0 && self < cols) t[self] = 0.0f;
      }
      /* rows of out += invTau T F[cols] */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, d, cols, (float)inv_tau, tile, cols, f + c0 * d, d,
                  c0 == 0 ? 0.0f : 1.0f, out + r0 * d, d);
    }
  }
  end_row_parallel(saved);
  REQUIRE(env, !failed, "fusedLseGrad: out of memory");
  return NULL;
}

/* Threads the fused loss splits its rows among; 0 when built without OpenMP (then 1). */
napi_value ParallelThreads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
#ifdef _OPENMP
  CHECK(env, napi_create_int32(env, omp_get_max_threads(), &result));
#else
  CHECK(env, napi_create_int32(env, 0, &result));
#endif
  return result;
}
