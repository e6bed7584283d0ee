import * as tf from '@tensorflow/tfjs-core';
import type { FeaturePooling, Preprocessing } from './featureExtractor.js';

/**
 * The tensor steps around a frozen backbone that Node and the web page share (no Node import):
 * scaling and layout of its input, pooling of its output.
 */

/** Scales, normalises, reorders and lays out `[n, h, w, 3]` pixels in [0, 1] as `p` says (new tensor). */
export function modelInput(images: tf.Tensor4D, p: Preprocessing): tf.Tensor4D {
  return tf.tidy(() => {
    let x: tf.Tensor4D = images;
    if (p.scale === 'symmetric') x = tf.sub(tf.mul(x, 2), 1);
    else if (p.scale === 'byte') x = tf.mul(x, 255);
    if (p.mean) x = tf.sub(x, tf.tensor1d(p.mean));
    if (p.std) x = tf.div(x, tf.tensor1d(p.std));
    if (p.channelOrder === 'bgr') x = tf.reverse(x, 3);
    if (p.layout === 'nchw') x = tf.transpose(x, [0, 3, 1, 2]);
    return x === images ? tf.clone(x) : x;
  });
}

/** `[n, ...]` raw features to `[n, d]` (disposes `raw`). */
export function pool(raw: tf.Tensor, pooling: FeaturePooling, layout: 'nhwc' | 'nchw'): tf.Tensor {
  try {
    if (pooling === 'none') return tf.clone(raw);
    if (pooling === 'cls') return tf.squeeze(tf.slice(raw, [0, 0, 0], [-1, 1, -1]), [1]);
    const axes = raw.rank === 3 ? [1] : layout === 'nchw' ? [2, 3] : [1, 2];
    return pooling === 'avg' ? tf.mean(raw, axes) : tf.max(raw, axes);
  } finally {
    raw.dispose();
  }
}
