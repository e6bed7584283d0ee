/*
 * The native engine's module: every family's functions, listed once. The families and the header
 * they share are described in engine.h.
 */
#include "engine.h"

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"sgemm", NULL, Sgemm, NULL, NULL, NULL, napi_default, NULL},
      {"biasRelu", NULL, BiasRelu, NULL, NULL, NULL, napi_default, NULL},
      {"config", NULL, BlasConfig, NULL, NULL, NULL, napi_default, NULL},
      {"threads", NULL, BlasThreads, NULL, NULL, NULL, napi_default, NULL},
      {"gemmPath", NULL, GemmPath, NULL, NULL, NULL, napi_default, NULL},
      {"setGemmPath", NULL, SetGemmPath, NULL, NULL, NULL, napi_default, NULL},
      {"conv", NULL, Conv, NULL, NULL, NULL, napi_default, NULL},
      {"convPath", NULL, ConvPath, NULL, NULL, NULL, napi_default, NULL},
      {"setConvPath", NULL, SetConvPath, NULL, NULL, NULL, napi_default, NULL},
      {"convCounts", NULL, ConvCounts, NULL, NULL, NULL, napi_default, NULL},
      {"setPointwiseConv", NULL, SetPointwiseConv, NULL, NULL, NULL, napi_default, NULL},
      {"depthwise", NULL, Depthwise, NULL, NULL, NULL, napi_default, NULL},
      {"depthwiseCounts", NULL, DepthwiseCounts, NULL, NULL, NULL, napi_default, NULL},
      {"batchNorm", NULL, BatchNorm, NULL, NULL, NULL, napi_default, NULL},
      {"batchNormGrad", NULL, BatchNormGrad, NULL, NULL, NULL, napi_default, NULL},
      {"batchNormInference", NULL, BatchNormInference, NULL, NULL, NULL, napi_default, NULL},
      {"fusedLse", NULL, FusedLse, NULL, NULL, NULL, napi_default, NULL},
      {"fusedLseGrad", NULL, FusedLseGrad, NULL, NULL, NULL, napi_default, NULL},
      {"parallelThreads", NULL, ParallelThreads, NULL, NULL, NULL, napi_default, NULL},
      {"colSum", NULL, ColSum, NULL, NULL, NULL, napi_default, NULL},
      {"segmentSum", NULL, SegmentSum, NULL, NULL, NULL, napi_default, NULL},
      {"binary", NULL, Binary, NULL, NULL, NULL, napi_default, NULL},
      {"unary", NULL, Unary, NULL, NULL, NULL, napi_default, NULL},
      {"clip", NULL, Clip, NULL, NULL, NULL, napi_default, NULL},
      {"pad", NULL, Pad, NULL, NULL, NULL, napi_default, NULL},
      {"adam", NULL, Adam, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
