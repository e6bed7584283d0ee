/*
 * Depthwise 2-D convolutions (tfjs's DepthwiseConv2dNative and both of its gradients) in NHWC with
 * [KH, KW, C, M] filters, output channel c·M + q: the forward and the input gradient through oneDNN
 * as a grouped convolution (C groups, conv_onednn.c) when the addon is built with it and the shape
 * suits it (no dilation, windows that cover the input), else, and for the filter gradient, direct
 * loops here: OpenMP over output rows (the filter gradient over a
 * fixed number of row chunks, combined in chunk order, so results never depend on the thread
 * count), channels innermost in blocks that stay in vector registers.
 */
#include <stdlib.h>
#include <string.h>

#include "engine.h"

/* The shape of one depthwise convolution: NHWC input with C channels, channel multiplier M. */
typedef struct {
  int64_t n, h, w, c, m, oh, ow, kh, kw, sh, sw, pt, pl, dh, dw;
} dw_shape;

enum { CHUNKS = 16, BLOCK = 16 };
/* Below this many multiply-adds one thread is faster than waking the others. */
static const int64_t PARALLEL_MIN = 1 << 18;

/* Calls each form has taken, so tests can tell which one ran. */
static int64_t onednn_calls = 0, direct_calls = 0;

/* The filter gradient's per-chunk partial sums, reused across calls (fresh pages cost ~10 us each). */
static float *partials = NULL;
static size_t partials_size = 0;

static float *partial_buffer(size_t floats) {
  if (floats > partials_size) {
    free(partials);
    partials = malloc(floats * sizeof(float));
    partials_size = partials ? floats : 0;
  }
  return partials;
}

/* Channel blocks of BLOCK are called with a constant length, so the accumulators stay in vector
 * registers; the last, shorter block of a row takes the same code with its own length. */
#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* out[c0 .. c0 + len] = Σ_i a[i][c] · b[i][c] over one pixel's taps (M = 1): the taps inside the
 * input are listed once per pixel, not per channel block. */
ALWAYS_INLINE void taps_block(const float *const *a, const float *const *b, int64_t taps, float *out, int64_t c0,
                              const int64_t len) {
  float acc[BLOCK];
  for (int64_t j = 0; j < len; j++) acc[j] = 0.0f;
  for (int64_t i = 0; i < taps; i++) {
    const float *av = a[i] + c0, *bv = b[i] + c0;
#pragma omp simd
    for (int64_t j = 0; j < len; j++) acc[j] += av[j] * bv[j];
  }
  for (int64_t j = 0; j < len; j++) out[c0 + j] = acc[j];
}

/* out[0 .. c) = Σ_i a[i][c] · b[i][c], in channel blocks. */
static inline void taps_pixel(const float *const *a, const float *const *b, int64_t taps, float *out, int64_t c) {
  int64_t c0 = 0;
  for (; c0 + BLOCK <= c; c0 += BLOCK) taps_block(a, b, taps, out, c0, BLOCK);
  if (c0 < c) taps_block(a, b, taps, out, c0, c - c0);
}

/* out[n, oy, :, :] = Σ_taps x[n, oy·sh + ky·dh - pt, ox·sw + kx·dw - pl, c] · w[ky, kx, c, q] */
VECTOR_CLONES static void forward_row(const dw_shape *s, const float *x, const float *w, float *out, int64_t n,
                                      int64_t oy) {
  const int64_t cm = s->c * s->m;
  const float *xs[s->kh * s->kw], *fs[s->kh * s->kw];
  float *o = out + (n * s->oh + oy) * s->ow * cm;
  for (int64_t ox = 0; ox < s->ow; ox++, o += cm) {
    int64_t taps = 0;
    for (int64_t ky = 0; ky < s->kh; ky++) {
      const int64_t y = oy * s->sh + ky * s->dh - s->pt;
      if (y < 0 || y >= s->h) continue;
      for (int64_t kx = 0; kx < s->kw; kx++) {
        const int64_t xx = ox * s->sw + kx * s->dw - s->pl;
        if (xx < 0 || xx >= s->w) continue;
        xs[taps] = x + ((n * s->h + y) * s->w + xx) * s->c;
        fs[taps++] = w + (ky * s->kw + kx) * cm;
      }
    }
    if (s->m == 1) {
      taps_pixel(xs, fs, taps, o, s->c);
      continue;
    }
    /* a channel multiplier: output channel c·M + q reads input channel c */
    for (int64_t j = 0; j < cm; j++) o[j] = 0.0f;
    for (int64_t i = 0; i < taps; i++)
      for (int64_t c = 0; c < s->c; c++)
        for (int64_t q = 0; q < s->m; q++) o[c * s->m + q] += xs[i][c] * fs[i][c * s->m + q];
  }
}

/* dx[n, y, :, :] = Σ_taps Σ_q dy[n, oy, ox, c·M + q] · w[ky, kx, c, q] over the taps whose output
 * (oy, ox) reads (y, x): oy·sh = y + pt - ky·dh, ox·sw = x + pl - kx·dw. Gathered per input pixel,
 * so rows are independent (no writes shared between threads). */
VECTOR_CLONES static void input_grad_row(const dw_shape *s, const float *dy, const float *w, float *dx, int64_t n,
                                         int64_t y) {
  const int64_t cm = s->c * s->m;
  const float *gs[s->kh * s->kw], *fs[s->kh * s->kw];
  int64_t oys[s->kh], kys[s->kh], rows = 0;
  for (int64_t ky = 0; ky < s->kh; ky++) {
    const int64_t ty = y + s->pt - ky * s->dh;
    if (ty < 0 || ty % s->sh || ty / s->sh >= s->oh) continue;
    oys[rows] = ty / s->sh;
    kys[rows++] = ky;
  }
  float *d = dx + (n * s->h + y) * s->w * s->c;
  for (int64_t x = 0; x < s->w; x++, d += s->c) {
    int64_t taps = 0;
    for (int64_t kx = 0; kx < s->kw; kx++) {
      const int64_t tx = x + s->pl - kx * s->dw;
      if (tx < 0 || tx % s->sw || tx / s->sw >= s->ow) continue;
      const int64_t ox = tx / s->sw;
      for (int64_t r = 0; r < rows; r++) {
        gs[taps] = dy + ((n * s->oh + oys[r]) * s->ow + ox) * cm;
        fs[taps++] = w + (kys[r] * s->kw + kx) * cm;
      }
    }
    if (s->m == 1) {
      taps_pixel(gs, fs, taps, d, s->c);
      continue;
    }
    for (int64_t c = 0; c < s->c; c++) {
      float acc = 0.0f;
      for (int64_t i = 0; i < taps; i++)
        for (int64_t q = 0; q < s->m; q++) acc += gs[i][c * s->m + q] * fs[i][c * s->m + q];
      d[c] = acc;
    }
  }
}

/* part[c0 .. c0 + len] += Σ_{ox0 <= ox < ox1} x_row[ox·sw + kx·dw - pl, c] · dy_row[ox, c] (M = 1). */
ALWAYS_INLINE void filter_grad_block(const dw_shape *s, const float *x_row, const float *g_row, float *p, int64_t kx,
                                     int64_t ox0, int64_t ox1, int64_t c0, const int64_t len) {
  float acc[BLOCK];
  for (int64_t j = 0; j < len; j++) acc[j] = p[c0 + j];
  for (int64_t ox = ox0; ox < ox1; ox++) {
    const float *xv = x_row + (ox * s->sw + kx * s->dw - s->pl) * s->c + c0;
    const float *g = g_row + ox * s->c + c0;
#pragma omp simd
    for (int64_t j = 0; j < len; j++) acc[j] += xv[j] * g[j];
  }
  for (int64_t j = 0; j < len; j++) p[c0 + j] = acc[j];
}

/* part[ky, kx, :] += Σ_ox x[n, oy·sh + ky·dh - pt, ox·sw + kx·dw - pl, c] · dy[n, oy, ox, c·M + q]
 * for the output rows r0 <= n·OH + oy < r1. */
VECTOR_CLONES static void filter_grad_rows(const dw_shape *s, const float *x, const float *dy, float *part, int64_t r0,
                                           int64_t r1) {
  const int64_t cm = s->c * s->m;
  for (int64_t r = r0; r < r1; r++) {
    const int64_t n = r / s->oh, oy = r % s->oh;
    const float *g_row = dy + r * s->ow * cm;
    for (int64_t ky = 0; ky < s->kh; ky++) {
      const int64_t y = oy * s->sh + ky * s->dh - s->pt;
      if (y < 0 || y >= s->h) continue;
      const float *x_row = x + (n * s->h + y) * s->w * s->c;
      for (int64_t kx = 0; kx < s->kw; kx++) {
        /* the outputs whose tap (ky, kx) lands inside the row: ox0 <= ox < ox1 */
        const int64_t first = s->pl - kx * s->dw;
        int64_t ox0 = first > 0 ? (first + s->sw - 1) / s->sw : 0;
        int64_t ox1 = (s->w - 1 + first) / s->sw + 1;
        if (s->w - 1 + first < 0) ox1 = 0;
        if (ox1 > s->ow) ox1 = s->ow;
        float *p = part + (ky * s->kw + kx) * cm;
        if (s->m == 1) {
          int64_t c0 = 0;
          for (; c0 + BLOCK <= s->c; c0 += BLOCK) filter_grad_block(s, x_row, g_row, p, kx, ox0, ox1, c0, BLOCK);
          if (c0 < s->c) filter_grad_block(s, x_row, g_row, p, kx, ox0, ox1, c0, s->c - c0);
          continue;
        }
        for (int64_t ox = ox0; ox < ox1; ox++) {
          const float *xv = x_row + (ox * s->sw + kx * s->dw - s->pl) * s->c;
          const float *g = g_row + ox * cm;
          for (int64_t c = 0; c < s->c; c++)
            for (int64_t q = 0; q < s->m; q++) p[c * s->m + q] += xv[c] * g[c * s->m + q];
        }
      }
    }
  }
}

static inline int64_t chunk_start(int64_t rows, int chunk) { return rows * chunk / CHUNKS; }

/* The direct loops; false when the filter gradient's partial sums cannot be allocated. */
static bool direct_depthwise(const dw_shape *s, int mode, const float *p, const float *q, float *out) {
  const int64_t cm = s->c * s->m;
  const bool parallel = s->n * s->oh * s->ow * cm * s->kh * s->kw >= PARALLEL_MIN;
  if (mode == CONV_FORWARD) {
#pragma omp parallel for collapse(2) schedule(static) if (parallel)
    for (int64_t n = 0; n < s->n; n++)
      for (int64_t oy = 0; oy < s->oh; oy++) forward_row(s, p, q, out, n, oy);
  } else if (mode == CONV_INPUT_GRAD) {
#pragma omp parallel for collapse(2) schedule(static) if (parallel)
    for (int64_t n = 0; n < s->n; n++)
      for (int64_t y = 0; y < s->h; y++) input_grad_row(s, p, q, out, n, y);
  } else {
    const int64_t size = s->kh * s->kw * cm, rows = s->n * s->oh;
    float *part = partial_buffer((size_t)(size * CHUNKS));
    if (!part) return false;
    memset(part, 0, (size_t)(size * CHUNKS) * sizeof(float));
#pragma omp parallel for schedule(static) if (parallel)
    for (int ch = 0; ch < CHUNKS; ch++)
      filter_grad_rows(s, p, q, part + ch * size, chunk_start(rows, ch), chunk_start(rows, ch + 1));
    for (int64_t i = 0; i < size; i++) {
      double total = 0.0;
      for (int ch = 0; ch < CHUNKS; ch++) total += part[ch * size + i];
      out[i] = (float)total;
    }
  }
  return true;
}

/*
 * depthwise(n, h, w, c, m, oh, ow, kh, kw, sh, sw, padTop, padLeft, dh, dw, mode, p, q, out)
 * mode 0 forward:        out[N,OH,OW,C·M] = x ⊛ W           (p = x, q = W)
 * mode 1 filter grad:    out[KH,KW,C,M]                       (p = x, q = dy)
 * mode 2 input grad:     out[N,H,W,C]                         (p = dy, q = W)
 */
napi_value Depthwise(napi_env env, napi_callback_info info) {
  ARGS(env, info, 19, argv, "depthwise");
  dw_shape s;
  int64_t mode;
  float *p, *q, *out;
  size_t lp, lq, lo;
  int64_t *fields[] = {&s.n, &s.h, &s.w, &s.c, &s.m, &s.oh, &s.ow, &s.kh, &s.kw, &s.sh, &s.sw, &s.pt, &s.pl, &s.dh, &s.dw};
  for (int i = 0; i < 15; i++)
    if (!get_int(env, argv[i], fields[i])) return NULL;
  if (!get_int(env, argv[15], &mode) || !float32_view(env, argv[16], &p, &lp) ||
      !float32_view(env, argv[17], &q, &lq) || !float32_view(env, argv[18], &out, &lo))
    return NULL;
  REQUIRE(env, s.n > 0 && s.h > 0 && s.w > 0 && s.c > 0 && s.m > 0 && s.oh > 0 && s.ow > 0 && s.kh > 0 && s.kw > 0 &&
                   s.sh > 0 && s.sw > 0 && s.dh > 0 && s.dw > 0,
          "depthwise: sizes must be > 0");
  const size_t x_size = s.n * s.h * s.w * s.c, y_size = s.n * s.oh * s.ow * s.c * s.m, w_size = s.kh * s.kw * s.c * s.m;
  if (mode == CONV_FORWARD)
    REQUIRE(env, lp >= x_size && lq >= w_size && lo >= y_size, "depthwise: a buffer is smaller than its shape");
  else if (mode == CONV_FILTER_GRAD)
    REQUIRE(env, lp >= x_size && lq >= y_size && lo >= w_size, "depthwise: a buffer is smaller than its shape");
  else if (mode == CONV_INPUT_GRAD)
    REQUIRE(env, lp >= y_size && lq >= w_size && lo >= x_size, "depthwise: a buffer is smaller than its shape");
  else
    REQUIRE(env, 0, "depthwise: mode must be 0, 1 or 2");
#ifdef CONTRASTIVE_ONEDNN
  /* the filter gradient stays on the direct loops: at MobileNetV2's layers (batch 16, 224 × 224)
   * they took 37-47 ms in all against oneDNN's 58-69 ms (bench/mobilenet.ts --layers-only) */
  if (onednn_convolutions_on() && mode != CONV_FILTER_GRAD && s.dh == 1 && s.dw == 1) {
    const conv_shape g = {s.n, s.h, s.w, s.c, s.oh, s.ow, s.c * s.m, s.kh, s.kw, s.sh, s.sw, s.pt, s.pl, s.c};
    if (onednn_conv(&g, (int)mode, p, q, NULL, false, out) == 0) {
      onednn_calls++;
      return NULL;
    }
  }
#endif
  direct_calls++;
  REQUIRE(env, direct_depthwise(&s, (int)mode, p, q, out), "depthwise: out of memory for the filter gradient's sums");
  return NULL;
}

/* depthwiseCounts(): [calls oneDNN took, calls the direct loops took] since the addon loaded. */
napi_value DepthwiseCounts(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result, value;
  CHECK(env, napi_create_array_with_length(env, 2, &result));
  CHECK(env, napi_create_int64(env, onednn_calls, &value));
  CHECK(env, napi_set_element(env, result, 0, value));
  CHECK(env, napi_create_int64(env, direct_calls, &value));
  CHECK(env, napi_set_element(env, result, 1, value));
  return result;
}
