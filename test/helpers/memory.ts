import * as tf from '@tensorflow/tfjs-core';

/** The parts of the wasm backend's emscripten module an allocation count needs. */
interface WasmModule {
  _malloc(bytes: number): number;
  _free(offset: number): void;
  /** The module's exports; `malloc`/`free` there are the allocator itself. */
  asm?: { malloc?(bytes: number): number; free?(offset: number): void };
}

/** What {@link trackWasmHeap} reads. */
export interface WasmHeapTracker {
  /** Bytes allocated on the wasm heap through the module's `_malloc` since tracking began and not freed. */
  inUse(): number;
  /** Puts the module's allocator back. */
  stop(): void;
}

/**
 * Counts the bytes the active wasm backend allocates on its heap and has not freed, by wrapping
 * its module's `_malloc`/`_free` (every tensor's data and every kernel output goes through them).
 * tfjs-backend-wasm exposes no mallinfo, and `HEAPU8.length` is only what the heap has reserved,
 * which never shrinks. Emscripten's `_malloc` is a stub that replaces itself with the export on
 * first call, so the wrapper calls the export (`asm.malloc`) directly.
 */
export function trackWasmHeap(): WasmHeapTracker {
  const wasm = (tf.backend() as unknown as { wasm?: WasmModule }).wasm;
  if (!wasm) throw new Error(`trackWasmHeap: the active backend (${tf.getBackend()}) is not wasm`);
  // one allocation through the stub, so that the module has resolved its exports
  tf.dispose(tf.zeros([1]));
  const original = { malloc: wasm._malloc, free: wasm._free };
  const malloc = wasm.asm?.malloc ?? wasm._malloc;
  const free = wasm.asm?.free ?? wasm._free;
  const sizes = new Map<number, number>();
  let bytes = 0;
  wasm._malloc = (n: number) => {
    const offset = malloc(n);
    sizes.set(offset, n);
    bytes += n;
    return offset;
  };
  wasm._free = (offset: number) => {
    const n = sizes.get(offset);
    if (n !== undefined) {
      bytes -= n;
      sizes.delete(offset);
    }
    free(offset);
  };
  return {
    inUse: () => bytes,
    stop: () => {
      wasm._malloc = original.malloc;
      wasm._free = original.free;
    },
  };
}

/** A snapshot of what a training step may leave behind. */
export interface MemoryLevel {
  numTensors: number;
  numBytes: number;
  /** Bytes in use on the wasm heap (see {@link trackWasmHeap}). */
  heapInUse: number;
}

export function memoryLevel(heap: WasmHeapTracker): MemoryLevel {
  const { numTensors, numBytes } = tf.memory();
  return { numTensors, numBytes, heapInUse: heap.inUse() };
}
