/*
 * The one header every family of the native engine shares: N-API error handling (every N-API
 * status becomes a JS exception naming the file and line, tfjs-node's ENSURE_NAPI_OK pattern,
 * never a crash), typed-array views, and the declarations of each family's functions, which
 * addon.c lists once as the module's exports.
 *
 * Families (one file each): gemm.c (matrix products, bias + ReLU), conv.c (2-D convolutions:
 * im2col + OpenBLAS, and oneDNN in conv_onednn.c when built with it), depthwise.c (depthwise 2-D
 * convolutions: oneDNN grouped convolutions, or direct loops), batchnorm.c, logsumexp.c
 * (the fused contrastive log-sum-exp), sums.c (column sums, segment sums), elementwise.c (add,
 * subtract, multiply, ReLU, step), optimizer.c (the fused Adam / AdamW update).
 */
#ifndef CONTRASTIVE_ENGINE_H
#define CONTRASTIVE_ENGINE_H

#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
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

/*
 * Compiles a hot loop once per vector width, the best chosen at load time for the CPU found
 * (GCC/Clang function multiversioning; needs ifunc, so x86-64 Linux only). Without FMA
 * contraction (-std=c11) every clone rounds alike.
 */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(CONTRASTIVE_NO_CLONES)
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

/* Reads the call's arguments, throwing unless there are exactly `count`. */
#define ARGS(env, info, count, argv, name)                                 \
  napi_value argv[count];                                                  \
  do {                                                                     \
    size_t argc_ = (count);                                                \
    CHECK(env, napi_get_cb_info(env, info, &argc_, argv, NULL, NULL));     \
    REQUIRE(env, argc_ == (count), name ": expected " #count " arguments"); \
  } while (0)

/* A Float32Array's data and length; NULL (with a pending exception) when `value` is not one. */
static inline napi_value float32_view(napi_env env, napi_value value, float **data, size_t *length) {
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

/* Like float32_view, but JS null gives data = NULL, length 0. */
static inline napi_value optional_float32_view(napi_env env, napi_value value, float **data, size_t *length) {
  napi_valuetype type;
  CHECK(env, napi_typeof(env, value, &type));
  if (type == napi_null) {
    *data = NULL;
    *length = 0;
    return value;
  }
  return float32_view(env, value, data, length);
}

static inline napi_value get_int(napi_env env, napi_value value, int64_t *out) {
  CHECK(env, napi_get_value_int64(env, value, out));
  return value;
}

/* gemm.c */
napi_value Sgemm(napi_env env, napi_callback_info info);
napi_value BiasRelu(napi_env env, napi_callback_info info);
napi_value BlasConfig(napi_env env, napi_callback_info info);
napi_value BlasThreads(napi_env env, napi_callback_info info);
napi_value GemmPath(napi_env env, napi_callback_info info);
napi_value SetGemmPath(napi_env env, napi_callback_info info);
/* In-place out[r, c] = max?(out[r, c] + bias[c], 0), shared by the GEMM and im2col paths. */
void bias_relu_rows(float *out, int64_t rows, int64_t cols, const float *bias, bool relu);
bool engine_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                  const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

/* conv.c: the shape of one 2-D convolution, NHWC input, [KH, KW, Cin, Cout] filter; with groups > 1
 * (depthwise.c: groups = Cin) a grouped one, [KH, KW, Cin / groups, groups, Cout / groups] */
typedef struct {
  int64_t n, h, w, cin, oh, ow, cout, kh, kw, sh, sw, pt, pl, groups;
} conv_shape;
enum conv_mode { CONV_FORWARD = 0, CONV_FILTER_GRAD = 1, CONV_INPUT_GRAD = 2 };
napi_value Conv(napi_env env, napi_callback_info info);
napi_value ConvPath(napi_env env, napi_callback_info info);
napi_value SetConvPath(napi_env env, napi_callback_info info);
napi_value SetPointwiseConv(napi_env env, napi_callback_info info);
napi_value ConvCounts(napi_env env, napi_callback_info info);
/* Whether convolutions (plain and depthwise) try oneDNN first: built with it and not turned off. */
bool onednn_convolutions_on(void);

/* depthwise.c */
napi_value Depthwise(napi_env env, napi_callback_info info);
napi_value DepthwiseCounts(napi_env env, napi_callback_info info);

/* conv_onednn.c (only built with oneDNN): 0 when done, nonzero when oneDNN cannot take this
 * convolution (the caller then uses im2col); bias and relu apply to the forward mode only. */
int onednn_conv(const conv_shape *s, int mode, const float *p, const float *q, const float *bias, bool relu,
                float *out);
/* "oneDNN 2.6.3 (avx2)", or NULL when oneDNN cannot start here. */
const char *onednn_description(void);

/* batchnorm.c */
napi_value BatchNorm(napi_env env, napi_callback_info info);
napi_value BatchNormGrad(napi_env env, napi_callback_info info);
napi_value BatchNormInference(napi_env env, napi_callback_info info);

/* logsumexp.c */
napi_value FusedLse(napi_env env, napi_callback_info info);
napi_value FusedLseGrad(napi_env env, napi_callback_info info);
napi_value ParallelThreads(napi_env env, napi_callback_info info);

/* elementwise.c */
napi_value Binary(napi_env env, napi_callback_info info);
napi_value Unary(napi_env env, napi_callback_info info);
napi_value Clip(napi_env env, napi_callback_info info);
napi_value Pad(napi_env env, napi_callback_info info);

/* optimizer.c */
napi_value Adam(napi_env env, napi_callback_info info);

/* sums.c */
napi_value ColSum(napi_env env, napi_callback_info info);
napi_value SegmentSum(napi_env env, napi_callback_info info);

#endif
