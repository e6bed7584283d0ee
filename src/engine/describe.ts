import * as tf from '@tensorflow/tfjs-core';
import { BACKEND_PREFERENCE, type BackendName, useBackend } from './backend.js';
import { nativeStatus } from './native.js';
import { wasmKernelPaths } from './registry.js';

/** What {@link describeEngine} found. */
export interface EngineReport {
  /** The backend `useBackend('auto')` picks. */
  chosen: BackendName;
  /** Each known backend and whether it loads, with the reason when it does not. */
  backends: { name: BackendName; available: boolean; detail: string }[];
  /** The path each kernel family takes on wasm (native engine or fallback). */
  wasmKernels: { family: string; path: string }[];
  /** Human-readable lines, as `contrastive doctor` prints them. */
  lines: string[];
}

/** Probes every known backend and reports which one runs will use, and why. */
export async function describeEngine(): Promise<EngineReport> {
  const backends: EngineReport['backends'] = [];
  for (const name of BACKEND_PREFERENCE) {
    try {
      await useBackend(name);
      backends.push({ name, available: true, detail: describeBackend(name) });
    } catch (error) {
      backends.push({ name, available: false, detail: (error as Error).message });
    }
  }
  const chosen = await useBackend('auto');
  const wasmKernels = wasmKernelPaths();
  const width = Math.max(...wasmKernels.map((k) => k.family.length)) + 1;
  const lines = [
    `node ${process.version}, tfjs-core ${tf.version_core}, ${process.platform}/${process.arch}`,
    ...backends.flatMap((b) => [
      `  ${b.available ? 'ok  ' : 'no  '} ${b.name.padEnd(11)} ${b.detail}`,
      ...(b.name === 'wasm' && b.available
        ? wasmKernels.map((k) => `         ${`${k.family}:`.padEnd(width)} ${k.path}`)
        : []),
    ]),
    `runs use: ${chosen}`,
  ];
  return { chosen, backends, wasmKernels, lines };
}

/** One line about the active backend, for the start of every run: on wasm, each family's path. */
export function activeEngineLine(): string {
  const name = tf.getBackend() as BackendName;
  const kernels =
    name === 'wasm'
      ? `; ${wasmKernelPaths()
          .map((k) => `${k.family}: ${k.path}`)
          .join('; ')}`
      : '';
  return `${name}: ${describeBackend(name)}${kernels}; tfjs-core ${tf.version_core}, node ${process.version}`;
}

function describeBackend(name: BackendName): string {
  if (name === 'wasm') {
    const flags = tf.env();
    const simd = flags.getBool('WASM_HAS_SIMD_SUPPORT');
    const threads = flags.getBool('WASM_HAS_MULTITHREAD_SUPPORT');
    const native = nativeStatus();
    return `WebAssembly${simd ? ' + SIMD' : ''}${threads ? ' + threads' : ', single-threaded'}; native engine: ${native.available ? native.detail : `none (${native.detail})`}`;
  }
  if (name === 'cpu') return 'plain JavaScript kernels (slowest; always available)';
  return 'TensorFlow C library through @tensorflow/tfjs-node';
}
