import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError } from '../errors.js';

/** How an exhausted heap shows up: the wasm module's abort, V8's, or a failed allocation. */
const HEAP_EXHAUSTED = /Aborted|out of memory|memory access out of bounds|Array buffer allocation failed/i;

/** Growth between steps (beyond a few batches) that is a leak rather than the data or the model. */
const LEAK_BYTES = 64 * 2 ** 20;

/** The largest the wasm heap grows. */
const WASM_HEAP_LIMIT = 4 * 2 ** 30;

/** What the loop tells {@link StepMemory} about the run. */
export interface StepMemoryRun {
  /** The active backend (`tf.getBackend()`). */
  backend: string;
  batchSize: number;
  /** Bytes of one batch's inputs (float32 rows, as the step receives them). */
  batchBytes: number;
  /** Augmented views of each sample a step makes. */
  views: number;
  /** `--grad-cache-chunk N` when the method supports it and it is off (the advice then names it). */
  gradCacheHint?: string;
}

/** A measurement: the bytes of live tensors (on wasm, their data is on the heap) at a step. */
interface Level {
  step: number;
  bytes: number;
  tensors: number;
}

/** `1.6 MiB`, `4 GiB`, `6.0 KiB`. */
export function byteSize(bytes: number): string {
  const [unit, scale] =
    bytes >= 2 ** 30 ? ['GiB', 2 ** 30] : bytes >= 2 ** 20 ? ['MiB', 2 ** 20] : ['KiB', 2 ** 10];
  const value = bytes / scale;
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${unit}`;
}

/**
 * What the loop measures of memory between steps — the bytes of live tensors when each step
 * starts, once the previous step's tensors are freed — so that a heap exhaustion becomes a message
 * that says what was measured and whether the step is too big (lower `--batch-size`) or memory
 * grew from step to step (a leak: a smaller batch only delays it). Reads `tf.memory()`, which is
 * counters, not a walk over tensors.
 */
export class StepMemory {
  /** After warm-up: at the start of the second step this run took (the first makes optimiser slots). */
  private steady: Level | undefined;
  private current: Level | undefined;
  private stepsThisRun = 0;

  constructor(private readonly run: StepMemoryRun) {}

  /** Call when step `step` (1-based) starts, before its batch is read. */
  stepStarts(step: number): void {
    const { numBytes, numTensors } = tf.memory();
    this.current = { step, bytes: numBytes, tensors: numTensors };
    this.stepsThisRun++;
    if (this.stepsThisRun === 2) this.steady = this.current;
  }

  /**
   * A heap exhaustion as a `ContrastiveError` with what was measured and the advice that fits
   * it; any other error as it is. `where` says what failed (`reading the batch of step 12`).
   */
  heapError(error: unknown, where: string): unknown {
    if (!(error instanceof Error && HEAP_EXHAUSTED.test(error.message))) return error;
    const { backend, batchSize, batchBytes, views } = this.run;
    const failed = tf.memory();
    const reserved = wasmHeapReserved();
    const measured = [
      `${byteSize(failed.numBytes)} in ${failed.numTensors} tensors when it failed`,
      this.current &&
        `${byteSize(this.current.bytes)} in ${this.current.tensors} at the start of step ${this.current.step}`,
      this.steady &&
        this.steady !== this.current &&
        `${byteSize(this.steady.bytes)} in ${this.steady.tensors} at the start of step ${this.steady.step}`,
    ].filter(Boolean);
    const batch = `batch size ${batchSize} × ${views} view${views === 1 ? '' : 's'}; one batch of inputs is ${byteSize(batchBytes)}`;
    const heap =
      reserved === undefined
        ? ''
        : ` The wasm heap had reserved ${byteSize(reserved)} of its ${byteSize(WASM_HEAP_LIMIT)}.`;
    const lead = `train: the ${backend} backend ran out of memory ${where} (${batch}). Tensors in use: ${measured.join(', ')}.${heap}`;
    const grown = this.steady && this.current ? this.current.bytes - this.steady.bytes : 0;
    const steps = this.steady && this.current ? this.current.step - this.steady.step : 0;
    if (grown > Math.max(LEAK_BYTES, 4 * batchBytes) && steps > 0) {
      return new ContrastiveError(
        `${lead} Memory grew by ${byteSize(grown)} over ${steps} steps (${byteSize(grown / steps)} a step, ${(grown / steps / batchBytes).toFixed(1)} input batches): something keeps each step's tensors. That is a leak, not the batch size — a smaller --batch-size only puts the crash off; please report it with this message. The last checkpoint is intact (--resume continues from it).`,
        { cause: error },
      );
    }
    const why =
      this.steady && this.steady !== this.current
        ? 'Memory held steady between steps, so one step needs more than the heap holds'
        : 'It failed in the first steps of this run: one step needs more than the heap holds';
    return new ContrastiveError(
      `${lead} ${why}: ${this.run.gradCacheHint ? `keep the batch and pass ${this.run.gradCacheHint} (the loss still over the whole batch, the activations of that many rows at a time), or ` : ''}lower --batch-size (a step's activations grow with it)${views > 1 ? ' or --views' : ''}, or train on a smaller --image-size or --encoder. The last checkpoint is intact (--resume continues from it).`,
      { cause: error },
    );
  }
}

/** How far the wasm heap has grown (it never shrinks; not what is in use); undefined off wasm. */
function wasmHeapReserved(): number | undefined {
  if (tf.getBackend() !== 'wasm') return undefined;
  return (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.length;
}
