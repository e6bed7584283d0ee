import * as tf from '@tensorflow/tfjs-core';
// the cpu and wasm backends, with every kernel the engine adds, registered once
import './registry.js';
import { ContrastiveError } from '../errors.js';

/**
 * Backends the library knows, fastest first: `tensorflow` is `@tensorflow/tfjs-node` when the user
 * has it installed (never required), `wasm` the WebAssembly backend, `cpu` plain JavaScript.
 */
export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

/** Preference order of `'auto'`. */
export const BACKEND_PREFERENCE: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

/**
 * Makes `name` the active tfjs backend and waits until it is ready; `'auto'` takes the first that
 * works from {@link BACKEND_PREFERENCE}. Returns the backend's name.
 *
 * @example
 * ```ts
 * await useBackend('wasm');
 * ```
 */
export async function useBackend(name: BackendName | 'auto' = 'auto'): Promise<BackendName> {
  const candidates = name === 'auto' ? BACKEND_PREFERENCE : [name];
  const failures: string[] = [];
  for (const candidate of candidates) {
    const why = await tryBackend(candidate);
    if (why === null) return candidate;
    failures.push(`${candidate}: ${why}`);
  }
  throw new ContrastiveError(
    `useBackend: no usable backend among ${candidates.join(', ')} (${failures.join('; ')}).`,
  );
}

async function tryBackend(name: BackendName): Promise<string | null> {
  if (name === 'tensorflow' && tf.findBackendFactory('tensorflow') === null) {
    try {
      // optional: only present when the user installed it; a variable keeps bundlers from resolving it
      const optional = '@tensorflow/tfjs-node';
      await import(optional);
    } catch {
      return 'package @tensorflow/tfjs-node is not installed';
    }
  }
  if (tf.findBackendFactory(name) === null) return 'not registered';
  try {
    if (!(await tf.setBackend(name))) return 'failed to initialise';
    await tf.ready();
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  if (name === 'cpu') {
    // tfjs-backend-cpu prints a banner recommending tfjs-node on first use in Node; we choose
    // backends ourselves and say so, so the banner is noise.
    (tf.backend() as unknown as { firstUse: boolean }).firstUse = false;
  }
  return null;
}
