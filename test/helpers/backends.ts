import assert from 'node:assert/strict';
import { before, describe } from 'node:test';
import { type BackendName, useBackend } from '../../src/engine/backend.js';

/** Backends every backend-agnostic test runs on; `TEST_BACKENDS=cpu` narrows it. */
export const TEST_BACKENDS: BackendName[] = (process.env.TEST_BACKENDS ?? 'cpu,wasm').split(
  ',',
) as BackendName[];

/** One test body per backend, in the spirit of tfjs's `describeWithFlags(…, ALL_ENVS, …)`. */
export function forEachBackend(name: string, body: (backend: BackendName) => void): void {
  for (const backend of TEST_BACKENDS) {
    describe(`${name} [${backend}]`, () => {
      before(async () => {
        await useBackend(backend);
      });
      body(backend);
    });
  }
}

export interface Tolerance {
  rtol?: number;
  atol?: number;
}

/** Element-wise `|a - e| <= atol + rtol·|e|`, reporting the worst element. */
export function expectClose(
  actual: ArrayLike<number> | number,
  expected: ArrayLike<number> | number,
  { rtol = 1e-5, atol = 1e-6 }: Tolerance = {},
  label = 'value',
): void {
  const a = typeof actual === 'number' ? [actual] : Array.from(actual);
  const e = typeof expected === 'number' ? [expected] : Array.from(expected);
  assert.equal(a.length, e.length, `${label}: length ${a.length} != expected ${e.length}`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < a.length; i++) {
    const excess = Math.abs(a[i] - e[i]) - (atol + rtol * Math.abs(e[i]));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    assert.fail(
      `${label}: element ${worst} is ${a[worst]}, expected ${e[worst]} (|diff| ${Math.abs(a[worst] - e[worst]).toExponential(2)}, rtol ${rtol}, atol ${atol})`,
    );
  }
}

/** Flattens nested number arrays. */
export function flat(x: unknown): number[] {
  return Array.isArray(x) ? x.flatMap(flat) : [x as number];
}

/**
 * For each case, the kernel results (e.g. forward and both gradients) on cpu and on wasm, compared
 * element-wise (relative 1e-4, absolute 1e-5 of the largest expected magnitude), each labelled.
 */
export async function compareCasesWithCpu<C, D>(
  cases: readonly C[],
  makeData: (c: C) => D,
  results: (c: C, data: D) => ArrayLike<number>[],
  labels: readonly string[],
  describePath: string,
): Promise<void> {
  for (const c of cases) {
    const data = makeData(c);
    await useBackend('cpu');
    const expected = results(c, data);
    await useBackend('wasm');
    const actual = results(c, data);
    labels.forEach((label, i) => {
      const scale = Math.max(1, ...Array.from(expected[i], Math.abs));
      expectClose(
        actual[i],
        expected[i],
        { rtol: 1e-4, atol: 1e-5 * scale },
        `${describePath} ${label} ${JSON.stringify(c)}`,
      );
    });
  }
}
