/*
 * N-API bindings of OpenBLAS for the tfjs wasm backend: matrix products computed in place on
 * Float32Array views of the wasm heap (zero-copy). Every N-API status becomes a JS exception
 * naming this file and line (tfjs-node's ENSURE_NAPI_OK pattern), never a crash.
 */
#include <node_api.h>
#include <cblas.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif

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


/* A scratch buffer reused across calls: fresh pages cost ~10 us each to touch on this kind of VM. */
static float *scratch = NULL;
static size_t scratch_size = 0;

static float *scratch_buffer(size_t floats) {
  if (floats > scratch_size) {
    free(scratch);
    scratch = malloc(floats * sizeof(float));
    scratch_size = scratch ? floats : 0;
  }
  return scratch;
}

typedef struct {
  int64_t n, h, w, cin, oh, ow, cout, kh, kw, sh, sw, pt, pl;
} conv_shape;

static napi_value read_conv_shape(napi_env env, napi_value *argv, conv_shape *s) {
  int64_t *fields[] = {&s->n, &s->h, &s->w, &s->cin, &s->oh, &s->ow, &s->cout, &s->kh, &s->kw, &s->sh, &s->sw, &s->pt, &s->pl};
  for (int i = 0; i < 13; i++)
    if (!get_int(env, argv[i], fields[i])) return NULL;
  REQUIRE(env, s->n > 0 && s->h > 0 && s->w > 0 && s->cin > 0 && s->oh > 0 && s->ow > 0 && s->cout > 0 &&
                   s->kh > 0 && s->kw > 0 && s->sh > 0 && s->sw > 0,
          "conv: sizes must be > 0");
  return argv[0];
}

/* cols[(n, oy, ox), (ky, kx, c)] = x[n, oy*sh + ky - pt, ox*sw + kx - pl, c] (0 outside) */
static void im2col(const conv_shape *s, const float *x, float *cols) {
  const int64_t row = s->kh * s->kw * s->cin;
  for (int64_t n = 0; n < s->n; n++)
    for (int64_t oy = 0; oy < s->oh; oy++)
      for (int64_t ox = 0; ox < s->ow; ox++) {
        float *dst = cols + ((n * s->oh + oy) * s->ow + ox) * row;
        for (int64_t ky = 0; ky < s->kh; ky++) {
          const int64_t y = oy * s->sh + ky - s->pt;
          for (int64_t kx = 0; kx < s->kw; kx++, dst += s->cin) {
            const int64_t xx = ox * s->sw + kx - s->pl;
            if (y < 0 || y >= s->h || xx < 0 || xx >= s->w) memset(dst, 0, s->cin * sizeof(float));
            else memcpy(dst, x + ((n * s->h + y) * s->w + xx) * s->cin, s->cin * sizeof(float));
          }
        }
      }
}

/* dx[n, y, x, c] += cols[...]: the adjoint of im2col */
static void col2im(const conv_shape *s, const float *cols, float *dx) {
  const int64_t row = s->kh * s->kw * s->cin;
  memset(dx, 0, s->n * s->h * s->w * s->cin * sizeof(float));
  for (int64_t n = 0; n < s->n; n++)
    for (int64_t oy = 0; oy < s->oh; oy++)
      for (int64_t ox = 0; ox < s->ow; ox++) {
        const float *src = cols + ((n * s->oh + oy) * s->ow + ox) * row;
        for (int64_t ky = 0; ky < s->kh; ky++) {
          const int64_t y = oy * s->sh + ky - s->pt;
          for (int64_t kx = 0; kx < s->kw; kx++, src += s->cin) {
            const int64_t xx = ox * s->sw + kx - s->pl;
            if (y < 0 || y >= s->h || xx < 0 || xx >= s->w) continue;
            float *d = dx + ((n * s->h + y) * s->w + xx) * s->cin;
            for (int64_t c = 0; c < s->cin; c++) d[c] += src[c];
          }
        }
      }
}

/*
 * conv(shape13..., mode, x_or_dy, filter_or_x, out, scratchFloats)
 * mode 0 forward:        out[N,OH,OW,Cout] = im2col(x) · W[KH*KW*Cin, Cout]
 * mode 1 filter grad:    out[KH,KW,Cin,Cout] = im2col(x)ᵀ · dy[N*OH*OW, Cout]   (args: x, dy)
 * mode 2 input grad:     out[N,H,W,Cin] = col2im(dy · Wᵀ)                       (args: dy, W)
 * The column matrix is built for as many whole images at a time as fit in scratchFloats floats.
 */
static napi_value Conv(napi_env env, napi_callback_info info) {
  size_t argc = 18;
  napi_value argv[18];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  REQUIRE(env, argc == 18, "conv: expected 18 arguments");
  conv_shape s;
  int64_t mode, scratch_floats;
  float *p, *q, *out;
  size_t lp, lq, lo;
  if (!read_conv_shape(env, argv, &s) || !get_int(env, argv[13], &mode) || !get_int(env, argv[17], &scratch_floats))
    return NULL;
  if (!float32_view(env, argv[14], &p, &lp) || !float32_view(env, argv[15], &q, &lq) || !float32_view(env, argv[16], &out, &lo))
    return NULL;
  const int64_t rows = s.n * s.oh * s.ow, k = s.kh * s.kw * s.cin;
  const size_t x_size = s.n * s.h * s.w * s.cin, y_size = rows * s.cout, w_size = k * s.cout;
  /* im2col in chunks of whole images, so the scratch buffer stays near scratch_floats
   * (a 512-image 3x3x32 layer would otherwise need a 460 MB column matrix) */
  const int64_t per_image = s.oh * s.ow * k;
  int64_t chunk = scratch_floats / per_image;
  if (chunk < 1) chunk = 1;
  if (chunk > s.n) chunk = s.n;
  float *cols = scratch_buffer(chunk * per_image);
  REQUIRE(env, cols != NULL, "conv: out of memory for the im2col buffer");
  if (mode == 0) REQUIRE(env, lp >= x_size && lq >= w_size && lo >= y_size, "conv: a buffer is smaller than its shape");
  else if (mode == 1) REQUIRE(env, lp >= x_size && lq >= y_size && lo >= w_size, "conv: a buffer is smaller than its shape");
  else if (mode == 2) REQUIRE(env, lp >= y_size && lq >= w_size && lo >= x_size, "conv: a buffer is smaller than its shape");
  else REQUIRE(env, 0, "conv: mode must be 0, 1 or 2");
  const int64_t image_in = s.h * s.w * s.cin, image_out = s.oh * s.ow * s.cout;
  for (int64_t n0 = 0; n0 < s.n; n0 += chunk) {
    conv_shape part = s;
    part.n = n0 + chunk <= s.n ? chunk : s.n - n0;
    const int64_t part_rows = part.n * s.oh * s.ow;
    if (mode == 0) {
      im2col(&part, p + n0 * image_in, cols);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, part_rows, s.cout, k, 1.0f, cols, k, q, s.cout, 0.0f,
                  out + n0 * image_out, s.cout);
    } else if (mode == 1) {
      im2col(&part, p + n0 * image_in, cols);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, s.cout, part_rows, 1.0f, cols, k, q + n0 * image_out,
                  s.cout, n0 == 0 ? 0.0f : 1.0f, out, s.cout);
    } else {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, part_rows, k, s.cout, 1.0f, p + n0 * image_out, s.cout, q,
                  s.cout, 0.0f, cols, k);
      col2im(&part, cols, out + n0 * image_in);
    }
  }
  return NULL;
}

/* colSum(x, rows, cols, out, scale): out[c] = scale * sum_r x[r, c] (Sum/Mean over all leading axes) */
static napi_value ColSum(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  REQUIRE(env, argc == 5, "colSum: expected 5 arguments");
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

/*
 * batchNorm(x, rows, cols, gamma, beta, eps, y, mean, variance): training-mode batch
 * norm over the rows of x [rows, cols] in one call: batch mean and (biased) variance, accumulated
 * in float64 in two passes, and y = (x - mean) / sqrt(variance + eps) * gamma + beta.
 */
static napi_value BatchNorm(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  REQUIRE(env, argc == 9, "batchNorm: expected 9 arguments");
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
static napi_value BatchNormGrad(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  REQUIRE(env, argc == 11, "batchNormGrad: expected 11 arguments");
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
static napi_value FusedLse(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  REQUIRE(env, argc == 5, "fusedLse: expected 5 arguments");
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
static napi_value FusedLseGrad(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  REQUIRE(env, argc == 7, "fusedLseGrad: expected 7 arguments");
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


/* segmentSum(x, ids, n, d, numSegments, out): out[g, :] = sum over i with ids[i] == g of x[i, :] */
static napi_value SegmentSum(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  REQUIRE(env, argc == 6, "segmentSum: expected 6 arguments");
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
  REQUIRE(env, (size_t)(n * d) <= lx && (size_t)n <= li && (size_t)(g * d) <= lo, "segmentSum: a buffer is smaller than its shape");
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

/* Threads the fused loss splits its rows among; 0 when built without OpenMP (then 1). */
static napi_value ParallelThreads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
#ifdef _OPENMP
  CHECK(env, napi_create_int32(env, omp_get_max_threads(), &result));
#else
  CHECK(env, napi_create_int32(env, 0, &result));
#endif
  return result;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"sgemm", NULL, Sgemm, NULL, NULL, NULL, napi_default, NULL},
      {"biasRelu", NULL, BiasRelu, NULL, NULL, NULL, napi_default, NULL},
      {"conv", NULL, Conv, NULL, NULL, NULL, napi_default, NULL},
      {"batchNorm", NULL, BatchNorm, NULL, NULL, NULL, napi_default, NULL},
      {"batchNormGrad", NULL, BatchNormGrad, NULL, NULL, NULL, napi_default, NULL},
      {"colSum", NULL, ColSum, NULL, NULL, NULL, napi_default, NULL},
      {"segmentSum", NULL, SegmentSum, NULL, NULL, NULL, napi_default, NULL},
      {"fusedLse", NULL, FusedLse, NULL, NULL, NULL, napi_default, NULL},
      {"fusedLseGrad", NULL, FusedLseGrad, NULL, NULL, NULL, napi_default, NULL},
      {"config", NULL, Config, NULL, NULL, NULL, napi_default, NULL},
      {"threads", NULL, Threads, NULL, NULL, NULL, napi_default, NULL},
      {"parallelThreads", NULL, ParallelThreads, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
