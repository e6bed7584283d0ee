import { BACKEND_OPTION, defineCommand } from '../args.js';
import { progressLine } from '../output.js';
import { DATA_SOURCE_OPTIONS, dataSource } from './index.js';

/**
 * `contrastive embed runs/x --out emb.npy`: embeddings of the run's own split (`--split`), or of any
 * data (`--data`: Fashion-MNIST, an image folder, images, a feature table), with labels alongside.
 */
export const embedCommand = defineCommand({
  name: 'embed',
  summary:
    "Write embeddings as .npy (or JSONL), with label paths alongside: the run's split, or any data with --data.",
  positionals: [{ name: 'run', doc: 'run folder' }],
  options: [
    {
      name: 'out',
      type: 'string',
      doc: 'output file: .npy (labels go to <out>.labels.txt, ids to <out>.ids.txt with --data) or .jsonl (required)',
    },
    ...DATA_SOURCE_OPTIONS.map((o) =>
      o.name === 'split'
        ? { ...o, doc: "which split of the run's data (or of fashion-mnist with --data)" }
        : o.name === 'dataDir'
          ? { ...o, doc: "data folder (default: the run's)" }
          : o.name === 'data'
            ? { ...o, doc: `${o.doc} (default: the run's own --split)` }
            : o,
    ),
    {
      name: 'space',
      type: 'string',
      choices: ['backbone', 'head'],
      default: 'backbone',
      doc: 'with --data: the backbone output or the projection head output',
    },
    BACKEND_OPTION,
  ],
  async run({ positionals, options }) {
    const { ContrastiveError } = await import('../../errors.js');
    const { formatLabelPath } = await import('../../hierarchy/labelPath.js');
    const out = options.out;
    if (!out) throw new ContrastiveError('contrastive embed: --out is required (a .npy or .jsonl file).');
    if (!/\.(npy|jsonl)$/i.test(out)) {
      throw new ContrastiveError(
        `contrastive embed: --out ${out} must end in .npy or .jsonl (the format is chosen by the extension).`,
      );
    }
    const { checkOutputFile } = await import('../output.js');
    await checkOutputFile('embed', out);
    const { useBackend } = await import('../../engine/backend.js');
    const { writeNpy } = await import('../../data/npy.js');
    const { writeFileAtomic } = await import('../../io/atomic.js');
    await useBackend(options.backend);
    let values: Float32Array;
    let dim: number;
    let paths: (string | null)[];
    let ids: string[] | null = null;
    if (options.data !== undefined) {
      const { embedInputs } = await import('../../search/embedInputs.js');
      const { source, limit, cacheDir } = await dataSource('embed', options);
      const embedded = await embedInputs(positionals[0], source, {
        limit,
        cacheDir,
        onDecodeProgress: progressLine('decoding'),
        space: options.space,
        onProgress: progressLine('embedding'),
      });
      values = embedded.embeddings;
      dim = embedded.dim;
      paths = embedded.items.map((it) =>
        it.label == null ? null : typeof it.label === 'string' ? it.label : formatLabelPath(it.label),
      );
      ids = embedded.items.map((it) => String(it.id));
    } else {
      const { embedDataSplit } = await import('../../eval/embed.js');
      const { closeRunData } = await import('../../data/runData.js');
      const { checkFiniteEmbeddings } = await import('../../eval/evaluate.js');
      const { loadTrainedRun } = await import('../../run/trainedRun.js');
      const { model, data } = await loadTrainedRun(positionals[0], {
        dataDir: options.dataDir,
        command: 'embed',
      });
      const split = options.split === 'train' ? data.train : data.test;
      const embeddings = await embedDataSplit(model, split, data.inputShape).finally(() =>
        closeRunData(data),
      );
      try {
        checkFiniteEmbeddings('embed', `embeddings of the ${options.split} split`, embeddings);
      } catch (error) {
        embeddings.dispose();
        model.dispose();
        throw error;
      }
      const depth = data.tree.depth;
      paths = Array.from({ length: split.size }, (_, i) =>
        formatLabelPath(data.tree.path(depth - 1, split.labels[i * depth + depth - 1])),
      );
      values = embeddings.dataSync() as Float32Array;
      dim = embeddings.shape[1];
      embeddings.dispose();
      model.dispose();
    }
    const count = paths.length;
    if (out.endsWith('.jsonl')) {
      const lines = paths.map((label, i) =>
        JSON.stringify({
          ...(ids ? { id: ids[i] } : {}),
          label,
          embedding: Array.from(values.subarray(i * dim, (i + 1) * dim)),
        }),
      );
      await writeFileAtomic(out, `${lines.join('\n')}\n`);
    } else {
      await writeNpy(out, { shape: [count, dim], data: values });
      // a labels file only when every row has a label: readFeatureTable reads it back as is
      if (paths.every((p) => p !== null)) await writeFileAtomic(`${out}.labels.txt`, `${paths.join('\n')}\n`);
      if (ids) await writeFileAtomic(`${out}.ids.txt`, `${ids.join('\n')}\n`);
    }
    console.log(`wrote ${count} embeddings of dimension ${dim} to ${out}`);
  },
});
