/*
 * Element-wise kernels the wasm backend runs on one thread: same-shape add, subtract and multiply,
 * ReLU and its gradient's step, spread over the cores (OpenMP) for large tensors and compiled per
 * vector width. Each element is one IEEE operation, so results equal the stock kernels'.
 */
#include <math.h>

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
