import { BACKEND_OPTION, defineCommand } from '../args.js';

/** `contrastive export-web catalogue.index --out site/`. */
export const exportWebCommand = defineCommand({
  name: 'export-web',
  summary:
    'Write a static web page that searches an index in the browser with its model (works offline, from file:// or any static server).',
  positionals: [{ name: 'index', doc: 'index file written by contrastive index' }],
  options: [
    { name: 'out', type: 'string', doc: 'folder to write the site into, e.g. site/ (required)' },
    { name: 'run', type: 'string', doc: 'run folder of the model (default: the one recorded in the index)' },
    { name: 'title', type: 'string', doc: 'page title (default: Search <index file>)' },
    { name: 'k', type: 'integer', default: 10, doc: 'results shown per query' },
    {
      name: 'calibrationLimit',
      type: 'integer',
      default: 2000,
      doc: "labelled index items to calibrate the predicted path's confidences on (0: raw confidences)",
    },
    {
      name: 'targetPrecision',
      type: 'number',
      default: 0.95,
      doc: 'accuracy wanted for every answered level of the predicted path',
    },
    {
      name: 'sourcesRoot',
      type: 'string',
      doc: "make thumbnails only of source images inside this folder (default: the index file's folder)",
    },
    {
      name: 'allowOutsideSources',
      type: 'boolean',
      default: false,
      doc: 'make thumbnails of source images anywhere on disk (a shared index could otherwise publish files you did not mean to)',
    },
    { name: 'json', type: 'boolean', default: false, doc: 'print one JSON document instead of text' },
    BACKEND_OPTION,
  ],
  async run({ positionals, options }) {
    const { ContrastiveError } = await import('../../errors.js');
    const out = options.out;
    if (!out)
      throw new ContrastiveError(
        'contrastive export-web: --out is required (the folder to write the site into).',
      );
    const { useBackend } = await import('../../engine/backend.js');
    const { writeWebSite } = await import('../../web/site.js');
    await useBackend(options.backend);
    const summary = await writeWebSite(positionals[0], {
      out,
      run: options.run,
      title: options.title,
      k: options.k,
      calibrationLimit: options.calibrationLimit,
      targetPrecision: options.targetPrecision,
      sourcesRoot: options.sourcesRoot,
      allowOutsideSources: options.allowOutsideSources,
    });
    if (options.json) {
      console.log(JSON.stringify(summary));
      return;
    }
    const total = summary.files.reduce((s, f) => s + f.bytes, 0);
    console.log(
      `wrote ${summary.files.length} files (${(total / 1e6).toFixed(1)} MB) to ${summary.out}: ${summary.items} items, ${summary.thumbnails} with thumbnails; ${summary.calibration ? `confidences calibrated (${summary.calibration.method}) on ${summary.calibration.on}` : 'raw confidences'}`,
    );
    if (summary.sourcesOutsideRoot > 0)
      console.log(
        `note: ${summary.sourcesOutsideRoot} item(s) name a source image outside the sources root: no thumbnail was made for them (pass --sources-root or --allow-outside-sources)`,
      );
    if (summary.pretrained === 'onnx')
      console.log(
        `its ONNX backbone runs on onnxruntime-web, which browsers load only over http(s): serve the folder (e.g. cd ${summary.out} && python3 -m http.server) and open it there`,
      );
    else console.log(`open ${summary.out}/index.html in a browser (no server or network needed)`);
  },
});
