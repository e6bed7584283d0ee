import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../random.js';

/**
 * A 2-D map of embeddings by principal component analysis of the L2-normalised rows (cosine
 * geometry, as the metrics use), by power iteration with deflation. Returns `[N, 2]` row-major.
 * Deterministic: the start vectors come from a seeded generator and each component's sign is
 * fixed so its largest-magnitude coefficient is positive.
 */
export function pca2d(embeddings: tf.Tensor2D, seed = 0): Float32Array {
  const [n, d] = embeddings.shape;
  const x = tf.tidy(() => {
    const unit = tf.div(embeddings, tf.add(tf.norm(embeddings, 2, 1, true), 1e-12));
    return tf.sub(unit, tf.mean(unit, 0, true)).dataSync() as Float32Array;
  });
  // covariance [D, D] in float64
  const cov = new Float64Array(d * d);
  for (let i = 0; i < n; i++) {
    const row = x.subarray(i * d, (i + 1) * d);
    for (let a = 0; a < d; a++) {
      const ra = row[a];
      if (ra === 0) continue;
      for (let b = a; b < d; b++) cov[a * d + b] += ra * row[b];
    }
  }
  for (let a = 0; a < d; a++) for (let b = 0; b < a; b++) cov[a * d + b] = cov[b * d + a];
  const rng = new Rng(seed);
  const components: Float64Array[] = [];
  for (let c = 0; c < Math.min(2, d); c++) {
    let v = Float64Array.from({ length: d }, () => rng.normal());
    for (let iter = 0; iter < 200; iter++) {
      const w = new Float64Array(d);
      for (let a = 0; a < d; a++) {
        let s = 0;
        for (let b = 0; b < d; b++) s += cov[a * d + b] * v[b];
        w[a] = s;
      }
      for (const u of components) {
        const dot = w.reduce((s, wi, k) => s + wi * u[k], 0);
        for (let k = 0; k < d; k++) w[k] -= dot * u[k];
      }
      const norm = Math.hypot(...w);
      if (norm === 0) break;
      const next = w.map((wi) => wi / norm);
      const change = next.reduce((s, vi, k) => s + Math.abs(vi - v[k]), 0);
      v = next;
      if (change < 1e-10) break;
    }
    let largest = 0;
    for (let k = 0; k < d; k++) if (Math.abs(v[k]) > Math.abs(v[largest])) largest = k;
    if (v[largest] < 0) v = v.map((vi) => -vi);
    components.push(v);
  }
  const out = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) {
    components.forEach((u, c) => {
      let s = 0;
      for (let k = 0; k < d; k++) s += x[i * d + k] * u[k];
      out[i * 2 + c] = s;
    });
  }
  return out;
}
