import { color, escapeXml, formatTick, ticks } from './svg.js';

/** One line of a {@link lineChart}. */
export interface Series {
  name: string;
  x: readonly number[];
  y: readonly number[];
}

export interface LineChartOptions {
  title: string;
  xLabel?: string;
  yLabel?: string;
  width?: number;
  height?: number;
}

/** A self-contained SVG line chart (axes, ticks, legend); non-finite points are skipped. */
export function lineChart(series: readonly Series[], options: LineChartOptions): string {
  const width = options.width ?? 560;
  const height = options.height ?? 300;
  const margin = { left: 56, right: 16, top: 32, bottom: 44 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const xs = series.flatMap((s) => s.x.filter(Number.isFinite));
  const ys = series.flatMap((s) => s.y.filter(Number.isFinite));
  const xMin = xs.length ? Math.min(...xs) : 0;
  const xMax = xs.length ? Math.max(...xs) : 1;
  const yMin = ys.length ? Math.min(...ys) : 0;
  const yMax = ys.length ? Math.max(...ys) : 1;
  const pad = (yMax - yMin) * 0.05 || 1;
  const [y0, y1] = [yMin - pad, yMax + pad];
  const sx = (x: number) => margin.left + ((x - xMin) / (xMax - xMin || 1)) * plotW;
  const sy = (y: number) => margin.top + (1 - (y - y0) / (y1 - y0)) * plotH;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(options.title)}">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${width / 2}" y="18" text-anchor="middle" font-size="14" font-family="sans-serif">${escapeXml(options.title)}</text>`,
  ];
  for (const t of ticks(y0, y1)) {
    parts.push(
      `<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${sy(t)}" y2="${sy(t)}" stroke="#e5e5e5"/>`,
      `<text x="${margin.left - 6}" y="${sy(t) + 4}" text-anchor="end" font-size="11" font-family="sans-serif">${formatTick(t)}</text>`,
    );
  }
  for (const t of ticks(xMin, xMax)) {
    parts.push(
      `<text x="${sx(t)}" y="${margin.top + plotH + 16}" text-anchor="middle" font-size="11" font-family="sans-serif">${formatTick(t)}</text>`,
    );
  }
  parts.push(
    `<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`,
  );
  if (options.xLabel) {
    parts.push(
      `<text x="${margin.left + plotW / 2}" y="${height - 8}" text-anchor="middle" font-size="12" font-family="sans-serif">${escapeXml(options.xLabel)}</text>`,
    );
  }
  if (options.yLabel) {
    parts.push(
      `<text transform="translate(14 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="12" font-family="sans-serif">${escapeXml(options.yLabel)}</text>`,
    );
  }
  series.forEach((s, i) => {
    const points: string[] = [];
    s.x.forEach((x, k) => {
      const y = s.y[k];
      if (Number.isFinite(x) && Number.isFinite(y)) points.push(`${sx(x).toFixed(1)},${sy(y).toFixed(1)}`);
    });
    if (points.length > 0) {
      parts.push(
        `<polyline class="series" data-name="${escapeXml(s.name)}" fill="none" stroke="${color(i)}" stroke-width="1.5" points="${points.join(' ')}"/>`,
      );
    }
    const ly = margin.top + 8 + i * 14;
    parts.push(
      `<line x1="${margin.left + plotW - 120}" x2="${margin.left + plotW - 104}" y1="${ly}" y2="${ly}" stroke="${color(i)}" stroke-width="2"/>`,
      `<text x="${margin.left + plotW - 100}" y="${ly + 4}" font-size="11" font-family="sans-serif">${escapeXml(s.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}
