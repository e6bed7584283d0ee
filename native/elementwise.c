/*
 * Element-wise kernels the wasm backend runs on one thread: same-shape add, subtract and multiply,
 * ReLU and its gradient's step, spread over the cores (OpenMP) for large tensors and compiled per
 * vector width. Each element is one IEEE operation, so results equal the stock kernels'.
 */
#include <math.h>
#include <string.h>

#include "engine.h"

enum { OP_ADD = 0, OP_SUB = 1, OP_MUL = 2 };
/* Below this many elements one thread is faster than waking the others, and on a busy machine
 * (other processes on the cores) a parallel region can wait milliseconds for a descheduled
 * thread: only CNN-sized activations are split. */
static const int64_t PARALLEL_MIN = 1 << 20;
enum { BLOCK = 1 << 14 };

VECTOR_CLONES static void binary_block(int op, const float *a, const float *b, float *out, int64_t n) {
  if (op == OP_ADD)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
  else if (op == OP_SUB)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] - b[i];
  else
    for (int64_t i = 0; i < n; i++) out[i] = a[i] * b[i];
}

/* relu: max(0, x) with NaN kept; step: NaN kept, x > 0 ? 1 : alpha */
VECTOR_CLONES static void unary_block(bool step, float alpha, const float *x, float *out, int64_t n) {
  if (step)
    for (int64_t i = 0; i < n; i++) out[i] = x[i] != x[i] ? x[i] : x[i] > 0.0f ? 1.0f : alpha;
  else
    /* tfjs's relu is Math.max(0, x): NaN stays NaN, -0 becomes +0 */
    for (int64_t i = 0; i < n; i++) out[i] = x[i] > 0.0f || x[i] != x[i] ? x[i] : 0.0f;
}

/* binary(op, a, b, out): out = a op b element-wise, op 0 add, 1 subtract, 2 multiply; equal lengths */
napi_value Binary(napi_env env, napi_callback_info info) {
  ARGS(env, info, 4, argv, "binary");
  int64_t op;
  float *a, *b, *out;
  size_t la, lb, lo;
  if (!get_int(env, argv[0], &op) || !float32_view(env, argv[1], &a, &la) || !float32_view(env, argv[2], &b, &lb) ||
      !float32_view(env, argv[3], &out, &lo))
    return NULL;
  REQUIRE(env, op >= OP_ADD && op <= OP_MUL, "binary: op must be 0, 1 or 2");
  REQUIRE(env, la == lb && lo >= la, "binary: a and b must have one length, out at least that");
  const int64_t n = (int64_t)la, blocks = (n + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
  for (int64_t k = 0; k < blocks; k++) {
    const int64_t start = k * BLOCK, len = n - start < BLOCK ? n - start : BLOCK;
    binary_block((int)op, a + start, b + start, out + start, len);
  }
  return NULL;
}

/* unary(step, alpha, x, out): ReLU (step false) or Step with alpha (step true) */
napi_value Unary(napi_env env, napi_callback_info info) {
  ARGS(env, info, 4, argv, "unary");
  bool step;
  double alpha;
  float *x, *out;
  size_t lx, lo;
  CHECK(env, napi_get_value_bool(env, argv[0], &step));
  CHECK(env, napi_get_value_double(env, argv[1], &alpha));
  if (!float32_view(env, argv[2], &x, &lx) || !float32_view(env, argv[3], &out, &lo)) return NULL;
  REQUIRE(env, lo >= lx, "unary: out is shorter than x");
  const int64_t n = (int64_t)lx, blocks = (n + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
  for (int64_t k = 0; k < blocks; k++) {
    const int64_t start = k * BLOCK, len = n - start < BLOCK ? n - start : BLOCK;
    unary_block(step, (float)alpha, x + start, out + start, len);
  }
  return NULL;
}

/* clip: tfjs's ClipByValue, x > hi ? hi : x < lo ? lo : x (NaN kept) */
VECTOR_CLONES static void clip_block(float lo, float hi, const float *x, float *out, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = x[i] > hi ? hi : x[i] < lo ? lo : x[i];
}

/* clip(lo, hi, x, out): ClipByValue (ReLU6's second half in Keras models) */
napi_value Clip(napi_env env, napi_callback_info info) {
  ARGS(env, info, 4, argv, "clip");
  double lo, hi;
  float *x, *out;
  size_t lx, lo_len;
  CHECK(env, napi_get_value_double(env, argv[0], &lo));
  CHECK(env, napi_get_value_double(env, argv[1], &hi));
  if (!float32_view(env, argv[2], &x, &lx) || !float32_view(env, argv[3], &out, &lo_len)) return NULL;
  REQUIRE(env, lo_len >= lx, "clip: out is shorter than x");
  const int64_t n = (int64_t)lx, blocks = (n + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
  for (int64_t k = 0; k < blocks; k++) {
    const int64_t start = k * BLOCK, len = n - start < BLOCK ? n - start : BLOCK;
    clip_block((float)lo, (float)hi, x + start, out + start, len);
  }
  return NULL;
}

/*
 * pad(x, d0, d1, d2, d3, before0..3, after0..3, value, out): tfjs's PadV2 (constant) on a float32
 * tensor of rank <= 4 (leading dimensions of 1 added): out's last-axis rows are the value, or the
 * value around a copy of x's row. Keras models pad before every stride-2 depthwise convolution
 * (ZeroPadding2D): the stock kernel took a fifth of MobileNetV2's forward.
 */
napi_value Pad(napi_env env, napi_callback_info info) {
  ARGS(env, info, 15, argv, "pad");
  int64_t d[4], b[4], a[4];
  for (int i = 0; i < 4; i++)
    if (!get_int(env, argv[1 + i], &d[i]) || !get_int(env, argv[5 + i], &b[i]) || !get_int(env, argv[9 + i], &a[i]))
      return NULL;
  double value;
  CHECK(env, napi_get_value_double(env, argv[13], &value));
  float *x, *out;
  size_t lx, lo;
  if (!float32_view(env, argv[0], &x, &lx) || !float32_view(env, argv[14], &out, &lo)) return NULL;
  int64_t o[4];
  for (int i = 0; i < 4; i++) {
    REQUIRE(env, d[i] >= 0 && b[i] >= 0 && a[i] >= 0, "pad: sizes and paddings must be >= 0");
    o[i] = d[i] + b[i] + a[i];
  }
  REQUIRE(env, (size_t)(d[0] * d[1] * d[2] * d[3]) <= lx && (size_t)(o[0] * o[1] * o[2] * o[3]) <= lo,
          "pad: a buffer is smaller than its shape");
  const float v = (float)value;
  const int64_t rows = o[0] * o[1] * o[2];
#pragma omp parallel for schedule(static) if (rows * o[3] >= PARALLEL_MIN)
  for (int64_t r = 0; r < rows; r++) {
    const int64_t i0 = r / (o[1] * o[2]) - b[0], i1 = r / o[2] % o[1] - b[1], i2 = r % o[2] - b[2];
    float *dst = out + r * o[3];
    if (i0 < 0 || i0 >= d[0] || i1 < 0 || i1 >= d[1] || i2 < 0 || i2 >= d[2] || d[3] == 0) {
      for (int64_t c = 0; c < o[3]; c++) dst[c] = v;
      continue;
    }
    for (int64_t c = 0; c < b[3]; c++) dst[c] = v;
    memcpy(dst + b[3], x + ((i0 * d[1] + i1) * d[2] + i2) * d[3], d[3] * sizeof(float));
    for (int64_t c = b[3] + d[3]; c < o[3]; c++) dst[c] = v;
  }
  return NULL;
}
