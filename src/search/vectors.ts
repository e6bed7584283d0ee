import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError } from '../errors.js';

/** Embeddings as a caller may hold them: row-major `[N, D]` floats, an array of rows, or a tensor. */
export type EmbeddingsLike = Float32Array | readonly (ArrayLike<number> | readonly number[])[] | tf.Tensor2D;

/**
 * Copies `embeddings` into one row-major Float32Array of `[N, dim]`, each row L2-normalised, and
 * checks every value is finite and no row is all zeros. Errors name `where`, the row and the
 * column (`EmbeddingIndex.add: embeddings row 3 must have 128 values (the index's dimension), but got 2.`).
 */
export function normalizedRows(
  embeddings: EmbeddingsLike,
  dim: number,
  where: string,
  field = 'embeddings',
): { data: Float32Array; rows: number } {
  let data: Float32Array;
  let rows: number;
  if (embeddings instanceof tf.Tensor) {
    if (embeddings.rank !== 2 || embeddings.shape[1] !== dim) {
      throw new ContrastiveError(
        `${where}: ${field} must be a [N, ${dim}] tensor (the index's dimension), but got shape [${embeddings.shape.join(',')}].`,
      );
    }
    rows = embeddings.shape[0];
    data = Float32Array.from(embeddings.dataSync());
  } else if (embeddings instanceof Float32Array) {
    if (embeddings.length % dim !== 0) {
      throw new ContrastiveError(
        `${where}: ${field} must hold N x ${dim} values (the index's dimension), but got ${embeddings.length} values.`,
      );
    }
    rows = embeddings.length / dim;
    data = Float32Array.from(embeddings);
  } else if (Array.isArray(embeddings)) {
    rows = embeddings.length;
    data = new Float32Array(rows * dim);
    embeddings.forEach((row: ArrayLike<number>, i: number) => {
      if (row === null || typeof row !== 'object' || row.length !== dim) {
        throw new ContrastiveError(
          `${where}: ${field} row ${i} must have ${dim} values (the index's dimension), but got ${row?.length ?? typeof row}.`,
        );
      }
      for (let j = 0; j < dim; j++) data[i * dim + j] = Number(row[j]);
    });
  } else {
    throw new ContrastiveError(
      `${where}: ${field} must be a Float32Array, an array of rows or a 2-D tensor, but got ${typeof embeddings}.`,
    );
  }
  for (let i = 0; i < rows; i++) {
    let norm = 0;
    for (let j = 0; j < dim; j++) {
      const v = data[i * dim + j];
      if (!Number.isFinite(v)) {
        throw new ContrastiveError(
          `${where}: ${field} row ${i}, column ${j} must be a finite number, but got ${v}.`,
        );
      }
      norm += v * v;
    }
    if (norm === 0) {
      throw new ContrastiveError(
        `${where}: ${field} row ${i} must not be all zeros (cosine similarity needs a direction).`,
      );
    }
    const scale = 1 / Math.sqrt(norm);
    for (let j = 0; j < dim; j++) data[i * dim + j] *= scale;
  }
  return { data, rows };
}

/** Dot product of row `a` of `x` and row `b` of `y` (both `[*, dim]`). */
export function rowDot(x: Float32Array, a: number, y: Float32Array, b: number, dim: number): number {
  let s = 0;
  const oa = a * dim;
  const ob = b * dim;
  for (let j = 0; j < dim; j++) s += x[oa + j] * y[ob + j];
  return s;
}
