/// <reference lib="dom" />
/**
 * The page `contrastive export-web` writes: plain DOM over the browser entry (`./index.ts`), so it
 * does nothing a web app using `tfjs-contrastive/web` could not. Over http(s) it fetches the plain
 * index and model files beside it; opened from file:// (where fetch is refused) it loads their
 * embedded copy, `site-data.js`, a classic script. No network either way.
 * Also exposes `window.contrastivePage` (`ready`, `queryImage`) for scripts and tests, and the
 * browser entry itself as `window.tfjsContrastive` (to try the API from the console).
 */
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { formatLabelPath } from '../hierarchy/labelPath.js';
import type { SearchHit, SearchOptions } from '../search/embeddingIndex.js';
import type { PathPrediction } from '../search/predictPath.js';
import { type CatalogueAnswer, WebCatalogue } from './catalogue.js';
import * as browserEntry from './index.js';
import { type ImageInput, modelInputFromPixels, readImagePixels } from './pixels.js';
import {
  base64ToBytes,
  type EncodedModelFiles,
  SITE_CONFIG_GLOBAL,
  SITE_DATA_GLOBAL,
  type SiteConfig,
  type SiteEmbeddedData,
} from './siteData.js';
import type { OrtWeb } from './webBackbone.js';
import { fetchBytes, fetchModelFiles, type ModelFiles } from './webModel.js';

/** What `window.contrastivePage.queryImage` resolves to (plain data, for scripts). */
export interface PageAnswer {
  embedding: number[];
  hits: { id: string; score: number; label: string | null }[];
  prediction: PathPrediction;
  /** Embedding + search + placement, in milliseconds. */
  milliseconds: number;
}

/** The page's scripting surface. */
export interface PageApi {
  /** Resolves when the index and the model are loaded (rejects with the reason when they cannot be). */
  ready: Promise<{ items: number; milliseconds: number }>;
  /** Runs a query as the UI does (and shows it), with the page's current scope and grouping unless given. */
  queryImage(image: ImageInput, options?: SearchOptions): Promise<PageAnswer>;
}

const $ = <T extends HTMLElement>(selector: string): T => {
  const found = document.querySelector<T>(selector);
  if (!found) throw new Error(`the page has no ${selector}`);
  return found;
};

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

function decodeModel(files: EncodedModelFiles, what: string): ModelFiles {
  return {
    modelJson: base64ToBytes(files.modelJson, `${what} model.json`),
    weights: Object.fromEntries(
      Object.entries(files.weights).map(([name, data]) => [name, base64ToBytes(data, `${what} ${name}`)]),
    ),
  };
}

function showError(error: unknown): void {
  const box = $('#error');
  box.textContent = error instanceof Error ? error.message : String(error);
  box.hidden = false;
}

function renderPrediction(prediction: PathPrediction, separator: string): void {
  const panel = $('#prediction');
  panel.replaceChildren();
  const answered = prediction.path.length
    ? prediction.path.join(` ${separator === '/' ? '›' : separator} `)
    : '—';
  const unsure = prediction.levels.find((l) => !l.answered);
  panel.append(
    el(
      'p',
      { class: 'predicted-path' },
      el('strong', {}, answered),
      unsure && prediction.depth > 0 ? el('span', { class: 'muted' }, ` (${unsure.levelName} unsure)`) : '',
      prediction.depth === 0 ? el('span', { class: 'muted' }, ' (not confident at any level)') : '',
    ),
  );
  const table = el('table', { class: 'levels' });
  for (const level of prediction.levels) {
    const pct = Math.round(level.confidence * 1000) / 10;
    table.append(
      el(
        'tr',
        { class: level.answered ? 'answered' : 'unanswered' },
        el('th', {}, level.levelName),
        el('td', {}, level.name || '—'),
        el(
          'td',
          { class: 'bar-cell' },
          el('span', { class: 'track' }, el('span', { class: 'bar', style: `width:${Math.max(1, pct)}%` })),
          el('span', { class: 'pct' }, `${pct.toFixed(1)} %`),
        ),
      ),
    );
  }
  panel.append(table, el('p', { class: 'muted small' }, `method: ${prediction.method}`));
}

function renderHits(
  hits: SearchHit[],
  answer: CatalogueAnswer,
  separator: string,
  thumbnailFiles: Record<string, string>,
): void {
  const grid = $('#results');
  grid.replaceChildren();
  const groups = answer.result.groups;
  hits.forEach((hit, rank) => {
    const thumbnail = hit.thumbnail ?? thumbnailFiles[hit.id];
    const picture = thumbnail
      ? el('img', { src: thumbnail, alt: `item ${hit.id}`, class: 'thumb' })
      : el('div', { class: 'thumb placeholder' }, 'no thumbnail');
    const group = groups?.find((g) => g.hits.includes(hit));
    grid.append(
      el(
        'figure',
        { class: 'hit', 'data-id': hit.id, title: 'search with this item' },
        picture,
        el(
          'figcaption',
          {},
          el('span', { class: 'rank' }, `#${rank + 1}`),
          el('span', { class: 'score' }, hit.score.toFixed(4)),
          el('span', { class: 'label' }, hit.label ? hit.label.join(` ${separator} `) : '(unlabelled)'),
          el(
            'span',
            { class: 'id muted' },
            `id ${hit.id}${group ? ` · ${formatLabelPath(group.node, separator)}` : ''}`,
          ),
        ),
      ),
    );
  });
  $('#results-title').textContent =
    `Top ${hits.length}${groups ? ` in ${groups.length} groups` : ''} (${answer.result.approximate ? 'approximate' : 'exact'} search)`;
}

function drawModelInput(input: Float32Array, [h, w, c]: readonly [number, number, number]): void {
  const canvas = $<HTMLCanvasElement>('#model-input');
  canvas.width = w;
  canvas.height = h;
  const context = canvas.getContext('2d')!;
  const image = context.createImageData(w, h);
  for (let p = 0; p < h * w; p++) {
    for (let ch = 0; ch < 3; ch++)
      image.data[p * 4 + ch] = Math.round(255 * input[p * c + (c === 3 ? ch : 0)]);
    image.data[p * 4 + 3] = 255;
  }
  context.putImageData(image, 0, 0);
}

/** Runs a classic script beside the page and resolves when it has run. */
function loadScript(src: string): Promise<void> {
  return new Promise((ok, fail) => {
    const script = el('script', { src });
    script.addEventListener('load', () => ok());
    script.addEventListener('error', () =>
      fail(new Error(`cannot load ${src} beside the page; export the site again.`)),
    );
    document.head.append(script);
  });
}

/**
 * onnxruntime-web's wasm build from the site's `ort/` folder (an ES module, imported at run time:
 * only ONNX sites carry it): single-threaded, as a page that is not cross-origin isolated must be.
 */
async function loadOrt(folder: string): Promise<OrtWeb> {
  const base = new URL(folder, location.href).href;
  const url = `${base}ort.wasm.min.mjs`;
  const module = (await import(/* webpackIgnore: true */ url)) as OrtWeb & { default?: OrtWeb };
  const ort = module.InferenceSession ? module : (module.default as OrtWeb);
  ort.env.wasm.wasmPaths = base;
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  return ort;
}

/** The index and model bytes: fetched over http(s), else (file://, or a failed fetch) the embedded copy. */
async function siteFiles(config: SiteConfig): Promise<{
  index: Uint8Array;
  backbone: ModelFiles;
  head?: ModelFiles;
  pretrained?: [string, Uint8Array][];
  via: string;
}> {
  const pretrained = config.pretrained;
  if (location.protocol !== 'file:') {
    try {
      const [index, backbone, head, pretrainedFiles] = await Promise.all([
        fetchBytes(config.indexFile, 'page'),
        fetchModelFiles(config.backboneUrl),
        config.headUrl ? fetchModelFiles(config.headUrl) : Promise.resolve(undefined),
        pretrained
          ? Promise.all(
              pretrained.files.map(
                async (name) => [name, await fetchBytes(`backbone/${name}`, 'page')] as [string, Uint8Array],
              ),
            )
          : Promise.resolve(undefined),
      ]);
      return { index, backbone, head, pretrained: pretrainedFiles, via: 'fetched' };
    } catch {
      // a host that refuses some file: the embedded copy holds the same bytes
    }
  }
  if (pretrained?.record.kind === 'onnx')
    throw new Error(
      'this catalogue embeds through an ONNX backbone, whose runtime (WebAssembly) browsers do not load from file://; serve the folder over http(s), e.g. python3 -m http.server, and open it there.',
    );
  await loadScript('site-data.js');
  const data = (globalThis as unknown as Record<string, SiteEmbeddedData | undefined>)[SITE_DATA_GLOBAL];
  if (data?.format !== 'tfjs-contrastive/web-site-data@1')
    throw new Error('site-data.js is not from contrastive export-web; export the site again.');
  return {
    index: base64ToBytes(data.index, config.indexFile),
    backbone: decodeModel(data.backbone, 'backbone'),
    head: data.head ? decodeModel(data.head, 'head') : undefined,
    pretrained: pretrained
      ? pretrained.files.map((name) => {
          const text = data.pretrained?.[name];
          if (text === undefined)
            throw new Error(`site-data.js lacks the backbone file ${name}; export the site again.`);
          return [name, base64ToBytes(text, `backbone ${name}`)] as [string, Uint8Array];
        })
      : undefined,
    via: 'embedded',
  };
}

async function start(): Promise<PageApi> {
  const started = performance.now();
  const config = (globalThis as unknown as Record<string, SiteConfig | undefined>)[SITE_CONFIG_GLOBAL];
  if (config?.format !== 'tfjs-contrastive/web-site@1')
    throw new Error('site-config.js is missing or not from contrastive export-web; export the site again.');
  const data = config;
  document.title = data.title;
  $('#title').textContent = data.title;
  tf.enableProdMode();
  await tf.setBackend('cpu');
  const files = await siteFiles(config);
  const pretrained = config.pretrained;
  const catalogue = await WebCatalogue.open({
    index: files.index,
    backbone: files.backbone,
    head: files.head,
    calibration: data.calibration ?? undefined,
    pretrained:
      pretrained && files.pretrained
        ? {
            record: pretrained.record,
            files: files.pretrained,
            ort: pretrained.ort ? await loadOrt(pretrained.ort) : undefined,
          }
        : undefined,
  });
  const index = catalogue.index;
  const tree = index.tree;
  const separator = tree.separator;
  // the scope select: every node, indented by level, with its item count
  const within = $<HTMLSelectElement>('#within');
  within.append(el('option', { value: '' }, `Whole catalogue (${index.size})`));
  for (const node of catalogue.nodes()) {
    if (node.count === 0) continue;
    within.append(
      el(
        'option',
        { value: formatLabelPath(node.path, separator) },
        `${'\u2003'.repeat(node.level)}${node.path[node.path.length - 1]} (${node.count})`,
      ),
    );
  }
  const groupBy = $<HTMLSelectElement>('#group-by');
  groupBy.append(el('option', { value: '' }, 'no grouping'));
  tree.levelNames.forEach((name) => {
    groupBy.append(el('option', { value: name }, `by ${name}`));
  });
  const kInput = $<HTMLInputElement>('#k');
  kInput.value = String(data.k);
  $('#meta').textContent =
    `${index.size} items · ${index.dim}-d ${index.space} embeddings · model ${catalogue.encoder.identity.checksum.slice(0, 12)} · ${tree.levelNames.join(' › ')}${data.calibratedOn ? ` · confidences calibrated on ${data.calibratedOn}` : ''} · index and model ${files.via}`;

  let lastQuery: Float32Array | null = null;
  const currentOptions = (): SearchOptions => ({
    k: Math.max(1, Math.floor(Number(kInput.value) || data.k)),
    within: within.value || undefined,
    groupBy: groupBy.value || undefined,
  });
  const run = async (image: ImageInput | Float32Array, options: SearchOptions): Promise<PageAnswer> => {
    $('#error').hidden = true;
    const t0 = performance.now();
    let embedding: Float32Array;
    if (image instanceof Float32Array) embedding = image;
    else if (catalogue.encoder.pretrained) {
      const prepared = await catalogue.embedPretrained(image);
      drawModelInput(
        Float32Array.from(prepared.pixels, (v) => v / 255),
        catalogue.imageShape,
      );
      embedding = prepared.embedding;
    } else {
      const input = modelInputFromPixels(await readImagePixels(image), catalogue.imageShape);
      drawModelInput(input, catalogue.imageShape);
      embedding = catalogue.embedInput(input);
    }
    const answer = await catalogue.query(embedding, options);
    const milliseconds = performance.now() - t0;
    lastQuery = embedding;
    renderHits(answer.result.hits, answer, separator, data.thumbnailFiles ?? {});
    renderPrediction(answer.prediction, separator);
    $('#timing').textContent = `embedded, searched and placed in ${milliseconds.toFixed(0)} ms`;
    $('main').classList.add('has-results');
    return {
      embedding: Array.from(embedding),
      hits: answer.result.hits.map((h) => ({
        id: h.id,
        score: h.score,
        label: h.label ? formatLabelPath(h.label, separator) : null,
      })),
      prediction: answer.prediction,
      milliseconds,
    };
  };
  const guarded = (work: () => Promise<unknown>) => {
    work().catch(showError);
  };
  const fromFile = (file: File) => {
    const preview = $<HTMLImageElement>('#query-preview');
    if (preview.src.startsWith('blob:')) URL.revokeObjectURL(preview.src);
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
    guarded(() => run(file, currentOptions()));
  };
  const picker = $<HTMLInputElement>('#file');
  picker.addEventListener('change', () => {
    if (picker.files?.[0]) fromFile(picker.files[0]);
  });
  const drop = $('#drop');
  drop.addEventListener('dragover', (event) => {
    event.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    const file = event.dataTransfer?.files[0];
    if (file) fromFile(file);
  });
  for (const control of [within, groupBy, kInput])
    control.addEventListener('change', () => {
      if (lastQuery) guarded(() => run(lastQuery!, currentOptions()));
    });
  $('#results').addEventListener('click', (event) => {
    const figure = (event.target as HTMLElement).closest<HTMLElement>('figure.hit');
    const id = figure?.dataset.id;
    if (!id) return;
    const item = index.item(id);
    const preview = $<HTMLImageElement>('#query-preview');
    const thumbnail = item.thumbnail ?? data.thumbnailFiles?.[id];
    if (thumbnail) {
      preview.src = thumbnail;
      preview.hidden = false;
    }
    guarded(() => run(index.embedding(id), { ...currentOptions(), exclude: [id] }));
  });
  const milliseconds = performance.now() - started;
  $('#status').textContent = `ready in ${milliseconds.toFixed(0)} ms — drop an image or choose a file`;
  document.body.classList.add('ready');
  return {
    ready: Promise.resolve({ items: index.size, milliseconds }),
    queryImage: (image, options) => run(image, options ?? currentOptions()),
  };
}

const api = start();
api.catch((error) => {
  $('#status').textContent = 'could not load the catalogue';
  showError(error);
});
(globalThis as unknown as { tfjsContrastive: typeof browserEntry }).tfjsContrastive = browserEntry;
(globalThis as unknown as { contrastivePage: PageApi }).contrastivePage = {
  ready: api.then((a) => a.ready),
  queryImage: async (image, options) => (await api).queryImage(image, options),
};
