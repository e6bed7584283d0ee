import { BACKEND_OPTION, type CommandSpec } from '../args.js';

/** `contrastive embed runs/x --out emb.npy`: backbone embeddings of a split, with their labels. */
export const embedCommand: CommandSpec = {
  name: 'embed',
  summary: 'Write the embeddings of a split as .npy (or JSONL), with the label paths alongside.',
  positionals: [{ name: 'run', doc: 'run folder' }],
  options: [
    {
      name: 'out',
      type: 'string',
      doc: 'output file: .npy (labels go to <out>.labels.txt) or .jsonl (required)',
    },
    { name: 'split', type: 'string', choices: ['train', 'test'], default: 'test', doc: 'which split' },
    { name: 'dataDir', type: 'string', doc: "data folder (default: the run's)" },
    BACKEND_OPTION,
  ],
  async run({ positionals, options }) {
    const { ContrastiveError } = await import('../../errors.js');
    const out = options.out as string | undefined;
    if (!out) throw new ContrastiveError('contrastive embed: --out is required (a .npy or .jsonl file).');
    if (!/\.(npy|jsonl)$/i.test(out)) {
      throw new ContrastiveError(
        `contrastive embed: --out ${out} must end in .npy or .jsonl (the format is chosen by the extension).`,
      );
    }
    const { checkOutputFile } = await import('../output.js');
    await checkOutputFile('embed', out);
    const { useBackend } = await import('../../engine/backend.js');
    const { embedSplit } = await import('../../eval/embed.js');
    const { checkFiniteEmbeddings } = await import('../../eval/evaluate.js');
    const { loadTrainedRun } = await import('../../run/trainedRun.js');
    const { writeNpy } = await import('../../data/npy.js');
    const { writeFileAtomic } = await import('../../io/atomic.js');
    await useBackend(options.backend as 'auto');
    const { model, data } = await loadTrainedRun(positionals[0], {
      dataDir: options.dataDir as string | undefined,
      command: 'embed',
    });
    const split = options.split === 'train' ? data.train : data.test;
    const embeddings = embedSplit(model, split, data.inputShape);
    try {
      checkFiniteEmbeddings('embed', `embeddings of the ${options.split} split`, embeddings);
    } catch (error) {
      embeddings.dispose();
      model.dispose();
      throw error;
    }
    const depth = data.tree.depth;
    const paths = Array.from({ length: split.size }, (_, i) =>
      data.tree.path(depth - 1, split.labels[i * depth + depth - 1]).join('/'),
    );
    const values = embeddings.dataSync() as Float32Array;
    const dim = embeddings.shape[1];
    if (out.endsWith('.jsonl')) {
      const lines = paths.map((label, i) =>
        JSON.stringify({ label, embedding: Array.from(values.subarray(i * dim, (i + 1) * dim)) }),
      );
      await writeFileAtomic(out, `${lines.join('\n')}\n`);
    } else {
      await writeNpy(out, { shape: [split.size, dim], data: values });
      await writeFileAtomic(`${out}.labels.txt`, `${paths.join('\n')}\n`);
    }
    embeddings.dispose();
    model.dispose();
    console.log(`wrote ${split.size} embeddings of dimension ${dim} to ${out}`);
  },
};
