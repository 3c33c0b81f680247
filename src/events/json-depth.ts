/**
 * How deeply a JSON text nests arrays and objects, found by one pass over its bytes without
 * recursion, so that input nested past what any reader of the event can walk (JSON.stringify,
 * the validator, canonical JSON: all recursive) is refused before it is parsed.
 */

const QUOTE = 0x22, BACKSLASH = 0x5c, OPEN_BRACKET = 0x5b, CLOSE_BRACKET = 0x5d, OPEN_BRACE = 0x7b, CLOSE_BRACE = 0x7d;

/**
 * The deepest nesting of `bytes` (UTF-8 JSON), or the first depth past `limit` (the scan stops
 * there). Brackets inside strings do not count; the bytes need not be valid JSON (the parser
 * judges that afterwards). UTF-8 continuation bytes are all >= 0x80, so no multi-byte character
 * can be mistaken for a quote or a bracket.
 */
export function jsonNestingDepth(bytes: Uint8Array, limit: number): number {
  let depth = 0, deepest = 0, inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) {
      inString = true;
    } else if (b === OPEN_BRACKET || b === OPEN_BRACE) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (b === CLOSE_BRACKET || b === CLOSE_BRACE) {
      if (depth > 0) depth--;
    }
  }
  return deepest;
}
