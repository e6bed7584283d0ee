import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { renderReport, reportCharts } from './html.js';
import { loadRun } from './loadRun.js';
import type { ReportRun } from './runRecords.js';

/** Options of {@link writeReport}. */
export interface WriteReportOptions {
  /** The HTML file to write. */
  out: string;
  title?: string;
  /** Also write every chart as `<id>.svg` and `<id>.png` into this folder (for a README). */
  chartsDir?: string;
}

/** Reads run folders (or takes loaded runs) and writes the self-contained HTML report. */
export async function writeReport(
  runs: readonly (string | ReportRun)[],
  options: WriteReportOptions,
): Promise<{ out: string; charts: string[] }> {
  const loaded = await Promise.all(runs.map((r) => (typeof r === 'string' ? loadRun(r) : r)));
  await writeFileAtomic(options.out, renderReport(loaded, { title: options.title }));
  const written: string[] = [];
  if (options.chartsDir) {
    const { default: sharp } = await import('sharp');
    for (const chart of reportCharts(loaded)) {
      const svgPath = join(options.chartsDir, `${chart.id}.svg`);
      const pngPath = join(options.chartsDir, `${chart.id}.png`);
      await writeFileAtomic(svgPath, chart.svg);
      await writeFileAtomic(pngPath, await sharp(Buffer.from(chart.svg), { density: 144 }).png().toBuffer());
      written.push(svgPath, pngPath);
    }
  }
  return { out: options.out, charts: written };
}
