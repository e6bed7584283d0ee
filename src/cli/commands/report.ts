import { defineCommand } from '../args.js';

/** `contrastive report runs/x [runs/y ...]`: one self-contained HTML file. */
export const reportCommand = defineCommand({
  name: 'report',
  summary: 'Write a self-contained HTML report (metrics, loss curves, embedding maps) for one or more runs.',
  positionals: [{ name: 'runs', doc: 'run folders', variadic: true }],
  options: [
    { name: 'out', type: 'string', doc: 'HTML file to write (default: <first run>/report.html)' },
    { name: 'title', type: 'string', doc: 'page title' },
    { name: 'chartsDir', type: 'string', doc: 'also export every chart as SVG and PNG into this folder' },
  ],
  async run({ positionals, options }) {
    const { ContrastiveError } = await import('../../errors.js');
    if (positionals.length === 0)
      throw new ContrastiveError('contrastive report: give at least one run folder.');
    const { join } = await import('node:path');
    const { writeReport } = await import('../../report/index.js');
    const out = options.out ?? join(positionals[0], 'report.html');
    const { checkOutputFile, checkOutputFolder } = await import('../output.js');
    await checkOutputFile('report', out);
    if (typeof options.chartsDir === 'string')
      await checkOutputFolder('report', options.chartsDir, '--charts-dir');
    const result = await writeReport(positionals, {
      out,
      title: options.title,
      chartsDir: options.chartsDir,
    });
    console.log(
      `wrote ${result.out}${result.charts.length ? ` and ${result.charts.length} chart files` : ''}`,
    );
  },
});
