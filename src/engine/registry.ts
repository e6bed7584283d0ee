/**
 * Every kernel and gradient the engine adds to tfjs, as one list per backend (in the spirit of
 * tfjs-backend-wasm's `register_all_kernels.ts`), registered once, when this module is first
 * imported. Each family's file holds its native form and its fallback; whether the native
 * engine is loaded is decided once, here, and each kernel carries its own fallback, so no
 * registration depends on another's order.
 */
// tfjs-core's Node bundle registers no gradients; tfjs-layers' Node bundle registers all of them,
// into the global registry every copy of tfjs-core shares. Ours replace some: import it first.
import '@tensorflow/tfjs-layers';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import {
  BATCH_NORM,
  batchNormCpuKernels,
  batchNormFamily,
  fusedBatchNormGradient,
} from './kernels/batchNorm.js';
import { convFamily } from './kernels/conv.js';
import { depthwiseFamily } from './kernels/depthwise.js';
import { elementwiseFamily } from './kernels/elementwise.js';
import { gatherFamily } from './kernels/gather.js';
import { fusedLseGradient, logSumExpFamily } from './kernels/logSumExp.js';
import { matMulFamily } from './kernels/matMul.js';
import { optimizerFamily } from './kernels/optimizer.js';
import { leadingAxisSumFamily } from './kernels/reductions.js';
import { segmentSumFamily, unsortedSegmentSumGradient } from './kernels/segmentSum.js';
import { shareDataFamily } from './kernels/shareData.js';
import type { KernelFamily } from './kernelTypes.js';
import { loadNative } from './native.js';

/** The kernel families on wasm, in the order `doctor` lists them. */
export const WASM_KERNEL_FAMILIES: readonly KernelFamily[] = [
  matMulFamily,
  convFamily,
  depthwiseFamily,
  batchNormFamily,
  logSumExpFamily,
  segmentSumFamily,
  leadingAxisSumFamily,
  elementwiseFamily,
  optimizerFamily,
  gatherFamily,
  shareDataFamily,
];

const engine = loadNative();

/** wasm: each family's native form when the addon is loaded, else its fallback. */
const wasmKernelConfigs: tf.KernelConfig[] = WASM_KERNEL_FAMILIES.flatMap((family) =>
  family.wasmKernels(engine),
);

/** cpu: only batch norm (the stock cpu kernels are what every other comparison is made against). */
const cpuKernelConfigs: tf.KernelConfig[] = batchNormCpuKernels();

/** Gradients, on every backend. */
const gradientConfigs: tf.GradConfig[] = [
  fusedBatchNormGradient,
  fusedLseGradient,
  unsortedSegmentSumGradient,
];

for (const config of [...wasmKernelConfigs, ...cpuKernelConfigs]) {
  const stock = tf.getKernel(config.kernelName, config.backendName);
  if (stock) {
    // replacing a stock kernel: unregister it first (registerKernel would warn, then overwrite),
    // and keep its setup (the wasm module's function lookups), which our fallbacks call into
    tf.unregisterKernel(config.kernelName, config.backendName);
    tf.registerKernel({ setupFunc: stock.setupFunc, disposeFunc: stock.disposeFunc, ...config });
  } else {
    tf.registerKernel(config);
  }
}
for (const config of gradientConfigs) {
  if (tf.getGradient(config.kernelName)) tf.unregisterGradient(config.kernelName);
  tf.registerGradient(config);
}

/** Each wasm kernel family and the path it takes here, as `doctor` and the run banner print it. */
export function wasmKernelPaths(): { family: string; path: string }[] {
  return WASM_KERNEL_FAMILIES.map((family) => ({ family: family.name, path: family.wasmPath(engine) }));
}

/** Whether the active backend has the batch-norm kernels (cpu and wasm; not tfjs-node). */
export function batchNormKernelsAvailable(): boolean {
  return tf.getKernel(BATCH_NORM, tf.getBackend()) !== undefined;
}
