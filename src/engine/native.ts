import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';

/** The native addon's functions (native/blas.c). */
interface NativeBlas {
  sgemm(
    transposeA: boolean,
    transposeB: boolean,
    batch: number,
    m: number,
    n: number,
    k: number,
    a: Float32Array,
    aBatchStride: number,
    b: Float32Array,
    bBatchStride: number,
    out: Float32Array,
  ): void;
  biasRelu(out: Float32Array, rows: number, cols: number, bias: Float32Array | null, relu: boolean): void;
  config(): string;
  threads(): number;
}

/** Whether the native engine is loaded, and why not. */
export interface NativeStatus {
  available: boolean;
  detail: string;
}

let addon: NativeBlas | null | undefined;
let why = '';

/** Loads `native/build/contrastive_native.node` once; null when absent or disabled (`CONTRASTIVE_NATIVE=0`). */
export function loadNative(): NativeBlas | null {
  if (addon !== undefined) return addon;
  if (process.env.CONTRASTIVE_NATIVE === '0') {
    why = 'disabled by CONTRASTIVE_NATIVE=0';
    addon = null;
    return addon;
  }
  try {
    addon = createRequire(import.meta.url)('../../../native/build/contrastive_native.node') as NativeBlas;
  } catch (error) {
    why = `addon not built (${(error as Error).message.split('\n')[0]}); run: node scripts/build-native.mjs`;
    addon = null;
  }
  return addon;
}

/** What `doctor` and the start of each run print about the native engine. */
export function nativeStatus(): NativeStatus {
  const blas = loadNative();
  if (!blas) return { available: false, detail: why };
  return { available: true, detail: `OpenBLAS (${blas.config().trim()}), ${blas.threads()} threads` };
}

type KernelFunc = tf.KernelConfig['kernelFunc'];
interface WasmBackend {
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  wasm: { HEAPU8: Uint8Array };
}

let registered = false;

/**
 * Routes the wasm backend's matrix products to OpenBLAS, reading and writing the wasm heap in
 * place (zero-copy: views are re-made on every call, the heap moves when it grows). `_FusedMatMul`
 * with a bias and a linear or ReLU activation is handled too; other fused forms keep the original
 * kernel. Returns false when the addon is not available.
 */
export function registerNativeMatMul(): boolean {
  const blas = loadNative();
  if (!blas) return false;
  if (registered) return true;
  const original = {
    BatchMatMul: tf.getKernel('BatchMatMul', 'wasm'),
    _FusedMatMul: tf.getKernel('_FusedMatMul', 'wasm'),
  };
  if (!original.BatchMatMul || !original._FusedMatMul) return false;
  const run =
    (fallback: KernelFunc): KernelFunc =>
    (args) => {
      const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
      const attrs = args.attrs as { transposeA: boolean; transposeB: boolean; activation?: string };
      const activation = attrs.activation ?? 'linear';
      if (
        !a ||
        !b ||
        a.dtype !== 'float32' ||
        b.dtype !== 'float32' ||
        preluActivationWeights ||
        (activation !== 'linear' && activation !== 'relu')
      ) {
        return fallback(args);
      }
      const backend = args.backend as unknown as WasmBackend;
      const ra = a.shape.length;
      const rb = b.shape.length;
      const m = attrs.transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
      const k = attrs.transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
      const n = attrs.transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
      const batchA = a.shape.slice(0, -2).reduce((x, y) => x * y, 1);
      const batchB = b.shape.slice(0, -2).reduce((x, y) => x * y, 1);
      if (batchA !== batchB && batchA !== 1 && batchB !== 1) return fallback(args);
      // only a per-column bias ([n]) is fused here; anything else goes to the original kernel
      if (bias && bias.shape.reduce((x, y) => x * y, 1) !== n) return fallback(args);
      const batch = Math.max(batchA, batchB);
      const outer = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
      const out = backend.makeOutput([...outer, m, n], 'float32');
      // views after makeOutput: allocating may have grown (moved) the heap
      const heap = backend.wasm.HEAPU8.buffer;
      const view = (t: tf.TensorInfo, size: number) =>
        new Float32Array(heap, backend.dataIdMap.get(t.dataId).memoryOffset, size);
      const sizeA = batchA * m * k;
      const sizeB = batchB * k * n;
      const c = view(out, batch * m * n);
      blas.sgemm(
        attrs.transposeA,
        attrs.transposeB,
        batch,
        m,
        n,
        k,
        view(a, sizeA),
        batchA === 1 ? 0 : m * k,
        view(b, sizeB),
        batchB === 1 ? 0 : k * n,
        c,
      );
      if (bias || activation === 'relu')
        blas.biasRelu(c, batch * m, n, bias ? view(bias, n) : null, activation === 'relu');
      return out;
    };
  for (const [name, config] of Object.entries(original)) {
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ ...config!, kernelFunc: run(config!.kernelFunc) });
  }
  registered = true;
  return true;
}
