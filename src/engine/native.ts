import { createRequire } from 'node:module';

/** The native engine's functions (native/*.c, listed in native/addon.c), by family. */
export interface NativeEngine {
  /** GEMM (gemm.c): `out[i] = op(a[i]) · op(b[i])`, row-major; a batch stride of 0 broadcasts. */
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
  /** In place `out[r, c] = max?(out[r, c] + bias[c], 0)` (gemm.c). */
  biasRelu(out: Float32Array, rows: number, cols: number, bias: Float32Array | null, relu: boolean): void;
  /** OpenBLAS's build string. */
  config(): string;
  /** OpenBLAS's thread count. */
  threads(): number;
  /** Which library `sgemm` calls: `OpenBLAS` (the default) or `oneDNN sgemm`. */
  gemmPath(): string;
  /** Routes `sgemm` to oneDNN's sgemm (true, where built with oneDNN) or OpenBLAS. */
  setGemmPath(useOneDnn: boolean): void;
  /**
   * A 2-D convolution (conv.c): 13 shape numbers (n, h, w, cin, oh, ow, cout, kh, kw, sh, sw,
   * padTop, padLeft), a mode (0 forward, 1 filter gradient, 2 input gradient), two inputs, the
   * forward bias or null, whether the forward applies ReLU, the output, and the im2col buffer's
   * size limit in floats.
   */
  conv(
    ...args: [...number[], Float32Array, Float32Array, Float32Array | null, boolean, Float32Array, number]
  ): void;
  /** Which form convolutions take, e.g. `oneDNN 2.6.3 (avx512_core)` or `im2col + OpenBLAS (…)`. */
  convPath(): string;
  /** Turns oneDNN off (false) or back on for later convolutions; a no-op when built without it. */
  setConvPath(useOneDnn: boolean): void;
  /** Calls each form has taken since the addon loaded: `[oneDNN, im2col + OpenBLAS, pointwise]`. */
  convCounts(): [number, number, number];
  /**
   * Whether 1×1 convolutions without padding take the pointwise form (one sgemm, strided pixels
   * gathered; the default) or the path above. Absent from addons built before it.
   */
  setPointwiseConv?(on: boolean): void;
  /**
   * A depthwise 2-D convolution (depthwise.c): 15 shape numbers (n, h, w, c, channel multiplier
   * m, oh, ow, kh, kw, sh, sw, padTop, padLeft, dilation h, dilation w), a mode (0 forward, 1
   * filter gradient, 2 input gradient), two inputs and the output: oneDNN's grouped convolution
   * where it takes the shape (and `setConvPath` has not turned it off), direct loops otherwise.
   */
  depthwise(...args: [...number[], Float32Array, Float32Array, Float32Array]): void;
  /** Calls each depthwise form has taken since the addon loaded: `[oneDNN, direct loops]`. */
  depthwiseCounts(): [number, number];
  /** Training-mode batch norm over the rows of `x [rows, cols]`: `y`, batch mean, biased variance. */
  batchNorm(
    x: Float32Array,
    rows: number,
    cols: number,
    gamma: Float32Array,
    beta: Float32Array,
    eps: number,
    y: Float32Array,
    mean: Float32Array,
    variance: Float32Array,
  ): void;
  /** The gradient of `batchNorm` w.r.t. `x`, `gamma` and `beta`. */
  batchNormGrad(
    x: Float32Array,
    dy: Float32Array,
    mean: Float32Array,
    variance: Float32Array,
    gamma: Float32Array,
    rows: number,
    cols: number,
    eps: number,
    dx: Float32Array,
    dgamma: Float32Array,
    dbeta: Float32Array,
  ): void;
  /**
   * Inference-mode batch norm (tfjs's `FusedBatchNorm`) over the last axis of `x [rows, cols]`,
   * each parameter `[cols]`: `y = (x - mean) · scale / sqrt(variance + eps) + offset`; a null
   * offset is 0, a null scale 1.
   */
  batchNormInference(
    x: Float32Array,
    rows: number,
    cols: number,
    mean: Float32Array,
    variance: Float32Array,
    offset: Float32Array | null,
    scale: Float32Array | null,
    eps: number,
    y: Float32Array,
  ): void;
  /** `out[i] = log Σ_{j≠i} exp(invTau · f_i·f_j)` for `F [m, d]`, tiled (memory O(tile)). */
  fusedLse(f: Float32Array, m: number, d: number, invTau: number, out: Float32Array): void;
  /** The gradient of `Σ_i dy_i lse_i` w.r.t. F, tiled. */
  fusedLseGrad(
    f: Float32Array,
    lse: Float32Array,
    dy: Float32Array,
    m: number,
    d: number,
    invTau: number,
    out: Float32Array,
  ): void;
  /** Threads the fused loss splits its rows among (OpenMP); 0 when built without OpenMP. */
  parallelThreads(): number;
  /** `out[c] = scale · Σ_r x[r, c]`, accumulated in float64. */
  colSum(x: Float32Array, rows: number, cols: number, out: Float32Array, scale: number): void;
  /** Element-wise `out = a op b` over equal lengths: op 0 add, 1 subtract, 2 multiply. */
  binary(op: number, a: Float32Array, b: Float32Array, out: Float32Array): void;
  /** `out = relu(x)` (`step` false), or `out = x > 0 ? 1 : alpha` with NaN kept (`step` true). */
  unary(step: boolean, alpha: number, x: Float32Array, out: Float32Array): void;
  /** `out = x > hi ? hi : x < lo ? lo : x` (tfjs's ClipByValue, NaN kept); absent from older builds. */
  clip?(lo: number, hi: number, x: Float32Array, out: Float32Array): void;
  /**
   * tfjs's PadV2 on a float32 tensor of rank ≤ 4 given as 4 dims (leading 1s), padding before
   * and after each axis with `value`; absent from older builds.
   */
  pad?(
    x: Float32Array,
    d0: number,
    d1: number,
    d2: number,
    d3: number,
    before0: number,
    before1: number,
    before2: number,
    before3: number,
    after0: number,
    after1: number,
    after2: number,
    after3: number,
    value: number,
    out: Float32Array,
  ): void;
  /**
   * The Adam / AdamW update of one variable (optimizer.c): `m' = m·β1 + g·(1-β1)`,
   * `v' = v·β2 + g²·(1-β2)`, `w' = w·keep - lr·(m'/c1)/(sqrt(v'/c2) + ε)`, each operation in
   * float32 as tfjs's ops do it; `scalars` is `[β1, 1-β1, β2, 1-β2, c1, c2, ε, lr, keep]`.
   * Absent from addons built before it.
   */
  adam?(
    w: Float32Array,
    m: Float32Array,
    v: Float32Array,
    g: Float32Array,
    scalars: Float64Array,
    wOut: Float32Array,
    mOut: Float32Array,
    vOut: Float32Array,
  ): void;
  /** `out[g, :] = Σ_{i: ids[i] = g} x[i, :]`. */
  segmentSum(
    x: Float32Array,
    ids: Int32Array,
    n: number,
    d: number,
    numSegments: number,
    out: Float32Array,
  ): void;
}

/** Whether the native engine is loaded, and why not. */
export interface NativeStatus {
  available: boolean;
  detail: string;
}

/** The command that builds the addon, from a user's project or this repository. */
export const BUILD_NATIVE_COMMAND = 'npx contrastive build-native';

let addon: NativeEngine | null | undefined;
let why = '';
let waitPolicyDefaulted = false;

/**
 * Whether loading the engine set `OMP_WAIT_POLICY` (to `PASSIVE`) because the environment had
 * none; child processes that should see the user's environment (the bench's PyTorch) drop it then.
 */
export function ompWaitPolicyDefaulted(): boolean {
  return waitPolicyDefaulted;
}

/**
 * Loads `native/build/contrastive_native.node` once; null when absent or disabled
 * (`CONTRASTIVE_NATIVE=0`). `CONTRASTIVE_ONEDNN=0` keeps convolutions on im2col + OpenBLAS and
 * matrix products on OpenBLAS; `CONTRASTIVE_GEMM=openblas` only the latter.
 * Sets `OMP_WAIT_POLICY=PASSIVE` unless the environment already sets it.
 */
export function loadNative(): NativeEngine | null {
  if (addon !== undefined) return addon;
  // globalThis.process: the engine is also bundled into web pages, where there is no process
  const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};
  if (env.CONTRASTIVE_NATIVE === '0') {
    why = 'disabled by CONTRASTIVE_NATIVE=0';
    addon = null;
    return addon;
  }
  // OpenMP threads that wait passively: spinning ones (libgomp's default) take the cores from
  // OpenBLAS's threads and from other processes; on this 2-core VM with other work running, a CNN
  // step took 1.4-1.5× as long with spinning threads. Read once, when the addon loads libgomp.
  if (env.OMP_WAIT_POLICY === undefined) {
    env.OMP_WAIT_POLICY = 'PASSIVE';
    waitPolicyDefaulted = true;
  }
  try {
    addon = createRequire(import.meta.url)('../../../native/build/contrastive_native.node') as NativeEngine;
    if (env.CONTRASTIVE_ONEDNN === '0') addon.setConvPath(false);
    // matrix products: oneDNN's sgemm where the addon has oneDNN (bench/engine.ts measured it
    // faster than OpenBLAS here at every W1 shape, plain and transposed: 375-437 against
    // 272-351 GFLOP/s), unless CONTRASTIVE_GEMM=openblas or CONTRASTIVE_ONEDNN=0
    addon.setGemmPath(
      addon.convPath().startsWith('oneDNN') && (env.CONTRASTIVE_GEMM ?? 'onednn') === 'onednn',
    );
  } catch (error) {
    why = `addon not built (${(error as Error).message.split('\n')[0]}); run: ${BUILD_NATIVE_COMMAND}`;
    addon = null;
  }
  return addon;
}

/**
 * Forgets a failed load so the next {@link loadNative} tries again (`build-native` builds the
 * addon in a process that may already have looked for it). Kernels registered at import keep
 * the path they chose; a new process uses the addon.
 */
export function retryNativeLoad(): void {
  if (addon === null) addon = undefined;
}

/** What `doctor` and the start of each run print about the native engine as a whole. */
export function nativeStatus(): NativeStatus {
  const engine = loadNative();
  if (!engine) return { available: false, detail: why };
  return { available: true, detail: `OpenBLAS (${engine.config().trim()}), ${engine.threads()} threads` };
}
