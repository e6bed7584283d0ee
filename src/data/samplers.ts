import { check } from '../errors.js';
import type { Rng } from '../random.js';

/**
 * Batch samplers: each returns one epoch of batches (arrays of sample indices) from a seeded
 * generator, so a run's batch order is fixed by its seed and an interrupted epoch can be rebuilt.
 */

/** Every index exactly once per epoch, in random order; the last partial batch is dropped. */
export function randomBatches(numSamples: number, batchSize: number, rng: Rng): Int32Array[] {
  check(
    batchSize >= 1 && batchSize <= numSamples,
    () => `randomBatches: batchSize must be in [1, ${numSamples}], but got ${batchSize}.`,
  );
  const order = rng.permutation(numSamples);
  const out: Int32Array[] = [];
  for (let start = 0; start + batchSize <= numSamples; start += batchSize)
    out.push(order.slice(start, start + batchSize));
  return out;
}

/** Per class, its sample indices in a reshuffled cycle: draws without replacement until exhausted. */
class ClassPools {
  private readonly pools: Int32Array[];
  private readonly cursor: number[];
  readonly classes: number[];

  constructor(
    classIds: ArrayLike<number>,
    private readonly rng: Rng,
  ) {
    const members = new Map<number, number[]>();
    for (let i = 0; i < classIds.length; i++) {
      const c = classIds[i];
      const list = members.get(c);
      if (list) list.push(i);
      else members.set(c, [i]);
    }
    this.classes = [...members.keys()].sort((a, b) => a - b);
    this.pools = this.classes.map((c) => Int32Array.from(members.get(c)!));
    this.pools.forEach((p) => {
      this.shuffle(p);
    });
    this.cursor = this.pools.map(() => 0);
  }

  size(k: number): number {
    return this.pools[k].length;
  }

  draw(k: number): number {
    if (this.cursor[k] >= this.pools[k].length) {
      this.shuffle(this.pools[k]);
      this.cursor[k] = 0;
    }
    return this.pools[k][this.cursor[k]++];
  }

  private shuffle(p: Int32Array): void {
    for (let i = p.length - 1; i > 0; i--) {
      const j = this.rng.int(i + 1);
      [p[i], p[j]] = [p[j], p[i]];
    }
  }
}

/**
 * Class-balanced batches: each batch holds `samplesPerClass` samples of each of
 * `batchSize / samplesPerClass` distinct classes (drawn without replacement within a class until
 * it is exhausted). An epoch has `floor(N / batchSize)` batches.
 */
export function balancedBatches(
  classIds: ArrayLike<number>,
  batchSize: number,
  samplesPerClass: number,
  rng: Rng,
): Int32Array[] {
  const pools = new ClassPools(classIds, rng);
  const classesPerBatch = Math.floor(batchSize / samplesPerClass);
  check(
    classesPerBatch >= 1 && classesPerBatch <= pools.classes.length && batchSize % samplesPerClass === 0,
    () =>
      `balancedBatches: batchSize (${batchSize}) must be a multiple of samplesPerClass (${samplesPerClass}) covering at most ${pools.classes.length} classes.`,
  );
  const out: Int32Array[] = [];
  for (let b = 0; b < Math.floor(classIds.length / batchSize); b++) {
    const chosen = rng.permutation(pools.classes.length).subarray(0, classesPerBatch);
    const batch = new Int32Array(batchSize);
    let k = 0;
    for (const c of chosen) for (let m = 0; m < samplesPerClass; m++) batch[k++] = pools.draw(c);
    out.push(batch);
  }
  return out;
}

/**
 * Hierarchical batches (the idea of the reference code's sampler): the batch is made of pairs of
 * samples from the same finest class, so every anchor has another sample sharing its whole label
 * path — a positive at every level — besides its own other views. Anchors cover the data once
 * per epoch in random order; partners are drawn from the anchor's class (without replacement
 * until the class is exhausted). Singleton classes pair with themselves.
 */
export function hierarchicalBatches(
  fineClassIds: ArrayLike<number>,
  batchSize: number,
  rng: Rng,
): Int32Array[] {
  check(
    batchSize >= 2 && batchSize % 2 === 0,
    () => `hierarchicalBatches: batchSize must be even and >= 2, but got ${batchSize}.`,
  );
  const pools = new ClassPools(fineClassIds, rng);
  const classIndex = new Map(pools.classes.map((c, k) => [c, k]));
  const anchors = rng.permutation(fineClassIds.length);
  const half = batchSize / 2;
  const out: Int32Array[] = [];
  for (let start = 0; start + half <= anchors.length; start += half) {
    const batch = new Int32Array(batchSize);
    for (let a = 0; a < half; a++) {
      const i = anchors[start + a];
      const k = classIndex.get(fineClassIds[i])!;
      let partner = pools.draw(k);
      if (partner === i && pools.size(k) > 1) partner = pools.draw(k);
      batch[2 * a] = i;
      batch[2 * a + 1] = partner;
    }
    out.push(batch);
  }
  return out;
}
