import { color, escapeXml } from './svg.js';

export interface ScatterChartOptions {
  title: string;
  /** Name of each category (legend), indexed by the values of `categories`. */
  categoryNames: readonly string[];
  width?: number;
  height?: number;
}

/** A self-contained SVG scatter plot of `[n, 2]` row-major points coloured by category. */
export function scatterChart(
  points: ArrayLike<number>,
  categories: ArrayLike<number>,
  options: ScatterChartOptions,
): string {
  const width = options.width ?? 560;
  const height = options.height ?? 420;
  const legendW = 150;
  const margin = 16;
  const plotW = width - legendW - 2 * margin;
  const plotH = height - 2 * margin - 20;
  const n = categories.length;
  let [xMin, xMax, yMin, yMax] = [Infinity, -Infinity, Infinity, -Infinity];
  for (let i = 0; i < n; i++) {
    xMin = Math.min(xMin, points[2 * i]);
    xMax = Math.max(xMax, points[2 * i]);
    yMin = Math.min(yMin, points[2 * i + 1]);
    yMax = Math.max(yMax, points[2 * i + 1]);
  }
  const sx = (x: number) => margin + ((x - xMin) / (xMax - xMin || 1)) * plotW;
  const sy = (y: number) => margin + 20 + (1 - (y - yMin) / (yMax - yMin || 1)) * plotH;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(options.title)}">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${margin + plotW / 2}" y="16" text-anchor="middle" font-size="14" font-family="sans-serif">${escapeXml(options.title)}</text>`,
    `<rect x="${margin}" y="${margin + 20}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`,
  ];
  const dots: string[] = [];
  for (let i = 0; i < n; i++) {
    dots.push(
      `<circle cx="${sx(points[2 * i]).toFixed(1)}" cy="${sy(points[2 * i + 1]).toFixed(1)}" r="2.2" fill="${color(categories[i])}" fill-opacity="0.75"/>`,
    );
  }
  parts.push(`<g class="points">${dots.join('')}</g>`);
  options.categoryNames.forEach((name, c) => {
    const y = margin + 30 + c * 16;
    parts.push(
      `<circle cx="${width - legendW + 8}" cy="${y}" r="5" fill="${color(c)}"/>`,
      `<text x="${width - legendW + 18}" y="${y + 4}" font-size="11" font-family="sans-serif">${escapeXml(name)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}
