import type { LevelRetrieval } from '../eval/retrieval.js';
import { lineChart, type Series } from './charts/lineChart.js';
import { scatterChart } from './charts/scatterChart.js';
import { escapeXml } from './charts/svg.js';
import type { ReportRun } from './runRecords.js';

/** A chart of the report, for export as SVG/PNG. */
export interface ReportChart {
  /** File-name friendly id, e.g. `loss`, `map-fm-hmce-coarse`. */
  id: string;
  svg: string;
}

const levelName = (run: ReportRun, l: number) => run.levelNames?.[l] ?? `level ${l}`;

/** Every chart of the report: loss curves (total and per level), and the 2-D maps of each run. */
export function reportCharts(runs: readonly ReportRun[]): ReportChart[] {
  const charts: ReportChart[] = [];
  const steps = (r: ReportRun) => r.history.filter((h) => h.kind === 'step');
  charts.push({
    id: 'loss',
    svg: lineChart(
      runs.map((r) => ({ name: r.name, x: steps(r).map((h) => h.step), y: steps(r).map((h) => h.loss) })),
      { title: 'Training loss', xLabel: 'step', yLabel: 'loss' },
    ),
  });
  for (const run of runs) {
    const withLevels = steps(run).filter((h) => h.levelLosses);
    if (withLevels.length > 0) {
      const numLevels = withLevels[0].levelLosses!.length;
      const series: Series[] = Array.from({ length: numLevels }, (_, l) => ({
        name: levelName(run, l),
        x: withLevels.map((h) => h.step),
        y: withLevels.map((h) => h.levelLosses![l]),
      }));
      charts.push({
        id: `levels-${slug(run.name)}`,
        svg: lineChart(series, { title: `${run.name}: loss per level`, xLabel: 'step' }),
      });
    }
    const projection = run.evaluation?.projection;
    if (projection && projection.labels.length > 0) {
      const numLevels = projection.labels[0].length;
      for (const l of numLevels > 1 ? [0, numLevels - 1] : [0]) {
        const values = projection.labels.map((row) => row[l]);
        const names = run.classNames?.[l] ?? [];
        const distinct = [...new Set(values)].sort((a, b) => a - b);
        const index = new Map(distinct.map((v, i) => [v, i]));
        charts.push({
          id: `map-${slug(run.name)}-${l === 0 ? 'coarse' : 'fine'}`,
          svg: scatterChart(
            projection.points,
            values.map((v) => index.get(v)!),
            {
              title: `${run.name}: test embeddings (PCA), by ${levelName(run, l)}`,
              categoryNames: distinct.map((v) => names[v] ?? String(v)),
            },
          ),
        });
      }
    }
  }
  return charts;
}

/** The whole report as one self-contained HTML page (inline SVG and CSS, no script, no network). */
export function renderReport(runs: readonly ReportRun[], options: { title?: string } = {}): string {
  const title = options.title ?? `Contrastive runs: ${runs.map((r) => r.name).join(', ')}`;
  const charts = reportCharts(runs);
  const body = [
    `<h1>${escapeXml(title)}</h1>`,
    `<p class="meta">Generated ${new Date().toISOString()} by tfjs-contrastive.</p>`,
    '<h2>Metrics</h2>',
    '<p class="meta">Accuracies, mAP@R and consistency violations in %. Mistake severity: mean height of the lowest common ancestor of wrong kNN predictions (1 = a sibling class).</p>',
    metricsTable(runs),
    ...runs.filter((r) => r.evaluation).map(retrievalTable),
    '<h2>Charts</h2>',
    `<div class="charts">${charts.map((c) => `<figure id="chart-${c.id}">${c.svg}</figure>`).join('\n')}</div>`,
    ...runs.filter((r) => r.strips && r.strips.length > 0).map(stripsSection),
    ...runs.map(configSection),
  ];
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeXml(title)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f4f4; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; }
.strip { display: flex; gap: 4px; align-items: center; margin-bottom: 6px; }
.strip img { width: 56px; height: 56px; image-rendering: pixelated; border: 3px solid #ccc; }
.strip img.q { border-color: #333; }
.strip img.s0 { border-color: #D55E00; } .strip img.s1 { border-color: #E69F00; } .strip img.full { border-color: #009E73; }
.meta { color: #666; }
pre { background: #f7f7f7; padding: 0.5rem; overflow-x: auto; }
</style>
</head>
<body>
${body.join('\n')}
</body>
</html>
`;
}

const pct = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '–' : (100 * v).toFixed(2));

function metricsTable(runs: readonly ReportRun[]): string {
  const numLevels = Math.max(0, ...runs.map((r) => r.evaluation?.numLevels ?? 0));
  const levelHeads = Array.from({ length: numLevels }, (_, l) => `kNN ${escapeXml(levelName(runs[0], l))}`);
  const head = [
    'run',
    'method',
    ...levelHeads,
    'linear probe',
    'mAP@R (finest)',
    'mistake severity',
    'consistency violations',
    'final loss',
  ];
  const rows = runs.flatMap((r) => {
    const e = r.evaluation;
    const last = [...r.history].reverse().find((h) => h.kind === 'step' || h.kind === 'epoch');
    const trained = [
      escapeXml(r.name),
      escapeXml(r.method ?? ''),
      ...Array.from({ length: numLevels }, (_, l) => pct(e?.knn.accuracyByLevel[l])),
      pct(e?.linearProbe?.testAccuracy),
      pct(e?.retrieval[e.retrieval.length - 1]?.mapAtR),
      e ? e.severity.knn.meanLcaHeight.toFixed(3) : '–',
      pct(e?.consistency?.violationRate),
      last ? last.loss.toFixed(4) : '–',
    ];
    // the baselines right under the run: what its training bought
    const baselines = (r.baselines ?? []).map((b) => [
      `<span class="meta">${escapeXml(r.name)} · ${escapeXml(b.name)}</span>`,
      '<span class="meta">baseline</span>',
      ...Array.from({ length: numLevels }, (_, l) => pct(b.knnAccuracyByLevel[l])),
      '–',
      pct(b.mapAtR[b.mapAtR.length - 1]),
      '–',
      '–',
      '–',
    ]);
    return [trained, ...baselines];
  });
  return table(head, rows, 'metrics');
}

function retrievalTable(run: ReportRun): string {
  const e = run.evaluation!;
  const ks = Object.keys(e.retrieval[0]?.recallAt ?? {});
  const head = ['level', 'P@1', ...ks.map((k) => `R@${k}`), 'R-precision', 'mAP@R', 'queries'];
  const line = (r: LevelRetrieval) => [
    escapeXml(levelName(run, r.level)),
    pct(r.precisionAt1),
    ...ks.map((k) => pct(r.recallAt[Number(k)])),
    pct(r.rPrecision),
    pct(r.mapAtR),
    String(r.numQueries),
  ];
  let html = `<h3>${escapeXml(run.name)}: retrieval per level (test split, leave-one-out, %)</h3>${table(head, e.retrieval.map(line), 'retrieval')}`;
  if (e.unseen && e.unseen.retrieval.length > 0) {
    html += `<h3>${escapeXml(run.name)}: held-out fine classes (${e.unseen.numQueries} queries)</h3>${table(head, e.unseen.retrieval.map(line), 'unseen')}`;
  }
  return html;
}

function stripsSection(run: ReportRun): string {
  const numLevels = run.evaluation?.numLevels ?? 0;
  const strips = run.strips!.map((s) => {
    const neighbors = s.neighbors
      .map((n) => {
        const cls = n.sharedLevels >= numLevels ? 'full' : `s${Math.min(n.sharedLevels, 1)}`;
        return `<img class="${cls}" src="${n.image}" alt="${escapeXml(n.label)}" title="${escapeXml(n.label)}">`;
      })
      .join('');
    return `<div class="strip"><img class="q" src="${s.query}" alt="${escapeXml(s.label)}" title="query: ${escapeXml(s.label)}">${neighbors}</div>`;
  });
  return `<h3>${escapeXml(run.name)}: nearest neighbours (green: same class, amber: same coarse branch, red: other)</h3>${strips.join('\n')}`;
}

function configSection(run: ReportRun): string {
  if (!run.config) return '';
  return `<details><summary>${escapeXml(run.name)}: configuration</summary><pre>${escapeXml(JSON.stringify(run.config, null, 2))}</pre></details>`;
}

function table(head: string[], rows: string[][], className: string): string {
  return `<table class="${className}"><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

function slug(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-|-$/g, '') || 'run';
}
