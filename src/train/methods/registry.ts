import { ce } from './crossEntropy.js';
import { moco, sane } from './momentumMethods.js';
import type { TrainingMethod } from './types.js';
import { hicone, himulcon, himulcone, simclr, supcon } from './viewMethods.js';

/**
 * Every training method by its `--method` name. Adding a method is one entry here (and its
 * {@link TrainingMethod} in a file of its family).
 */
export const METHOD_REGISTRY = {
  ce,
  simclr,
  supcon,
  himulcon,
  hicone,
  himulcone,
  moco,
  sane,
} as const satisfies Record<string, TrainingMethod>;

/** A training method's name. */
export type Method = keyof typeof METHOD_REGISTRY;

/** The method names, in `--help` order. */
export const METHODS = Object.keys(METHOD_REGISTRY) as Method[];

/** The method called `name`. */
export function trainingMethod(name: Method): TrainingMethod {
  return METHOD_REGISTRY[name];
}
