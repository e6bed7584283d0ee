/*
 * Training-mode batch norm over the rows of x [rows, C]: forward and exact gradient, float64 sums.
 * The rows are summed in a fixed number of chunks (OpenMP spreads them over the cores), combined
 * in chunk order, so results depend on the shape only, never on the thread count; the loops run
 * across columns, so each column's sum is sequential whichever vector width a clone uses.
 * Also inference-mode batch norm (tfjs's FusedBatchNorm: the statistics given), one pass.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

enum { CHUNKS = 16 };
/* Below this many elements one thread is faster than waking the others, and on a busy machine a
 * parallel region can wait milliseconds for a descheduled thread: only large layers are split. */
static const int64_t PARALLEL_MIN = 1 << 20;

static inline int64_t chunk_start(int64_t rows, int chunk) { return rows * chunk / CHUNKS; }

VECTOR_CLONES static void add_rows(const float *x, int64_t r0, int64_t r1, int64_t cols, double *acc) {
  for (int64_t r = r0; r < r1; r++) {
    const float *row = x + r * cols;
    for (int64_t c = 0; c < cols; c++) acc[c] += row[c];
  }
}

VECTOR_CLONES static void add_squared_deviations(const float *x, int64_t r0, int64_t r1, int64_t cols,
                                                 const double *mu, double *acc) {
  for (int64_t r = r0; r < r1; r++) {
    const float *row = x + r * cols;
    for (int64_t c = 0; c < cols; c++) {
      const double d = row[c] - mu[c];
      acc[c] += d * d;
    }
  }
}

VECTOR_CLONES static void normalize_rows(const float *x, int64_t r0, int64_t r1, int64_t cols, const double *mu,
                                         const double *scale, const float *beta, float *y) {
  for (int64_t r = r0; r < r1; r++) {
    const float *row = x + r * cols;
    float *out = y + r * cols;
    for (int64_t c = 0; c < cols; c++) out[c] = (float)((row[c] - mu[c]) * scale[c] + beta[c]);
  }
}

VECTOR_CLONES static void add_gradient_sums(const float *x, const float *dy, int64_t r0, int64_t r1, int64_t cols,
                                            const double *mu, double *sb, double *sg) {
  for (int64_t r = r0; r < r1; r++) {
    const float *xr = x + r * cols, *dr = dy + r * cols;
    for (int64_t c = 0; c < cols; c++) {
      sb[c] += dr[c];
      sg[c] += dr[c] * (xr[c] - mu[c]);
    }
  }
}

VECTOR_CLONES static void input_gradient_rows(const float *x, const float *dy, int64_t r0, int64_t r1, int64_t cols,
                                              const double *mu, const double *s, const double *k, const double *sb,
                                              const double *sg, double inv_m, float *dx) {
  for (int64_t r = r0; r < r1; r++) {
    const float *xr = x + r * cols, *dr = dy + r * cols;
    float *out = dx + r * cols;
    for (int64_t c = 0; c < cols; c++) {
      const double xhat = (xr[c] - mu[c]) * s[c];
      out[c] = (float)(k[c] * (dr[c] - sb[c] * inv_m - xhat * sg[c] * inv_m));
    }
  }
}

/* total[c] = sum over chunks, in chunk order, of partial[chunk * cols + c] */
static void combine_chunks(const double *partial, int64_t cols, double *total) {
  for (int64_t c = 0; c < cols; c++) total[c] = 0.0;
  for (int ch = 0; ch < CHUNKS; ch++)
    for (int64_t c = 0; c < cols; c++) total[c] += partial[ch * cols + c];
}

/*
 * batchNorm(x, rows, cols, gamma, beta, eps, y, mean, variance): training-mode batch
 * norm over the rows of x [rows, cols] in one call: batch mean and (biased) variance, accumulated
 * in float64 in two passes, and y = (x - mean) / sqrt(variance + eps) * gamma + beta.
 */
napi_value BatchNorm(napi_env env, napi_callback_info info) {
  ARGS(env, info, 9, argv, "batchNorm");
  float *x, *gamma, *beta, *y, *mean, *var;
  size_t lx, lg, lb, ly, lm, lv;
  int64_t rows, cols;
  double eps;
  if (!float32_view(env, argv[0], &x, &lx) || !get_int(env, argv[1], &rows) || !get_int(env, argv[2], &cols))
    return NULL;
  if (!float32_view(env, argv[3], &gamma, &lg) || !float32_view(env, argv[4], &beta, &lb)) return NULL;
  CHECK(env, napi_get_value_double(env, argv[5], &eps));
  if (!float32_view(env, argv[6], &y, &ly) || !float32_view(env, argv[7], &mean, &lm) ||
      !float32_view(env, argv[8], &var, &lv))
    return NULL;
  REQUIRE(env, rows > 0 && cols > 0, "batchNorm: sizes must be > 0");
  REQUIRE(env, (size_t)(rows * cols) <= lx && (size_t)(rows * cols) <= ly && (size_t)cols <= lm &&
                   (size_t)cols <= lv && (size_t)cols <= lg && (size_t)cols <= lb,
          "batchNorm: a buffer is smaller than its shape");
  /* per column: mean, sum of squared deviations (then the scale), and CHUNKS partial sums */
  double *acc = calloc((size_t)cols * (2 + CHUNKS), sizeof(double));
  REQUIRE(env, acc != NULL, "batchNorm: out of memory");
  double *mu = acc, *sq = acc + cols, *partial = acc + 2 * cols;
  const bool parallel = rows * cols >= PARALLEL_MIN;
#pragma omp parallel for schedule(static) if (parallel)
  for (int ch = 0; ch < CHUNKS; ch++) add_rows(x, chunk_start(rows, ch), chunk_start(rows, ch + 1), cols, partial + ch * cols);
  combine_chunks(partial, cols, mu);
  for (int64_t c = 0; c < cols; c++) mu[c] /= (double)rows;
  memset(partial, 0, (size_t)cols * CHUNKS * sizeof(double));
#pragma omp parallel for schedule(static) if (parallel)
  for (int ch = 0; ch < CHUNKS; ch++)
    add_squared_deviations(x, chunk_start(rows, ch), chunk_start(rows, ch + 1), cols, mu, partial + ch * cols);
  combine_chunks(partial, cols, sq);
  /* reuse sq for the per-column scale, and var/mean as float outputs */
  for (int64_t c = 0; c < cols; c++) {
    mean[c] = (float)mu[c];
    var[c] = (float)(sq[c] / (double)rows);
    sq[c] = gamma[c] / sqrt(sq[c] / (double)rows + eps);
  }
#pragma omp parallel for schedule(static) if (parallel)
  for (int ch = 0; ch < CHUNKS; ch++)
    normalize_rows(x, chunk_start(rows, ch), chunk_start(rows, ch + 1), cols, mu, sq, beta, y);
  free(acc);
  return NULL;
}

/*
 * batchNormGrad(x, dy, mean, variance, gamma, rows, cols, eps, dx, dgamma, dbeta): the exact
 * gradient of batchNorm (through the batch mean and variance too), with x̂ = (x - mean)·s,
 * s = 1/sqrt(variance + eps):  dβ = Σ dy,  dγ = Σ dy·x̂,  dx = γ·s·(dy - dβ/M - x̂·dγ/M).
 */
napi_value BatchNormGrad(napi_env env, napi_callback_info info) {
  ARGS(env, info, 11, argv, "batchNormGrad");
  float *x, *dy, *mean, *var, *gamma, *dx, *dgamma, *dbeta;
  size_t lx, ld, lm, lv, lg, ldx, ldg, ldb;
  int64_t rows, cols;
  double eps;
  if (!float32_view(env, argv[0], &x, &lx) || !float32_view(env, argv[1], &dy, &ld) ||
      !float32_view(env, argv[2], &mean, &lm) || !float32_view(env, argv[3], &var, &lv))
    return NULL;
  if (!float32_view(env, argv[4], &gamma, &lg)) return NULL;
  if (!get_int(env, argv[5], &rows) || !get_int(env, argv[6], &cols)) return NULL;
  CHECK(env, napi_get_value_double(env, argv[7], &eps));
  if (!float32_view(env, argv[8], &dx, &ldx) || !float32_view(env, argv[9], &dgamma, &ldg) ||
      !float32_view(env, argv[10], &dbeta, &ldb))
    return NULL;
  REQUIRE(env, rows > 0 && cols > 0, "batchNormGrad: sizes must be > 0");
  const size_t size = (size_t)(rows * cols);
  REQUIRE(env, size <= lx && size <= ld && size <= ldx && (size_t)cols <= lm && (size_t)cols <= lv &&
                   (size_t)cols <= ldg && (size_t)cols <= ldb && (size_t)cols <= lg,
          "batchNormGrad: a buffer is smaller than its shape");
  /* per column: Σ dy, Σ dy·x̂, s, mean, γ·s, then CHUNKS partial sums of each of the first two */
  double *acc = calloc((size_t)cols * (5 + 2 * CHUNKS), sizeof(double));
  REQUIRE(env, acc != NULL, "batchNormGrad: out of memory");
  double *sb = acc, *sg = acc + cols, *s = acc + 2 * cols, *mu = acc + 3 * cols, *k = acc + 4 * cols;
  double *partial_b = acc + 5 * cols, *partial_g = partial_b + CHUNKS * cols;
  for (int64_t c = 0; c < cols; c++) {
    s[c] = 1.0 / sqrt((double)var[c] + eps);
    mu[c] = mean[c];
  }
  const bool parallel = rows * cols >= PARALLEL_MIN;
#pragma omp parallel for schedule(static) if (parallel)
  for (int ch = 0; ch < CHUNKS; ch++)
    add_gradient_sums(x, dy, chunk_start(rows, ch), chunk_start(rows, ch + 1), cols, mu, partial_b + ch * cols,
                      partial_g + ch * cols);
  combine_chunks(partial_b, cols, sb);
  combine_chunks(partial_g, cols, sg);
  for (int64_t c = 0; c < cols; c++) {
    sg[c] *= s[c]; /* Σ dy·x̂ */
    dbeta[c] = (float)sb[c];
    dgamma[c] = (float)sg[c];
    k[c] = gamma[c] * s[c];
  }
  const double inv_m = 1.0 / (double)rows;
#pragma omp parallel for schedule(static) if (parallel)
  for (int ch = 0; ch < CHUNKS; ch++)
    input_gradient_rows(x, dy, chunk_start(rows, ch), chunk_start(rows, ch + 1), cols, mu, s, k, sb, sg, inv_m, dx);
  free(acc);
  return NULL;
}

/* Rows of at least this many elements per block, so a block is a few pages of x and y. */
enum { INFERENCE_BLOCK = 1 << 14 };

VECTOR_CLONES static void affine_rows(const float *x, int64_t r0, int64_t r1, int64_t cols, const float *mean,
                                      const float *a, const float *offset, float *y) {
  for (int64_t r = r0; r < r1; r++) {
    const float *row = x + r * cols;
    float *out = y + r * cols;
    for (int64_t c = 0; c < cols; c++) out[c] = (row[c] - mean[c]) * a[c] + offset[c];
  }
}

/*
 * batchNormInference(x, rows, cols, mean, variance, offset | null, scale | null, eps, y): tfjs's
 * FusedBatchNorm (statistics given) over the last axis of x [rows, cols], each parameter [cols]:
 * y = (x - mean) · a + offset, a = scale / sqrt(variance + eps) computed once per column (in
 * float64, rounded to float32 as the stock kernels' product is), offset 0 and scale 1 when null.
 * One pass over x, its rows spread over the cores (OpenMP) for large tensors; the loop over the
 * columns vectorises.
 */
napi_value BatchNormInference(napi_env env, napi_callback_info info) {
  ARGS(env, info, 9, argv, "batchNormInference");
  float *x, *mean, *var, *offset, *scale, *y;
  size_t lx, lm, lv, lo, ls, ly;
  int64_t rows, cols;
  double eps;
  if (!float32_view(env, argv[0], &x, &lx) || !get_int(env, argv[1], &rows) || !get_int(env, argv[2], &cols))
    return NULL;
  if (!float32_view(env, argv[3], &mean, &lm) || !float32_view(env, argv[4], &var, &lv) ||
      !optional_float32_view(env, argv[5], &offset, &lo) || !optional_float32_view(env, argv[6], &scale, &ls))
    return NULL;
  CHECK(env, napi_get_value_double(env, argv[7], &eps));
  if (!float32_view(env, argv[8], &y, &ly)) return NULL;
  REQUIRE(env, rows > 0 && cols > 0, "batchNormInference: sizes must be > 0");
  REQUIRE(env, (size_t)(rows * cols) <= lx && (size_t)(rows * cols) <= ly && (size_t)cols <= lm &&
                   (size_t)cols <= lv && (offset == NULL || (size_t)cols <= lo) &&
                   (scale == NULL || (size_t)cols <= ls),
          "batchNormInference: a buffer is smaller than its shape");
  /* per column: the factor a, and the offset (zeros when none is given) */
  float *params = calloc((size_t)cols * 2, sizeof(float));
  REQUIRE(env, params != NULL, "batchNormInference: out of memory");
  float *a = params, *b = params + cols;
  for (int64_t c = 0; c < cols; c++) {
    a[c] = (float)((scale ? (double)scale[c] : 1.0) / sqrt((double)var[c] + eps));
    if (offset) b[c] = offset[c];
  }
  const int64_t block_rows = cols >= INFERENCE_BLOCK ? 1 : INFERENCE_BLOCK / cols;
  const int64_t blocks = (rows + block_rows - 1) / block_rows;
#pragma omp parallel for schedule(static) if (rows * cols >= PARALLEL_MIN)
  for (int64_t k = 0; k < blocks; k++) {
    const int64_t r0 = k * block_rows, r1 = r0 + block_rows < rows ? r0 + block_rows : rows;
    affine_rows(x, r0, r1, cols, mean, a, b, y);
  }
  free(params);
  return NULL;
}
