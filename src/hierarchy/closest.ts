/**
 * Edit distance (Levenshtein, case-insensitive) between two names; used only to suggest the
 * closest known labels in error messages, so it favours clarity over speed.
 */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  let previous = Array.from({ length: t.length + 1 }, (_, j) => j);
  for (let i = 1; i <= s.length; i++) {
    const current = [i];
    for (let j = 1; j <= t.length; j++) {
      const substitution = previous[j - 1] + (s[i - 1] === t[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j] + 1, current[j - 1] + 1, substitution));
    }
    previous = current;
  }
  return previous[t.length];
}

/**
 * Up to `limit` candidates whose name is close to `name` (edit distance at most a third of the
 * longer name, and at least 1 allowed), closest first, ties in the candidates' order. Names that
 * contain one another (`Shirt` / `T-shirt`) also count as close.
 */
export function closestNames<T extends { name: string }>(
  name: string,
  candidates: readonly T[],
  limit: number,
): T[] {
  const lower = name.toLowerCase();
  return candidates
    .map((candidate, order) => {
      const other = candidate.name.toLowerCase();
      const distance = editDistance(lower, other);
      const contains =
        lower.length >= 3 && other.length >= 3 && (other.includes(lower) || lower.includes(other));
      const close = distance <= Math.max(1, Math.floor(Math.max(lower.length, other.length) / 3)) || contains;
      return { candidate, distance, order, close };
    })
    .filter((c) => c.close)
    .sort((a, b) => a.distance - b.distance || a.order - b.order)
    .slice(0, limit)
    .map((c) => c.candidate);
}

/** The known name closest to `name`, if one is close enough to be a typo of it. */
export function closestName(name: string, known: readonly string[]): string | undefined {
  return closestNames(
    name,
    known.map((k) => ({ name: k })),
    1,
  )[0]?.name;
}
