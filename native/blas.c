/*
 * N-API bindings of OpenBLAS for the tfjs wasm backend: matrix products computed in place on
 * Float32Array views of the wasm heap (zero-copy). Every N-API status becomes a JS exception
 * naming this file and line (tfjs-node's ENSURE_NAPI_OK pattern), never a crash.
 */
#include <node_api.h>
#include <cblas.h>
#include <stdbool.h>
#include <stdio.h>

#define CHECK(env, call)                                                   \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      char message[160];                                                   \
      snprintf(message, sizeof message, "%s:%d: N-API call failed: %s",    \
               __FILE__, __LINE__, #call);                                 \
      napi_throw_error((env), NULL, message);                              \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

#define REQUIRE(env, cond, text)                                           \
  do {                                                                     \
    if (!(cond)) {                                                         \
      napi_throw_error((env), NULL, (text));                               \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

static napi_value float32_view(napi_env env, napi_value value, float **data, size_t *length) {
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  bool is_typed;
  CHECK(env, napi_is_typedarray(env, value, &is_typed));
  REQUIRE(env, is_typed, "expected a Float32Array");
  CHECK(env, napi_get_typedarray_info(env, value, &type, length, (void **)data, &buffer, &offset));
  REQUIRE(env, type == napi_float32_array, "expected a Float32Array");
  return value;
}

static napi_value get_int(napi_env env, napi_value value, int64_t *out) {
  CHECK(env, napi_get_value_int64(env, value, out));
  return value;
}

/*
 * sgemm(transposeA, transposeB, batch, m, n, k, a, aBatchStride, b, bBatchStride, out)
 * out[i] = op(a[i]) · op(b[i]) for i < batch (row-major; a stride of 0 broadcasts one matrix).
 */
static napi_value Sgemm(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  REQUIRE(env, argc == 11, "sgemm: expected 11 arguments");
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
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, 1.0f, a + i * sa, ta ? (int)m : (int)k, b + i * sb,
                tb ? (int)k : (int)n, 0.0f, c + i * m * n, (int)n);
  }
  return NULL;
}

/* biasRelu(out, rows, cols, bias or null, relu): out[r, c] = max?(out[r, c] + bias[c], 0) */
static napi_value BiasRelu(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  REQUIRE(env, argc == 5, "biasRelu: expected 5 arguments");
  float *out, *bias = NULL;
  size_t lo, lb = 0;
  int64_t rows, cols;
  bool relu;
  napi_valuetype bias_type;
  if (!float32_view(env, argv[0], &out, &lo) || !get_int(env, argv[1], &rows) || !get_int(env, argv[2], &cols))
    return NULL;
  CHECK(env, napi_typeof(env, argv[3], &bias_type));
  if (bias_type != napi_null && !float32_view(env, argv[3], &bias, &lb)) return NULL;
  CHECK(env, napi_get_value_bool(env, argv[4], &relu));
  REQUIRE(env, (size_t)(rows * cols) <= lo, "biasRelu: out is smaller than its shape");
  REQUIRE(env, bias == NULL || (size_t)cols <= lb, "biasRelu: bias is shorter than a row");
  for (int64_t r = 0; r < rows; r++) {
    float *row = out + r * cols;
    if (bias)
      for (int64_t j = 0; j < cols; j++) row[j] += bias[j];
    if (relu)
      for (int64_t j = 0; j < cols; j++) row[j] = row[j] > 0.0f ? row[j] : 0.0f;
  }
  return NULL;
}

static napi_value Config(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  CHECK(env, napi_create_string_utf8(env, openblas_get_config(), NAPI_AUTO_LENGTH, &result));
  return result;
}

static napi_value Threads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  CHECK(env, napi_create_int32(env, openblas_get_num_threads(), &result));
  return result;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"sgemm", NULL, Sgemm, NULL, NULL, NULL, napi_default, NULL},
      {"biasRelu", NULL, BiasRelu, NULL, NULL, NULL, napi_default, NULL},
      {"config", NULL, Config, NULL, NULL, NULL, napi_default, NULL},
      {"threads", NULL, Threads, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
