/*
 * 2-D convolutions through oneDNN (the library PyTorch's CPU convolutions use; it JIT-compiles
 * for the CPU it finds): forward with bias and ReLU fused, backward data, backward weights, on
 * tfjs's NHWC tensors and [KH, KW, Cin, Cout] ("hwio") filters in place, without transposes.
 * Activations stay NHWC; only the small filter is reordered to the blocked layout oneDNN's
 * kernels prefer. Primitives are cached per shape; their scratchpads and the blocked filters
 * live in buffers reused across calls (a fresh page costs ~10 us to touch on this VM).
 * Compiled only when oneDNN is found (scripts/build-native.mjs defines CONTRASTIVE_ONEDNN).
 */
#ifdef CONTRASTIVE_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

static dnnl_engine_t engine = NULL;
static dnnl_stream_t stream = NULL;
static int started = 0; /* 1: ready, -1: failed to start */

static bool start(void) {
  if (started == 0) {
    started = dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success &&
                      dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) == dnnl_success
                  ? 1
                  : -1;
  }
  return started == 1;
}

/* Buffers that only grow, shared by every primitive (calls are sequential: JS is one thread). */
typedef struct {
  void *data;
  size_t bytes;
} growing_buffer;

static void *grow(growing_buffer *b, size_t bytes) {
  if (bytes > b->bytes) {
    free(b->data);
    b->data = malloc(bytes);
    b->bytes = b->data ? bytes : 0;
  }
  return b->data;
}

static growing_buffer scratchpad_buffer, blocked_weights_buffer;

/* One cached convolution: its primitive, the filter reorder when oneDNN wants another layout
 * (hwio -> blocked before forward and backward data, blocked -> hwio after backward weights),
 * and memory objects whose data handles are set on every call. */
typedef struct {
  conv_shape shape;
  int mode;
  bool bias, relu;
  bool used;
  uint64_t last_use;
  dnnl_primitive_desc_t forward_hint; /* backward primitives keep their forward hint alive */
  dnnl_primitive_t conv, reorder;
  dnnl_memory_t activations, gradient, weights_user, weights_blocked, bias_mem, scratchpad;
  size_t blocked_bytes, scratchpad_bytes;
} cached_conv;

enum { CACHE_SIZE = 96 };
static cached_conv cache[CACHE_SIZE];
static uint64_t clock_ticks = 0;

#define TRY(call)                      \
  do {                                 \
    if ((call) != dnnl_success) goto fail; \
  } while (0)

static void release(cached_conv *c) {
  if (c->conv) dnnl_primitive_destroy(c->conv);
  if (c->reorder) dnnl_primitive_destroy(c->reorder);
  if (c->forward_hint) dnnl_primitive_desc_destroy(c->forward_hint);
  dnnl_memory_t mems[] = {c->activations, c->gradient, c->weights_user, c->weights_blocked, c->bias_mem, c->scratchpad};
  for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
    if (mems[i]) dnnl_memory_destroy(mems[i]);
  memset(c, 0, sizeof *c);
}

static bool same_key(const cached_conv *c, const conv_shape *s, int mode, bool bias, bool relu) {
  return c->used && c->mode == mode && c->bias == bias && c->relu == relu && memcmp(&c->shape, s, sizeof *s) == 0;
}

/* Creates the primitive for one shape and mode; false when oneDNN declines it. */
static bool build(cached_conv *c, const conv_shape *s, int mode, bool bias, bool relu) {
  dnnl_memory_desc_t x_md, y_md, w_user_md, w_any_md, b_md;
  dnnl_primitive_desc_t pd = NULL, reorder_pd = NULL;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t post_ops = NULL;
  const dnnl_dims_t x_dims = {s->n, s->cin, s->h, s->w}, y_dims = {s->n, s->cout, s->oh, s->ow},
                    w_dims = {s->cout, s->cin, s->kh, s->kw}, b_dims = {s->cout},
                    g_dims = {s->groups, s->cout / s->groups, s->cin / s->groups, s->kh, s->kw};
  /* grouped (depthwise) filters: [KH, KW, Cin / G, G, Cout / G], oneDNN's hwigo */
  const bool grouped = s->groups > 1;
  const dnnl_dims_t strides = {s->sh, s->sw}, pad_l = {s->pt, s->pl},
                    pad_r = {(s->oh - 1) * s->sh + s->kh - s->h - s->pt, (s->ow - 1) * s->sw + s->kw - s->w - s->pl};
  memset(c, 0, sizeof *c);
  if (pad_r[0] < 0 || pad_r[1] < 0) return false; /* 'valid' windows that skip the last rows: im2col takes them */
  TRY(dnnl_memory_desc_init_by_tag(&x_md, 4, x_dims, dnnl_f32, dnnl_nhwc));
  TRY(dnnl_memory_desc_init_by_tag(&y_md, 4, y_dims, dnnl_f32, dnnl_nhwc));
  TRY(dnnl_memory_desc_init_by_tag(&w_user_md, grouped ? 5 : 4, grouped ? g_dims : w_dims, dnnl_f32,
                                    grouped ? dnnl_hwigo : dnnl_hwio));
  TRY(dnnl_memory_desc_init_by_tag(&w_any_md, grouped ? 5 : 4, grouped ? g_dims : w_dims, dnnl_f32,
                                    dnnl_format_tag_any));
  TRY(dnnl_memory_desc_init_by_tag(&b_md, 1, b_dims, dnnl_f32, dnnl_a));
  TRY(dnnl_primitive_attr_create(&attr));
  TRY(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));

  dnnl_convolution_desc_t forward_desc, desc;
  TRY(dnnl_convolution_forward_desc_init(&forward_desc, dnnl_forward_training, dnnl_convolution_direct, &x_md,
                                         &w_any_md, bias && mode == CONV_FORWARD ? &b_md : NULL, &y_md, strides,
                                         pad_l, pad_r));
  if (mode == CONV_FORWARD) {
    if (relu) {
      TRY(dnnl_post_ops_create(&post_ops));
      TRY(dnnl_post_ops_append_eltwise(post_ops, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f));
      TRY(dnnl_primitive_attr_set_post_ops(attr, post_ops));
    }
    TRY(dnnl_primitive_desc_create(&pd, &forward_desc, attr, engine, NULL));
  } else {
    TRY(dnnl_primitive_desc_create(&c->forward_hint, &forward_desc, NULL, engine, NULL));
    if (mode == CONV_INPUT_GRAD)
      TRY(dnnl_convolution_backward_data_desc_init(&desc, dnnl_convolution_direct, &x_md, &w_any_md, &y_md, strides,
                                                   pad_l, pad_r));
    else
      TRY(dnnl_convolution_backward_weights_desc_init(&desc, dnnl_convolution_direct, &x_md, &w_any_md, NULL, &y_md,
                                                      strides, pad_l, pad_r));
    TRY(dnnl_primitive_desc_create(&pd, &desc, attr, engine, c->forward_hint));
  }
  const dnnl_memory_desc_t *w_md =
      dnnl_primitive_desc_query_md(pd, mode == CONV_FILTER_GRAD ? dnnl_query_diff_weights_md : dnnl_query_weights_md, 0);
  const dnnl_memory_desc_t *pad_md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
  c->scratchpad_bytes = pad_md ? dnnl_memory_desc_get_size(pad_md) : 0;
  TRY(dnnl_primitive_create(&c->conv, pd));
  TRY(dnnl_memory_create(&c->activations, &x_md, engine, DNNL_MEMORY_NONE));
  TRY(dnnl_memory_create(&c->gradient, &y_md, engine, DNNL_MEMORY_NONE));
  TRY(dnnl_memory_create(&c->weights_user, &w_user_md, engine, DNNL_MEMORY_NONE));
  if (c->scratchpad_bytes) TRY(dnnl_memory_create(&c->scratchpad, pad_md, engine, DNNL_MEMORY_NONE));
  if (bias && mode == CONV_FORWARD) TRY(dnnl_memory_create(&c->bias_mem, &b_md, engine, DNNL_MEMORY_NONE));
  if (!dnnl_memory_desc_equal(w_md, &w_user_md)) {
    c->blocked_bytes = dnnl_memory_desc_get_size(w_md);
    TRY(dnnl_memory_create(&c->weights_blocked, w_md, engine, DNNL_MEMORY_NONE));
    if (mode == CONV_FILTER_GRAD)
      TRY(dnnl_reorder_primitive_desc_create(&reorder_pd, w_md, engine, &w_user_md, engine, NULL));
    else
      TRY(dnnl_reorder_primitive_desc_create(&reorder_pd, &w_user_md, engine, w_md, engine, NULL));
    TRY(dnnl_primitive_create(&c->reorder, reorder_pd));
  }
  dnnl_primitive_desc_destroy(pd);
  if (reorder_pd) dnnl_primitive_desc_destroy(reorder_pd);
  dnnl_primitive_attr_destroy(attr);
  if (post_ops) dnnl_post_ops_destroy(post_ops);
  c->shape = *s;
  c->mode = mode;
  c->bias = bias;
  c->relu = relu;
  c->used = true;
  return true;
fail:
  if (pd) dnnl_primitive_desc_destroy(pd);
  if (reorder_pd) dnnl_primitive_desc_destroy(reorder_pd);
  if (attr) dnnl_primitive_attr_destroy(attr);
  if (post_ops) dnnl_post_ops_destroy(post_ops);
  release(c);
  return false;
}

/* The cached primitive for this convolution, built on first use; NULL when oneDNN declines. */
static cached_conv *lookup(const conv_shape *s, int mode, bool bias, bool relu) {
  cached_conv *oldest = &cache[0];
  for (int i = 0; i < CACHE_SIZE; i++) {
    if (same_key(&cache[i], s, mode, bias, relu)) return &cache[i];
    if (!cache[i].used || (oldest->used && cache[i].last_use < oldest->last_use)) oldest = &cache[i];
  }
  if (oldest->used) release(oldest);
  return build(oldest, s, mode, bias, relu) ? oldest : NULL;
}

int onednn_conv(const conv_shape *s, int mode, const float *p, const float *q, const float *bias, bool relu,
                float *out) {
  if (!start()) return -1;
  cached_conv *c = lookup(s, mode, bias != NULL, relu);
  if (!c) return -1;
  c->last_use = ++clock_ticks;
  void *pad = c->scratchpad_bytes ? grow(&scratchpad_buffer, c->scratchpad_bytes) : NULL;
  void *blocked = c->weights_blocked ? grow(&blocked_weights_buffer, c->blocked_bytes) : NULL;
  if ((c->scratchpad_bytes && !pad) || (c->weights_blocked && !blocked)) return -1;
  if (pad) TRY(dnnl_memory_set_data_handle(c->scratchpad, pad));
  if (blocked) TRY(dnnl_memory_set_data_handle(c->weights_blocked, blocked));
  dnnl_memory_t weights = c->weights_blocked ? c->weights_blocked : c->weights_user;
  dnnl_exec_arg_t args[5];
  int count = 0;
  if (mode == CONV_FORWARD) {
    TRY(dnnl_memory_set_data_handle(c->activations, (void *)p));
    TRY(dnnl_memory_set_data_handle(c->weights_user, (void *)q));
    TRY(dnnl_memory_set_data_handle(c->gradient, out)); /* here: the output */
    args[count++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, c->activations};
    args[count++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, weights};
    args[count++] = (dnnl_exec_arg_t){DNNL_ARG_DST, c->gradient};
    if (c->bias_mem) {
      TRY(dnnl_memory_set_data_handle(c->bias_mem, (void *)bias));
      args[count++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, c->bias_mem};
    }
  } else if (mode == CONV_INPUT_GRAD) {
    TRY(dnnl_memory_set_data_handle(c->gradient, (void *)p));
    TRY(dnnl_memory_set_data_handle(c->weights_user, (void *)q));
    TRY(dnnl_memory_set_data_handle(c->activations, out)); /* here: the input gradient */
    args[count++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_DST, c->gradient};
    args[count++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, weights};
    args[count++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_SRC, c->activations};
  } else {
    TRY(dnnl_memory_set_data_handle(c->activations, (void *)p));
    TRY(dnnl_memory_set_data_handle(c->gradient, (void *)q));
    TRY(dnnl_memory_set_data_handle(c->weights_user, out)); /* here: the filter gradient */
    args[count++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, c->activations};
    args[count++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_DST, c->gradient};
    args[count++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_WEIGHTS, weights};
  }
  if (c->scratchpad) args[count++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, c->scratchpad};
  if (c->reorder && mode != CONV_FILTER_GRAD) {
    dnnl_exec_arg_t r[] = {{DNNL_ARG_FROM, c->weights_user}, {DNNL_ARG_TO, c->weights_blocked}};
    TRY(dnnl_primitive_execute(c->reorder, stream, 2, r));
  }
  TRY(dnnl_primitive_execute(c->conv, stream, count, args));
  if (c->reorder && mode == CONV_FILTER_GRAD) {
    dnnl_exec_arg_t r[] = {{DNNL_ARG_FROM, c->weights_blocked}, {DNNL_ARG_TO, c->weights_user}};
    TRY(dnnl_primitive_execute(c->reorder, stream, 2, r));
  }
  TRY(dnnl_stream_wait(stream));
  return 0;
fail:
  return -1;
}

static const char *isa_name(dnnl_cpu_isa_t isa) {
  switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse4.1";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other ISA";
  }
}

const char *onednn_description(void) {
  static char text[96];
  if (!start()) return NULL;
  const dnnl_version_t *v = dnnl_version();
  snprintf(text, sizeof text, "oneDNN %d.%d.%d (%s)", v->major, v->minor, v->patch,
           isa_name(dnnl_get_effective_cpu_isa()));
  return text;
}
#endif
