/**
 * The one escaping rule for label paths written as text (the CLI's `--within`, JSON, CSV and
 * text output, label columns read back): segments are joined by the separator (default `/`),
 * and inside a segment a backslash escapes the separator and itself — `T-shirt/top` under
 * `Clothes/Tops` is written `Clothes/Tops/T-shirt\/top`. A backslash before anything else is an
 * ordinary character, so names without the separator read and write exactly as before.
 *
 * @example
 * ```ts
 * formatLabelPath(['Clothes', 'Tops', 'T-shirt/top']); // 'Clothes/Tops/T-shirt\\/top'
 * parseLabelPath('Clothes/Tops/T-shirt\\/top');          // ['Clothes', 'Tops', 'T-shirt/top']
 * ```
 */

/**
 * One segment with its separator and backslashes escaped (see the module's rule). With a
 * separator of several characters, a name that ends with the start of the separator (or starts
 * with its end) overlaps it and does not read back: pick a separator names cannot hold.
 */
export function escapeLabelSegment(segment: string, separator = '/'): string {
  let out = '';
  for (let i = 0; i < segment.length; ) {
    if (segment.startsWith(separator, i)) {
      out += `\\${separator}`;
      i += separator.length;
    } else if (
      segment[i] === '\\' &&
      (segment[i + 1] === '\\' || segment.startsWith(separator, i + 1) || i + 1 === segment.length)
    ) {
      // a backslash that would read as an escape (or end the segment) is doubled
      out += '\\\\';
      i++;
    } else {
      out += segment[i];
      i++;
    }
  }
  return out;
}

/** Segments (coarsest first) as one path text, each escaped: the inverse of {@link parseLabelPath}. */
export function formatLabelPath(segments: readonly string[], separator = '/'): string {
  return segments.map((s) => escapeLabelSegment(s, separator)).join(separator);
}

/**
 * A path text's segments: split at every separator not preceded by an escaping backslash, with
 * `\<separator>` read as the separator and `\\` as one backslash. Segments are returned as
 * written (not trimmed).
 */
export function parseLabelPath(text: string, separator = '/'): string[] {
  const segments: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; ) {
    if (text[i] === '\\' && text.startsWith(separator, i + 1)) {
      current += separator;
      i += 1 + separator.length;
    } else if (text[i] === '\\' && text[i + 1] === '\\') {
      current += '\\';
      i += 2;
    } else if (text.startsWith(separator, i)) {
      segments.push(current);
      current = '';
      i += separator.length;
    } else {
      current += text[i];
      i++;
    }
  }
  segments.push(current);
  return segments;
}
