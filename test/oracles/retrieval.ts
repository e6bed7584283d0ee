/**
 * Slow, obvious float64 reference implementations of the evaluation metrics, straight from their
 * definitions, for comparison on small random sets.
 */

export function cosineMatrix(x: number[][], y: number[][]): number[][] {
  const unit = (v: number[]) => {
    const n = Math.hypot(...v);
    return v.map((a) => a / n);
  };
  const ux = x.map(unit);
  const uy = y.map(unit);
  return ux.map((a) => uy.map((b) => a.reduce((s, ai, k) => s + ai * b[k], 0)));
}

const sharesPrefix = (a: number[], b: number[], level: number) =>
  a.slice(0, level + 1).every((v, k) => v === b[k]);

/** Per-level precision@1, Recall@K, R-precision, mAP@R by sorting every row; ties: irrelevant first. */
export function retrievalOracle(
  sims: number[][],
  qLabels: number[][],
  dbLabels: number[][],
  leaveOneOut: boolean,
  ks: number[],
) {
  const numLevels = qLabels[0].length;
  return Array.from({ length: numLevels }, (_, level) => {
    let n = 0;
    let p1 = 0;
    let rp = 0;
    let map = 0;
    const recall = ks.map(() => 0);
    sims.forEach((row, q) => {
      const items = row
        .map((s, j) => ({ s, j, rel: sharesPrefix(qLabels[q], dbLabels[j], level) }))
        .filter((it) => !(leaveOneOut && it.j === q))
        .sort((a, b) => b.s - a.s || Number(a.rel) - Number(b.rel));
      const r = items.filter((it) => it.rel).length;
      if (r === 0) return;
      n++;
      if (items[0].rel) p1++;
      ks.forEach((k, i) => {
        if (items.slice(0, k).some((it) => it.rel)) recall[i]++;
      });
      let hits = 0;
      let ap = 0;
      items.slice(0, r).forEach((it, pos) => {
        if (it.rel) {
          hits++;
          ap += hits / (pos + 1);
        }
      });
      rp += hits / r;
      map += ap / r;
    });
    return { n, p1: p1 / n, rp: rp / n, map: map / n, recall: recall.map((c) => c / n) };
  });
}

/** Violations counted triple by triple. */
export function consistencyOracle(sims: number[][], labels: number[][]) {
  const numLevels = labels[0].length;
  return Array.from({ length: numLevels - 1 }, (_, level) => {
    let wrong = 0;
    let total = 0;
    sims.forEach((row, i) => {
      row.forEach((sNear, p) => {
        if (p === i || !sharesPrefix(labels[i], labels[p], level + 1)) return;
        row.forEach((sFar, c) => {
          if (
            c === i ||
            !sharesPrefix(labels[i], labels[c], level) ||
            sharesPrefix(labels[i], labels[c], level + 1)
          )
            return;
          total++;
          if (sFar > sNear) wrong++;
        });
      });
    });
    return { wrong, total };
  });
}
