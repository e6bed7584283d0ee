import { copyFile, mkdir } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { colorAugmentOptionsFrom } from '../data/dataOptions.js';
import { parseBackground } from '../data/imageDecode.js';
import { loadRunData, type RunData, type RunDataOptions } from '../data/runData.js';
import { ContrastiveError } from '../errors.js';
import {
  backboneFiles,
  backboneKind,
  type FeatureExtractor,
  type FrozenBackboneRecord,
  openFeatureExtractor,
  type PixelScale,
} from '../models/featureExtractor.js';
import type { TrainConfig } from '../train/config.js';
import { loadFeatureRunData } from './featureData.js';
import type { RunFolder } from './folder.js';

/**
 * True when `config` trains a head on a frozen pretrained backbone's cached features: a graph or
 * ONNX model (always frozen), or a layers model with `--freeze` (unless `--feature-cache off`).
 */
export async function usesFrozenFeatures(config: TrainConfig): Promise<boolean> {
  if (!config.backbone) return false;
  const kind = await backboneKind(config.backbone);
  return kind !== 'layers' || (config.freeze === true && config.featureCache !== 'off');
}

/** The frozen backbone `config` asks for, opened (not yet recorded). */
export function openConfiguredBackbone(config: TrainConfig): Promise<FeatureExtractor> {
  const scale = config.backboneScale === 'auto' ? undefined : (config.backboneScale as PixelScale);
  const size = config.backboneInputSize;
  return openFeatureExtractor({
    path: config.backbone as string,
    output: config.backboneLayer ?? null,
    pooling:
      config.backbonePooling === 'none' || config.backbonePooling === undefined
        ? undefined
        : (config.backbonePooling as 'avg' | 'max' | 'cls'),
    size: size ? [size, size] : undefined,
    fit: config.backboneResize as 'stretch' | 'crop' | 'pad',
    background: parseBackground(config.background ?? 'white'),
    scale,
    mean: config.backboneMean ?? null,
    std: config.backboneStd ?? null,
    channelOrder: config.backboneChannelOrder as 'rgb' | 'bgr',
  });
}

/** What a run records of `extractor` (before any copy). */
export function backboneRecord(extractor: FeatureExtractor, featureViews: number): FrozenBackboneRecord {
  return {
    kind: extractor.kind,
    path: resolve(extractor.path),
    copied: false,
    sha256: extractor.sha256,
    output: extractor.output,
    pooling: extractor.pooling,
    preprocessing: extractor.preprocessing,
    featureDim: extractor.featureDim,
    featureViews,
  };
}

/**
 * Copies the backbone's files into the run folder's `backbone/` (keeping their relative layout)
 * and returns the record pointing there.
 */
export async function copyBackboneInto(
  folder: RunFolder,
  record: FrozenBackboneRecord,
): Promise<FrozenBackboneRecord> {
  const files = await backboneFiles(record.path, record.kind);
  const root = dirname(files[0]);
  const target = folder.path('backboneCopy');
  for (const file of files) {
    const to = join(target, relative(root, file));
    await mkdir(dirname(to), { recursive: true });
    await copyFile(file, to);
  }
  return { ...record, path: join('backbone', basename(files[0])), copied: true };
}

/**
 * Opens a run's recorded backbone, refusing a missing or changed file with a message naming it.
 */
export async function openRecordedBackbone(
  runDir: string,
  record: FrozenBackboneRecord,
  command: string,
): Promise<FeatureExtractor> {
  const path = isAbsolute(record.path) ? record.path : join(runDir, record.path);
  const p = record.preprocessing;
  try {
    return await openFeatureExtractor({
      path,
      output: record.output,
      pooling: record.pooling,
      size: p.size,
      fit: p.fit,
      background: p.background,
      scale: p.scale,
      mean: p.mean,
      std: p.std,
      channelOrder: p.channelOrder,
      resampler: p.resampler ?? 'libvips',
      expectSha256: record.sha256,
    });
  } catch (error) {
    if (error instanceof ContrastiveError)
      throw new ContrastiveError(
        `${command}: the run ${runDir} was trained on backbone ${path}: ${error.message}`,
      );
    throw error;
  }
}

/**
 * A run's data as training and evaluation read it: frozen-backbone features for a run on a frozen
 * pretrained model (computed once into the cache), else {@link loadRunData}.
 */
export async function loadRunInputs(
  config: TrainConfig,
  options: RunDataOptions,
  extractor: FeatureExtractor | null,
  onFeatureProgress?: (split: 'train' | 'test', done: number, total: number) => void,
): Promise<RunData> {
  if (!extractor) return loadRunData(options);
  const [size] = extractor.preprocessing.size;
  return loadFeatureRunData({
    ...options,
    extractor,
    featureViews: config.featureViews ?? 0,
    augment: colorAugmentOptionsFrom(config, size),
    onProgress: onFeatureProgress,
  });
}
