import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError } from '../errors.js';
import { decodeQueryImage } from '../search/embedInputs.js';
import { openIndexEncoder, type RunEncoder } from '../search/runModel.js';

/** The model's input as an image `[height, width, channels]`, or null for a model of feature vectors. */
export function encoderImageShape(inputShape: readonly number[]): [number, number, number] | null {
  if (inputShape.length === 3) return [inputShape[0], inputShape[1], inputShape[2]];
  // an MLP on flattened 28x28 grey images takes [784]
  if (inputShape.length === 1 && inputShape[0] === 784) return [28, 28, 1];
  return null;
}

/**
 * Embeds one query image (a file or its bytes) with a run's encoder, decoded exactly as the
 * run's catalogue images were: the one way `search --image`, the server's `image` field and
 * {@link Catalogue.query} turn an image into a vector. A run trained on feature vectors is a
 * one-line {@link ContrastiveError}.
 */
export async function embedQueryImage(
  encoder: RunEncoder,
  input: string | Uint8Array,
  name = typeof input === 'string' ? input : 'the image',
): Promise<Float32Array> {
  const shape = encoderImageShape(encoder.inputShape);
  if (!shape)
    throw new ContrastiveError(
      `embedQueryImage: the run ${encoder.runDir} was trained on feature vectors [${encoder.inputShape}], not images, so it cannot embed ${name}; query with a vector or an id instead.`,
    );
  const pixels = await decodeQueryImage(input, shape, name, encoder.imageDecode);
  const batch = tf.tensor(pixels, [1, ...shape]);
  const embedding = await encoder.embedAsync(batch).finally(() => batch.dispose());
  try {
    return (await embedding.data()) as Float32Array;
  } finally {
    embedding.dispose();
  }
}

/**
 * Embeds one query image with the model an index or a store records (opened from `run`, or the
 * run folder it names), then closes the model: for one-off queries against a store, where no
 * `Catalogue` holds an encoder open.
 */
export async function embedImageWithRecordedModel(
  owner: Parameters<typeof openIndexEncoder>[0],
  image: string | Uint8Array,
  run?: string,
): Promise<Float32Array> {
  const encoder = await openIndexEncoder(owner, run);
  try {
    return await embedQueryImage(encoder, image);
  } finally {
    encoder.dispose();
  }
}
