/* Training-mode batch norm over the rows of x [rows, C]: forward and exact gradient, float64 sums. */
#include <math.h>
#include <stdlib.h>

#include "engine.h"

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
  double *acc = calloc((size_t)cols * 2, sizeof(double));
  REQUIRE(env, acc != NULL, "batchNorm: out of memory");
  double *mu = acc, *sq = acc + cols;
  for (int64_t r = 0; r < rows; r++) {
    const float *row = x + r * cols;
    for (int64_t c = 0; c < cols; c++) mu[c] += row[c];
  }
  for (int64_t c = 0; c < cols; c++) mu[c] /= (double)rows;
  for (int64_t r = 0; r < rows; r++) {
    const float *row = x + r * cols;
    for (int64_t c = 0; c < cols; c++) {
      const double d = row[c] - mu[c];
      sq[c] += d * d;
    }
  }
  /* reuse sq for the per-column scale, and var/mean as float outputs */
  for (int64_t c = 0; c < cols; c++) {
    mean[c] = (float)mu[c];
    var[c] = (float)(sq[c] / (double)rows);
    sq[c] = gamma[c] / sqrt(sq[c] / (double)rows + eps);
  }
  for (int64_t r = 0; r < rows; r++) {
    const float *row = x + r * cols;
    float *out = y + r * cols;
    for (int64_t c = 0; c < cols; c++)
      out[c] = (float)((row[c] - mu[c]) * sq[c] + beta[c]);
  }
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
  double *acc = calloc((size_t)cols * 5, sizeof(double));
  REQUIRE(env, acc != NULL, "batchNormGrad: out of memory");
  double *sb = acc, *sg = acc + cols, *s = acc + 2 * cols, *mu = acc + 3 * cols, *k = acc + 4 * cols;
  for (int64_t c = 0; c < cols; c++) {
    s[c] = 1.0 / sqrt((double)var[c] + eps);
    mu[c] = mean[c];
  }
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols, *dr = dy + r * cols;
    for (int64_t c = 0; c < cols; c++) {
      sb[c] += dr[c];
      sg[c] += dr[c] * (xr[c] - mu[c]);
    }
  }
  for (int64_t c = 0; c < cols; c++) {
    sg[c] *= s[c]; /* Σ dy·x̂ */
    dbeta[c] = (float)sb[c];
    dgamma[c] = (float)sg[c];
    k[c] = gamma[c] * s[c];
  }
  const double inv_m = 1.0 / (double)rows;
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols, *dr = dy + r * cols;
    float *out = dx + r * cols;
    for (int64_t c = 0; c < cols; c++) {
      const double xhat = (xr[c] - mu[c]) * s[c];
      out[c] = (float)(k[c] * (dr[c] - sb[c] * inv_m - xhat * sg[c] * inv_m));
    }
  }
  free(acc);
  return NULL;
}
