import { createHash } from 'node:crypto';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Catalogue } from '../catalogue/catalogue.js';
import { ContrastiveError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { type BackboneKind, backboneFiles, type FrozenBackboneRecord } from '../models/featureExtractor.js';
import { checkWeightPath } from '../models/modelIO.js';
import { RunFolder } from '../run/folder.js';
import type { EmbeddingIndex } from '../search/embeddingIndex.js';
import { calibrationToJSON } from './calibrationJson.js';
import { pageHtml } from './pageHtml.js';
import {
  bytesToBase64,
  type EncodedModelFiles,
  SITE_CONFIG_GLOBAL,
  SITE_DATA_GLOBAL,
  type SiteConfig,
  type SiteEmbeddedData,
} from './siteData.js';

/**
 * Node side of `contrastive export-web` (not part of the browser entry): writes a static site that
 * searches an index in the browser with the model that made it.
 */

/** Options of {@link writeWebSite}. */
export interface WebSiteOptions {
  /**
   * Folder to write: new, empty, or a site this function wrote before (it holds the
   * `.contrastive-site` marker); any other non-empty folder is refused, untouched.
   */
  out: string;
  /**
   * Thumbnails are made only from source images inside this folder (default: the index file's
   * folder), so a forged or shared index cannot publish a private file.
   */
  sourcesRoot?: string;
  /** Make thumbnails of sources anywhere on disk (default false). */
  allowOutsideSources?: boolean;
  /** Run folder of the model (default: the one the index records). */
  run?: string;
  /** Page title. Default: `Search <index file name>`. */
  title?: string;
  /** Results per query. Default 10. */
  k?: number;
  /** Labelled index items to calibrate placement on, each left out of its own neighbours. Default 2000; 0: no calibration. */
  calibrationLimit?: number;
  /** Accuracy wanted for every answered level of the predicted path. Default 0.95. */
  targetPrecision?: number;
}

/** What {@link writeWebSite} wrote. */
export interface WebSiteSummary {
  out: string;
  /** Written files, relative to `out`, with their sizes in bytes. */
  files: { path: string; bytes: number }[];
  items: number;
  /** Items with a thumbnail (shown beside results): the index's own, or made at export from their image file. */
  thumbnails: number;
  calibration: { method: string; on: string } | null;
  /** Items whose source image lies outside `sourcesRoot`: no thumbnail made for them. */
  sourcesOutsideRoot: number;
  /** The kind of the run's frozen pretrained backbone, copied into `backbone/`; null for none. */
  pretrained: BackboneKind | null;
}

/** The file that marks a folder as a site `writeWebSite` wrote (so it may write there again). */
export const SITE_MARKER = '.contrastive-site';

/** Where `npm run build` leaves the page's bundle (`scripts/bundle-web.mjs`). */
export const PAGE_BUNDLE = fileURLToPath(new URL('./app.bundle.js', import.meta.url));

async function readModelFolder(
  dir: string,
  where: string,
): Promise<{ raw: Map<string, Uint8Array>; encoded: EncodedModelFiles }> {
  const read = (file: string) =>
    readFile(join(dir, file)).catch((error: NodeJS.ErrnoException) => {
      throw new ContrastiveError(`${where}: cannot read ${join(dir, file)}: ${error.code ?? error.message}.`);
    });
  const modelJson = await read('model.json');
  const manifest = (JSON.parse(modelJson.toString('utf8')) as { weightsManifest: { paths: string[] }[] })
    .weightsManifest;
  const raw = new Map<string, Uint8Array>([['model.json', modelJson]]);
  const weights: Record<string, string> = {};
  for (const group of manifest)
    for (const p of group.paths) {
      checkWeightPath(join(dir, 'model.json'), p);
      const bytes = await read(p);
      raw.set(p, bytes);
      weights[p] = bytesToBase64(bytes);
    }
  return { raw, encoded: { modelJson: bytesToBase64(modelJson), weights } };
}

/** onnxruntime-web's files an ONNX backbone's page needs (wasm build, single-threaded), copied into `ort/`. */
export const ORT_WEB_FILES = [
  'ort.wasm.min.mjs',
  'ort-wasm-simd-threaded.mjs',
  'ort-wasm-simd-threaded.wasm',
];

/**
 * A run's frozen backbone files as the site copies them: read once, hashed as Node's
 * `backboneSha256` hashes them and refused unless that equals the run's record; named by their
 * path relative to the model file's folder (weight paths are checked to stay inside it).
 */
async function readBackboneFiles(
  fn: string,
  runDir: string,
  record: FrozenBackboneRecord,
): Promise<[string, Uint8Array][]> {
  const path = isAbsolute(record.path) ? record.path : join(runDir, record.path);
  if (record.preprocessing.resampler !== 'portable')
    throw new ContrastiveError(
      `${fn}: the run ${runDir} was trained before the portable image resampler (its backbone.json has no preprocessing.resampler), so the page could not resize images as it did; train the run again to export it.`,
    );
  const files = await backboneFiles(path, record.kind).catch((error: NodeJS.ErrnoException) => {
    throw new ContrastiveError(
      `${fn}: the run's backbone ${path} cannot be read: ${error.code ?? error.message}.`,
    );
  });
  const root = dirname(files[0]);
  const hash = createHash('sha256');
  const out: [string, Uint8Array][] = [];
  for (const file of files) {
    const bytes = await readFile(file).catch(() => {
      throw new ContrastiveError(`${fn}: the run's backbone file ${file} is missing.`);
    });
    hash.update(`${basename(file)}\u0000${bytes.length}\u0000`);
    hash.update(bytes);
    const name = relative(root, file).split(sep).join('/');
    if (name.startsWith('../') || isAbsolute(name))
      throw new ContrastiveError(`${fn}: the run's backbone file ${file} lies outside ${root}.`);
    out.push([name, bytes]);
  }
  const sha256 = hash.digest('hex');
  if (sha256 !== record.sha256)
    throw new ContrastiveError(
      `${fn}: the run ${runDir} was trained on backbone ${path}, whose files have changed since (SHA-256 ${sha256.slice(0, 12)}…, the run recorded ${record.sha256.slice(0, 12)}…); restore the original files (nothing was written).`,
    );
  return out;
}

/** onnxruntime-web's runtime files, from its installed package. */
async function ortWebFiles(fn: string): Promise<[string, Uint8Array][]> {
  let dist: string;
  try {
    dist = dirname(createRequire(import.meta.url).resolve('onnxruntime-web'));
  } catch {
    throw new ContrastiveError(
      `${fn}: the run's backbone is an ONNX model, which the page runs with onnxruntime-web; install it with: npm install onnxruntime-web`,
    );
  }
  return Promise.all(
    ORT_WEB_FILES.map(async (f) => {
      const bytes = await readFile(join(dist, f)).catch(() => {
        throw new ContrastiveError(
          `${fn}: onnxruntime-web is installed without ${join(dist, f)}; reinstall it.`,
        );
      });
      return [`ort/${f}`, bytes] as [string, Uint8Array];
    }),
  );
}

/** Refuses a non-empty folder that is not a site written here before (nothing is touched). */
async function checkSiteFolder(fn: string, out: string): Promise<void> {
  const info = await stat(out).catch(() => null);
  if (!info) return;
  if (!info.isDirectory())
    throw new ContrastiveError(`${fn}: --out ${out} is a file, not a folder; choose a new or empty folder.`);
  const entries = await readdir(out);
  if (entries.length === 0 || entries.includes(SITE_MARKER)) return;
  throw new ContrastiveError(
    `${fn}: --out ${out} is not empty and is not a site export-web wrote (it holds ${entries.slice(0, 5).join(', ')}${entries.length > 5 ? ', …' : ''}); choose a new or empty folder (nothing was changed).`,
  );
}

/**
 * Small PNGs (at most 96 px a side) of the items whose index entry has no thumbnail but whose
 * source is a readable image file, as `thumbnails/<n>.png` files: file name by item id.
 */
async function sourceThumbnails(
  index: EmbeddingIndex,
  root: string | null,
): Promise<{ files: Record<string, string>; png: [string, Uint8Array][]; outside: number }> {
  const { default: sharp } = await import('sharp');
  const wanted = index.items().filter((it) => it.thumbnail === undefined && it.source !== undefined);
  const files: Record<string, string> = {};
  const png: [string, Uint8Array][] = [];
  const realRoot = root === null ? null : await realpath(root).catch(() => resolve(root));
  let outside = 0;
  let next = 0;
  const worker = async () => {
    while (next < wanted.length) {
      const n = next++;
      const item = wanted[n];
      const info = await stat(item.source!).catch(() => null);
      if (!info?.isFile()) continue; // e.g. "fashion-mnist:train#3" or a table row: no file to show
      if (realRoot !== null) {
        // the file itself, links resolved, must lie inside the root
        const real = await realpath(item.source!).catch(() => null);
        if (
          !real ||
          !(real === realRoot || real.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep))
        ) {
          outside++;
          continue;
        }
      }
      const bytes = await sharp(item.source!)
        .resize(96, 96, { fit: 'inside', withoutEnlargement: true })
        .png()
        .toBuffer()
        .catch(() => null);
      if (!bytes) continue;
      const path = `thumbnails/${n}.png`;
      files[item.id] = path;
      png.push([path, bytes]);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return { files, png, outside };
}

/**
 * Writes a static site for an index: `index.html`, `app.js` (the page and stock tfjs, bundled),
 * `site-config.js` (title, calibration, file names), the index file and the model folders as
 * plain files (what the page fetches over http(s), and what a web app loads with
 * `tfjs-contrastive/web`), and `site-data.js`, the same bytes embedded for a page opened from
 * file:// (which cannot fetch). No network is needed either way. Items the index holds no
 * thumbnail for get one made from their source image file, when it is readable. The model is checked against the index's
 * checksum first. Placement is calibrated leave-one-out on the index's labelled items (as
 * `contrastive predict` does by default). Call `await useBackend()` first (calibration searches).
 */
export async function writeWebSite(indexPath: string, options: WebSiteOptions): Promise<WebSiteSummary> {
  const fn = 'writeWebSite';
  const k = options.k ?? 10;
  if (!(Number.isInteger(k) && k >= 1))
    throw new ContrastiveError(`${fn}: k must be an integer >= 1, but got ${k}.`);
  const limit = options.calibrationLimit ?? 2000;
  if (!(Number.isInteger(limit) && limit >= 0))
    throw new ContrastiveError(`${fn}: calibrationLimit must be an integer >= 0, but got ${limit}.`);
  const bundle = await readFile(PAGE_BUNDLE).catch(() => {
    throw new ContrastiveError(
      `${fn}: the page bundle ${PAGE_BUNDLE} is missing; build the package (npm run build) before exporting.`,
    );
  });
  const indexBytes = await readFile(indexPath).catch((error: NodeJS.ErrnoException) => {
    throw new ContrastiveError(`${fn}: cannot read ${indexPath}: ${error.code ?? error.message}.`);
  });
  const out = resolve(options.out);
  await checkSiteFolder(fn, out);
  const catalogue = await Catalogue.open(indexPath, { run: options.run });
  const index = catalogue.index;
  try {
    if (!index.model && !options.run)
      throw new ContrastiveError(
        `${fn}: ${indexPath} records no model (its vectors came from elsewhere), so the page could not embed a query image; pass the run folder that made them (--run).`,
      );
    const runDir = options.run ?? index.model!.source;
    // a frozen pretrained backbone: its files checked (and refused when changed) before anything is opened
    const record = await new RunFolder(runDir).readBackbone(fn);
    const pretrainedFiles = record ? await readBackboneFiles(fn, runDir, record) : null;
    const ortFiles = record?.kind === 'onnx' ? await ortWebFiles(fn) : [];
    // the same check `contrastive search --image` makes: this run's model made this index
    await catalogue.encoder();
    const backbone = await readModelFolder(join(runDir, 'model'), fn);
    const head = index.space === 'head' ? await readModelFolder(join(runDir, 'head'), fn) : null;
    const calibrated =
      limit > 0 ? catalogue.calibrate({ limit, targetPrecision: options.targetPrecision ?? 0.95 }) : null;
    const calibration: SiteConfig['calibration'] = calibrated
      ? calibrationToJSON(calibrated.calibration)
      : null;
    const calibratedOn = calibrated
      ? `${calibrated.calibration.validationSize} labelled items (leave-one-out)`
      : null;
    const thumbnails = await sourceThumbnails(
      index,
      options.allowOutsideSources ? null : (options.sourcesRoot ?? dirname(resolve(indexPath))),
    );
    const indexFile = basename(indexPath);
    const title = options.title ?? `Search ${indexFile}`;
    const config: SiteConfig = {
      format: 'tfjs-contrastive/web-site@1',
      title,
      indexFile,
      backboneUrl: 'model/model.json',
      headUrl: head ? 'head/model.json' : null,
      calibration,
      calibratedOn,
      k,
      thumbnailFiles: thumbnails.files,
      pretrained:
        record && pretrainedFiles
          ? {
              record: {
                kind: record.kind,
                sha256: record.sha256,
                output: record.output,
                pooling: record.pooling,
                preprocessing: record.preprocessing,
                featureDim: record.featureDim,
              },
              files: pretrainedFiles.map(([name]) => name),
              ort: record.kind === 'onnx' ? 'ort/' : null,
            }
          : null,
    };
    const embedded: SiteEmbeddedData = {
      format: 'tfjs-contrastive/web-site-data@1',
      index: bytesToBase64(indexBytes),
      backbone: backbone.encoded,
      head: head?.encoded ?? null,
      // an ONNX backbone runs only over http(s) (see the page), so only tfjs backbones are embedded
      pretrained:
        pretrainedFiles && record?.kind !== 'onnx'
          ? Object.fromEntries(pretrainedFiles.map(([name, bytes]) => [name, bytesToBase64(bytes)]))
          : null,
    };
    const files: [string, string | Uint8Array][] = [
      ['index.html', pageHtml(title)],
      ['app.js', bundle],
      ['site-config.js', `globalThis.${SITE_CONFIG_GLOBAL} = ${JSON.stringify(config)};\n`],
      ['site-data.js', `globalThis.${SITE_DATA_GLOBAL} = ${JSON.stringify(embedded)};\n`],
      [indexFile, indexBytes],
      ...[...backbone.raw].map(([p, b]) => [`model/${p}`, b] as [string, Uint8Array]),
      ...[...(head?.raw ?? [])].map(([p, b]) => [`head/${p}`, b] as [string, Uint8Array]),
      ...thumbnails.png,
      ...(pretrainedFiles ?? []).map(([p, b]) => [`backbone/${p}`, b] as [string, Uint8Array]),
      ...ortFiles,
    ];
    // every path stays inside --out (weight paths come from files a run names)
    for (const [path] of files) {
      const target = resolve(out, path);
      if (!target.startsWith(out + sep))
        throw new ContrastiveError(`${fn}: refusing to write ${path}, which resolves outside --out ${out}.`);
    }
    await writeFileAtomic(join(out, SITE_MARKER), 'tfjs-contrastive web site (contrastive export-web)\n');
    const written: WebSiteSummary['files'] = [];
    // the page last: a half-written site never opens
    for (const [path, content] of [...files.slice(1), files[0]]) {
      await writeFileAtomic(join(out, path), content);
      written.push({
        path,
        bytes: typeof content === 'string' ? Buffer.byteLength(content) : content.length,
      });
    }
    return {
      out,
      files: written,
      items: index.size,
      thumbnails:
        index.items().filter((it) => it.thumbnail !== undefined).length +
        Object.keys(thumbnails.files).length,
      calibration: calibration ? { method: calibration.method, on: calibratedOn! } : null,
      sourcesOutsideRoot: thumbnails.outside,
      pretrained: record?.kind ?? null,
    };
  } finally {
    catalogue.dispose();
  }
}
