/**
 * Reading the extracting model's answer (docs/oel-method.md, step 2): ONLY lines that start with
 * the fixed marker "- EXPERIENCE ITEM: " are kept. Everything else the model writes (reasoning,
 * headings, unmarked bullets) is ignored.
 */
import { ITEM_MARKER } from '../projections/knowledge/knowledge-base.ts';

/** The schema's limit on one item's text (KnowledgeExtractedV1); longer items are dropped. */
export const MAX_ITEM_CHARS = 100_000;

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The marker at the start of a line (after optional whitespace); the space after the colon is optional. */
const MARKED_LINE = new RegExp(`^\\s*${escapeRegExp(ITEM_MARKER.trimEnd())}(.*)$`);

// Chat-template end markers a sampled answer may end with: <|im_end|>, <|endoftext|>, </s>, <eos>.
const TRAILING_SPECIAL = /\s*(?:<\|[^|<>\s]{1,40}\|>|<\/s>|<eos>)\s*$/i;
const QUOTE_PAIRS: ReadonlyArray<readonly [string, string]> = [
  ['"', '"'], ["'", "'"], ['`', '`'], ['\u201c', '\u201d'], ['\u2018', '\u2019'], ['\u00ab', '\u00bb'],
  ['**', '**'], ['__', '__'],
];
const QUOTES = ['"', '`', '\u201c', '\u201d'];
// Control characters (U+0000 cannot be stored in jsonb) become spaces.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g;

const count = (s: string, ch: string): number => s.split(ch).length - 1;

/** Trims an item's text and strips what wraps it: surrounding quotes or emphasis, end-of-turn tokens. */
export function cleanItemText(raw: string): string {
  let s = raw.toWellFormed().replace(CONTROL, ' ').replace(/\s+/g, ' ').trim();
  for (let changed = true; changed;) {
    changed = false;
    const before = s;
    s = s.replace(TRAILING_SPECIAL, '').trim();
    for (const [open, close] of QUOTE_PAIRS) {
      if (s.length < open.length + close.length || !s.startsWith(open) || !s.endsWith(close)) continue;
      const inner = s.slice(open.length, s.length - close.length);
      // Only a pair that wraps the whole item: '"a" and "b"' keeps its quotes.
      if (inner.includes(open) || inner.includes(close)) continue;
      s = inner.trim();
      break;
    }
    // A lone, unmatched quote at either end (e.g. 'Holes end the game."').
    for (const q of QUOTES) {
      if (s.endsWith(q) && count(s, q) === 1) s = s.slice(0, -q.length).trim();
      if (s.startsWith(q) && count(s, q) === 1) s = s.slice(q.length).trim();
    }
    changed = s !== before;
  }
  return s;
}

/** The key two items are compared by: case-insensitive, whitespace runs collapsed. */
export const itemKey = (text: string): string => text.normalize('NFC').toLowerCase().replace(/\s+/g, ' ').trim();

export interface ParseOptions {
  /** Keep at most this many items (the first ones); default: all. */
  maxItems?: number;
}

/**
 * The experience items in a model's answer: the text after the marker on each marked line,
 * cleaned, without empty items (or items with no letter or digit) and without exact repeats
 * (compared case- and whitespace-insensitively; the first spelling wins). Every item is one line.
 */
export function parseExperienceItems(modelOutput: string, options: ParseOptions = {}): string[] {
  const maxItems = options.maxItems ?? Number.POSITIVE_INFINITY;
  const items: string[] = [];
  const seen = new Set<string>();
  for (const line of modelOutput.split(/\r\n|\r|\n|\u2028|\u2029/)) {
    if (items.length >= maxItems) break;
    const m = MARKED_LINE.exec(line);
    if (!m) continue;
    const text = cleanItemText(m[1]!);
    if (text.length === 0 || text.length > MAX_ITEM_CHARS || !/[\p{L}\p{N}]/u.test(text)) continue;
    const key = itemKey(text);
    if (seen.has(key)) continue;
    seen.add(key);
    items.push(text);
  }
  return items;
}
