/*
 * 2-D convolutions (forward with bias + ReLU, filter gradient, input gradient) in tfjs's NHWC
 * layout: through oneDNN when the addon is built with it (conv_onednn.c), else, and for shapes
 * oneDNN declines, im2col + OpenBLAS here.
 */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

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

/* Calls each form has taken, so tests can tell which one ran. */
static int64_t onednn_calls = 0, im2col_calls = 0, pointwise_calls = 0;

#ifdef CONTRASTIVE_ONEDNN
static bool use_onednn = true;
#else
static bool use_onednn = false;
#endif

bool onednn_convolutions_on(void) { return use_onednn; }

/* Whether 1×1 convolutions without padding take the pointwise form (setPointwiseConv). */
static bool use_pointwise = true;

static napi_value read_conv_shape(napi_env env, napi_value *argv, conv_shape *s) {
  int64_t *fields[] = {&s->n, &s->h, &s->w, &s->cin, &s->oh, &s->ow, &s->cout, &s->kh, &s->kw, &s->sh, &s->sw, &s->pt, &s->pl};
  for (int i = 0; i < 13; i++)
    if (!get_int(env, argv[i], fields[i])) return NULL;
  s->groups = 1;
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

/* The im2col + OpenBLAS form; the column matrix is built for as many whole images at a time as
 * fit in scratch_floats (a 512-image 3x3x32 layer would otherwise need a 460 MB column matrix).
 * Returns false when the scratch buffer cannot be allocated. */
static bool im2col_conv(const conv_shape *s, int mode, const float *p, const float *q, const float *bias, bool relu,
                        float *out, int64_t scratch_floats) {
  const int64_t k = s->kh * s->kw * s->cin;
  const int64_t per_image = s->oh * s->ow * k;
  int64_t chunk = scratch_floats / per_image;
  if (chunk < 1) chunk = 1;
  if (chunk > s->n) chunk = s->n;
  float *cols = scratch_buffer(chunk * per_image);
  if (!cols) return false;
  const int64_t image_in = s->h * s->w * s->cin, image_out = s->oh * s->ow * s->cout;
  for (int64_t n0 = 0; n0 < s->n; n0 += chunk) {
    conv_shape part = *s;
    part.n = n0 + chunk <= s->n ? chunk : s->n - n0;
    const int64_t part_rows = part.n * s->oh * s->ow;
    if (mode == CONV_FORWARD) {
      im2col(&part, p + n0 * image_in, cols);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, part_rows, s->cout, k, 1.0f, cols, k, q, s->cout, 0.0f,
                  out + n0 * image_out, s->cout);
    } else if (mode == CONV_FILTER_GRAD) {
      im2col(&part, p + n0 * image_in, cols);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, s->cout, part_rows, 1.0f, cols, k, q + n0 * image_out,
                  s->cout, n0 == 0 ? 0.0f : 1.0f, out, s->cout);
    } else {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, part_rows, k, s->cout, 1.0f, p + n0 * image_out, s->cout, q,
                  s->cout, 0.0f, cols, k);
      col2im(&part, cols, out + n0 * image_in);
    }
  }
  if (mode == CONV_FORWARD && (bias || relu)) bias_relu_rows(out, s->n * s->oh * s->ow, s->cout, bias, relu);
  return true;
}

/* A 1×1 convolution without padding is one matrix product over the pixels it reads: oneDNN's
 * convolution took 8-25 GFLOP/s on W2's 1×1 stride-2 shortcuts against 40-130 for the same product
 * through the engine's sgemm (bench/engine.ts). Strided: the pixels read are gathered into (and
 * the input gradient scattered from) the reused scratch buffer. Returns false when the scratch
 * buffer cannot be allocated or the sgemm fails. */
static bool is_pointwise(const conv_shape *s) {
  return s->kh == 1 && s->kw == 1 && s->pt == 0 && s->pl == 0 && (s->oh - 1) * s->sh < s->h &&
         (s->ow - 1) * s->sw < s->w;
}

static bool pointwise_conv(const conv_shape *s, int mode, const float *p, const float *q, const float *bias, bool relu,
                           float *out) {
  const int64_t rows = s->n * s->oh * s->ow, cin = s->cin, cout = s->cout;
  const bool dense = s->sh == 1 && s->sw == 1 && s->oh == s->h && s->ow == s->w;
  float *sub = NULL;
  if (!dense) {
    sub = scratch_buffer(rows * cin);
    if (!sub) return false;
  }
  /* the pixel (n, oy, ox) reads x[n, oy·sh, ox·sw, :] */
#define PIXEL(r) (((r) / (s->oh * s->ow) * s->h + ((r) / s->ow % s->oh) * s->sh) * s->w + ((r) % s->ow) * s->sw)
  if (mode == CONV_FORWARD || mode == CONV_FILTER_GRAD) {
    const float *x = p;
    if (!dense) {
#pragma omp parallel for schedule(static) if (rows * cin >= (1 << 20))
      for (int64_t r = 0; r < rows; r++) memcpy(sub + r * cin, p + PIXEL(r) * cin, cin * sizeof(float));
      x = sub;
    }
    if (mode == CONV_FORWARD) {
      if (!engine_sgemm(false, false, rows, cout, cin, 1.0f, x, cin, q, cout, 0.0f, out, cout)) return false;
      if (bias || relu) bias_relu_rows(out, rows, cout, bias, relu);
    } else if (!engine_sgemm(true, false, cin, cout, rows, 1.0f, x, cin, q, cout, 0.0f, out, cout)) {
      return false;
    }
  } else {
    if (!engine_sgemm(false, true, rows, cin, cout, 1.0f, p, cout, q, cout, 0.0f, dense ? out : sub, cin)) return false;
    if (!dense) {
      memset(out, 0, s->n * s->h * s->w * cin * sizeof(float));
#pragma omp parallel for schedule(static) if (rows * cin >= (1 << 20))
      for (int64_t r = 0; r < rows; r++) memcpy(out + PIXEL(r) * cin, sub + r * cin, cin * sizeof(float));
    }
  }
#undef PIXEL
  return true;
}

/*
 * conv(shape13..., mode, p, q, bias or null, relu, out, scratchFloats)
 * mode 0 forward:        out[N,OH,OW,Cout] = max?(x * W + bias, 0)        (p = x, q = W)
 * mode 1 filter grad:    out[KH,KW,Cin,Cout] = im2col(x)ᵀ · dy             (p = x, q = dy)
 * mode 2 input grad:     out[N,H,W,Cin] = col2im(dy · Wᵀ)                  (p = dy, q = W)
 * scratchFloats caps the im2col buffer of the OpenBLAS form. A 1×1 convolution without padding
 * takes the pointwise form (one sgemm) whatever the path.
 */
napi_value Conv(napi_env env, napi_callback_info info) {
  ARGS(env, info, 20, argv, "conv");
  conv_shape s;
  int64_t mode, scratch_floats;
  float *p, *q, *bias, *out;
  size_t lp, lq, lb, lo;
  bool relu;
  if (!read_conv_shape(env, argv, &s) || !get_int(env, argv[13], &mode) || !get_int(env, argv[19], &scratch_floats))
    return NULL;
  if (!float32_view(env, argv[14], &p, &lp) || !float32_view(env, argv[15], &q, &lq) ||
      !optional_float32_view(env, argv[16], &bias, &lb) || !float32_view(env, argv[18], &out, &lo))
    return NULL;
  CHECK(env, napi_get_value_bool(env, argv[17], &relu));
  const size_t x_size = s.n * s.h * s.w * s.cin, y_size = s.n * s.oh * s.ow * s.cout,
               w_size = s.kh * s.kw * s.cin * s.cout;
  if (mode == CONV_FORWARD)
    REQUIRE(env, lp >= x_size && lq >= w_size && lo >= y_size && (!bias || lb >= (size_t)s.cout),
            "conv: a buffer is smaller than its shape");
  else if (mode == CONV_FILTER_GRAD)
    REQUIRE(env, lp >= x_size && lq >= y_size && lo >= w_size, "conv: a buffer is smaller than its shape");
  else if (mode == CONV_INPUT_GRAD)
    REQUIRE(env, lp >= y_size && lq >= w_size && lo >= x_size, "conv: a buffer is smaller than its shape");
  else
    REQUIRE(env, 0, "conv: mode must be 0, 1 or 2");
  REQUIRE(env, mode == CONV_FORWARD || (!bias && !relu), "conv: bias and relu apply to the forward mode only");
  if (use_pointwise && is_pointwise(&s)) {
    pointwise_calls++;
    REQUIRE(env, pointwise_conv(&s, (int)mode, p, q, bias, relu, out),
            "conv: out of memory for the 1x1 convolution's buffer, or the sgemm failed");
    return NULL;
  }
#ifdef CONTRASTIVE_ONEDNN
  if (use_onednn && onednn_conv(&s, (int)mode, p, q, bias, relu, out) == 0) {
    onednn_calls++;
    return NULL;
  }
#endif
  im2col_calls++;
  REQUIRE(env, im2col_conv(&s, (int)mode, p, q, bias, relu, out, scratch_floats),
          "conv: out of memory for the im2col buffer");
  return NULL;
}

/* convPath(): which form convolutions take, e.g. "oneDNN 2.6.3 (avx2)" or "im2col + OpenBLAS". */
napi_value ConvPath(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  const char *path = "im2col + OpenBLAS (built without oneDNN)";
#ifdef CONTRASTIVE_ONEDNN
  const char *onednn = onednn_description();
  path = !use_onednn ? "im2col + OpenBLAS (oneDNN turned off)"
         : onednn    ? onednn
                     : "im2col + OpenBLAS (oneDNN failed to start)";
#endif
  CHECK(env, napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &result));
  return result;
}

/* setConvPath(useOneDnn): turns oneDNN off (or back on, where built with it) for every later call. */
napi_value SetConvPath(napi_env env, napi_callback_info info) {
  ARGS(env, info, 1, argv, "setConvPath");
  bool on;
  CHECK(env, napi_get_value_bool(env, argv[0], &on));
#ifdef CONTRASTIVE_ONEDNN
  use_onednn = on;
#else
  (void)on;
#endif
  return NULL;
}

/* setPointwiseConv(on): whether 1×1 convolutions without padding take the pointwise form (one sgemm). */
napi_value SetPointwiseConv(napi_env env, napi_callback_info info) {
  ARGS(env, info, 1, argv, "setPointwiseConv");
  CHECK(env, napi_get_value_bool(env, argv[0], &use_pointwise));
  return NULL;
}

/* convCounts(): calls [oneDNN, im2col + OpenBLAS, the pointwise form] took since the addon loaded. */
napi_value ConvCounts(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result, value;
  CHECK(env, napi_create_array_with_length(env, 3, &result));
  CHECK(env, napi_create_int64(env, onednn_calls, &value));
  CHECK(env, napi_set_element(env, result, 0, value));
  CHECK(env, napi_create_int64(env, im2col_calls, &value));
  CHECK(env, napi_set_element(env, result, 1, value));
  CHECK(env, napi_create_int64(env, pointwise_calls, &value));
  CHECK(env, napi_set_element(env, result, 2, value));
  return result;
}
