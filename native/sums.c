/* Sums over rows: column sums (Sum/Mean over every axis but the last) and segment sums. */
#include <stdlib.h>
#include <string.h>

#include "engine.h"

/* colSum(x, rows, cols, out, scale): out[c] = scale * sum_r x[r, c], accumulated in float64 */
napi_value ColSum(napi_env env, napi_callback_info info) {
  ARGS(env, info, 5, argv, "colSum");
  float *x, *out;
  size_t lx, lo;
  int64_t rows, cols;
  double scale;
  if (!float32_view(env, argv[0], &x, &lx) || !get_int(env, argv[1], &rows) || !get_int(env, argv[2], &cols) ||
      !float32_view(env, argv[3], &out, &lo))
    return NULL;
  CHECK(env, napi_get_value_double(env, argv[4], &scale));
  REQUIRE(env, (size_t)(rows * cols) <= lx && (size_t)cols <= lo, "colSum: a buffer is smaller than its shape");
  double *acc = calloc((size_t)cols, sizeof(double));
  REQUIRE(env, acc != NULL, "colSum: out of memory");
  for (int64_t r = 0; r < rows; r++) {
    const float *row = x + r * cols;
    for (int64_t c = 0; c < cols; c++) acc[c] += row[c];
  }
  for (int64_t c = 0; c < cols; c++) out[c] = (float)(acc[c] * scale);
  free(acc);
  return NULL;
}

/* segmentSum(x, ids, n, d, numSegments, out): out[g, :] = sum over i with ids[i] == g of x[i, :] */
napi_value SegmentSum(napi_env env, napi_callback_info info) {
  ARGS(env, info, 6, argv, "segmentSum");
  float *x, *out;
  int32_t *ids;
  size_t lx, li, lo;
  int64_t n, d, g;
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  if (!float32_view(env, argv[0], &x, &lx) || !get_int(env, argv[2], &n) || !get_int(env, argv[3], &d) ||
      !get_int(env, argv[4], &g) || !float32_view(env, argv[5], &out, &lo))
    return NULL;
  CHECK(env, napi_get_typedarray_info(env, argv[1], &type, &li, (void **)&ids, &buffer, &offset));
  REQUIRE(env, type == napi_int32_array, "segmentSum: ids must be an Int32Array");
  REQUIRE(env, (size_t)(n * d) <= lx && (size_t)n <= li && (size_t)(g * d) <= lo,
          "segmentSum: a buffer is smaller than its shape");
  memset(out, 0, g * d * sizeof(float));
  for (int64_t i = 0; i < n; i++) {
    const int32_t k = ids[i];
    if (k < 0 || k >= g) continue; /* tf.unsortedSegmentSum drops out-of-range ids */
    float *dst = out + k * d;
    const float *src = x + i * d;
    for (int64_t j = 0; j < d; j++) dst[j] += src[j];
  }
  return NULL;
}
