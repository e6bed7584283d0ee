/*
 * Matrix products for the tfjs wasm backend through OpenBLAS, computed in place on Float32Array
 * views of the wasm heap (zero-copy), and the bias + ReLU epilogue of _FusedMatMul.
 */
#include <cblas.h>
#ifdef CONTRASTIVE_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif

#include "engine.h"

/* Which library sgemm calls: OpenBLAS until setGemmPath turns it to oneDNN's sgemm (the engine
 * does where built with oneDNN: measured faster at the MLP's shapes, src/engine/native.ts). */
static bool gemm_onednn = false;

/*
 * sgemm(transposeA, transposeB, batch, m, n, k, a, aBatchStride, b, bBatchStride, out)
 * out[i] = op(a[i]) · op(b[i]) for i < batch (row-major; a stride of 0 broadcasts one matrix).
 */
napi_value Sgemm(napi_env env, napi_callback_info info) {
  ARGS(env, info, 11, argv, "sgemm");
  bool ta, tb;
  int64_t batch, m, n, k, sa, sb;
  float *a, *b, *c;
  size_t la, lb, lc;
  CHECK(env, napi_get_value_bool(env, argv[0], &ta));
  CHECK(env, napi_get_value_bool(env, argv[1], &tb));
  if (!get_int(env, argv[2], &batch) || !get_int(env, argv[3], &m) || !get_int(env, argv[4], &n) ||
      !get_int(env, argv[5], &k) || !get_int(env, argv[7], &sa) || !get_int(env, argv[9], &sb))
    return NULL;
  if (!float32_view(env, argv[6], &a, &la) || !float32_view(env, argv[8], &b, &lb) ||
      !float32_view(env, argv[10], &c, &lc))
    return NULL;
  REQUIRE(env, batch >= 1 && m >= 1 && n >= 1 && k >= 1, "sgemm: sizes must be >= 1");
  REQUIRE(env, (size_t)((batch - 1) * sa + m * k) <= la, "sgemm: a is smaller than its shape");
  REQUIRE(env, (size_t)((batch - 1) * sb + k * n) <= lb, "sgemm: b is smaller than its shape");
  REQUIRE(env, (size_t)(batch * m * n) <= lc, "sgemm: out is smaller than its shape");
  for (int64_t i = 0; i < batch; i++) {
#ifdef CONTRASTIVE_ONEDNN
    if (gemm_onednn) {
      REQUIRE(env,
              dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.0f, a + i * sa, ta ? m : k, b + i * sb, tb ? k : n,
                         0.0f, c + i * m * n, n) == dnnl_success,
              "sgemm: oneDNN's sgemm failed");
      continue;
    }
#endif
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, 1.0f, a + i * sa, ta ? (int)m : (int)k, b + i * sb,
                tb ? (int)k : (int)n, 0.0f, c + i * m * n, (int)n);
  }
  return NULL;
}

/* Row-major c = alpha·op(a)·op(b) + beta·c through the library sgemm is set to (setGemmPath): for the
 * addon's own callers (1×1 convolutions, conv.c). Returns false when oneDNN's sgemm fails. */
bool engine_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                  const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
#ifdef CONTRASTIVE_ONEDNN
  if (gemm_onednn)
    return dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) == dnnl_success;
#endif
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
              alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
  return true;
}

/* gemmPath(): "OpenBLAS" or "oneDNN sgemm" */
napi_value GemmPath(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  CHECK(env, napi_create_string_utf8(env, gemm_onednn ? "oneDNN sgemm" : "OpenBLAS", NAPI_AUTO_LENGTH, &result));
  return result;
}

/* setGemmPath(useOneDnn): matrix products through oneDNN's sgemm (where built with it) or OpenBLAS */
napi_value SetGemmPath(napi_env env, napi_callback_info info) {
  ARGS(env, info, 1, argv, "setGemmPath");
  bool on;
  CHECK(env, napi_get_value_bool(env, argv[0], &on));
#ifdef CONTRASTIVE_ONEDNN
  gemm_onednn = on;
#else
  (void)on;
#endif
  return NULL;
}

void bias_relu_rows(float *out, int64_t rows, int64_t cols, const float *bias, bool relu) {
  for (int64_t r = 0; r < rows; r++) {
    float *row = out + r * cols;
    if (bias)
      for (int64_t j = 0; j < cols; j++) row[j] += bias[j];
    if (relu)
      for (int64_t j = 0; j < cols; j++) row[j] = row[j] > 0.0f ? row[j] : 0.0f;
  }
}

/* biasRelu(out, rows, cols, bias or null, relu): out[r, c] = max?(out[r, c] + bias[c], 0) */
napi_value BiasRelu(napi_env env, napi_callback_info info) {
  ARGS(env, info, 5, argv, "biasRelu");
  float *out, *bias;
  size_t lo, lb;
  int64_t rows, cols;
  bool relu;
  if (!float32_view(env, argv[0], &out, &lo) || !get_int(env, argv[1], &rows) || !get_int(env, argv[2], &cols) ||
      !optional_float32_view(env, argv[3], &bias, &lb))
    return NULL;
  CHECK(env, napi_get_value_bool(env, argv[4], &relu));
  REQUIRE(env, (size_t)(rows * cols) <= lo, "biasRelu: out is smaller than its shape");
  REQUIRE(env, bias == NULL || (size_t)cols <= lb, "biasRelu: bias is shorter than a row");
  bias_relu_rows(out, rows, cols, bias, relu);
  return NULL;
}

napi_value BlasConfig(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  CHECK(env, napi_create_string_utf8(env, openblas_get_config(), NAPI_AUTO_LENGTH, &result));
  return result;
}

napi_value BlasThreads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  CHECK(env, napi_create_int32(env, openblas_get_num_threads(), &result));
  return result;
}
