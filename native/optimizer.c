/*
 * The Adam / AdamW update of one variable in one pass (the library's optimiser, src/train/optimizers.ts):
 * the ~15 element-wise tfjs ops it takes per variable per step, each a pass over memory and a
 * fresh tensor, fused. Each step of the formula is the same float32 operation, in the same order,
 * as the op it replaces (no FMA contraction under -std=c11; sqrtf is correctly rounded), so the
 * result equals the tfjs ops' bit for bit.
 */
#include <math.h>

#include "engine.h"

/* Below this many elements one thread is faster than waking the others (elementwise.c). */
static const int64_t PARALLEL_MIN = 1 << 20;
enum { BLOCK = 1 << 14 };

typedef struct {
  float b1, one_minus_b1, b2, one_minus_b2, c1, c2, eps, lr, keep;
} AdamScalars;

VECTOR_CLONES static void adam_block(const AdamScalars *s, const float *w, const float *m, const float *v,
                                     const float *g, float *w_out, float *m_out, float *v_out, int64_t n) {
  const AdamScalars k = *s;
  for (int64_t i = 0; i < n; i++) {
    const float gi = g[i];
    /* m' = m·β1 + g·(1-β1);  v' = v·β2 + g²·(1-β2) */
    const float mi = m[i] * k.b1 + gi * k.one_minus_b1;
    const float sq = gi * gi;
    const float vi = v[i] * k.b2 + sq * k.one_minus_b2;
    /* w' = w·keep - lr · (m'/c1) / (sqrt(v'/c2) + ε)   (keep = 1 - lr·decay for AdamW, else 1) */
    const float denom = sqrtf(vi / k.c2) + k.eps;
    const float update = (mi / k.c1) / denom;
    const float base = w[i] * k.keep;
    m_out[i] = mi;
    v_out[i] = vi;
    w_out[i] = base - update * k.lr;
  }
}

/*
 * adam(w, m, v, g, scalars, wOut, mOut, vOut): scalars is a Float64Array [β1, 1-β1, β2, 1-β2, c1,
 * c2, ε, lr, keep], each rounded to float32 as tfjs rounds a JS number it multiplies a float32
 * tensor by; all arrays one length (outputs may alias their inputs).
 */
napi_value Adam(napi_env env, napi_callback_info info) {
  ARGS(env, info, 8, argv, "adam");
  float *w, *m, *v, *g, *wo, *mo, *vo;
  size_t lw, lm, lv, lg, lwo, lmo, lvo;
  if (!float32_view(env, argv[0], &w, &lw) || !float32_view(env, argv[1], &m, &lm) ||
      !float32_view(env, argv[2], &v, &lv) || !float32_view(env, argv[3], &g, &lg) ||
      !float32_view(env, argv[5], &wo, &lwo) || !float32_view(env, argv[6], &mo, &lmo) ||
      !float32_view(env, argv[7], &vo, &lvo))
    return NULL;
  napi_typedarray_type type;
  napi_value buffer;
  size_t count, offset;
  double *sc;
  bool is_typed;
  CHECK(env, napi_is_typedarray(env, argv[4], &is_typed));
  REQUIRE(env, is_typed, "adam: scalars must be a Float64Array");
  CHECK(env, napi_get_typedarray_info(env, argv[4], &type, &count, (void **)&sc, &buffer, &offset));
  REQUIRE(env, type == napi_float64_array && count == 9, "adam: scalars must be a Float64Array of 9");
  REQUIRE(env, lm == lw && lv == lw && lg == lw && lwo == lw && lmo == lw && lvo == lw,
          "adam: w, m, v, g and the outputs must have one length");
  const AdamScalars s = {(float)sc[0], (float)sc[1], (float)sc[2], (float)sc[3], (float)sc[4],
                         (float)sc[5], (float)sc[6], (float)sc[7], (float)sc[8]};
  const int64_t n = (int64_t)lw, blocks = (n + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
  for (int64_t b = 0; b < blocks; b++) {
    const int64_t start = b * BLOCK, len = n - start < BLOCK ? n - start : BLOCK;
    adam_block(&s, w + start, m + start, v + start, g + start, wo + start, mo + start, vo + start, len);
  }
  return NULL;
}
