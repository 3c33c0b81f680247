/**
 * A short JSON-like rendering of any value for error messages, written without recursion and
 * cut at `max` characters: it cannot throw or overflow the stack, however deep or wide the value
 * (JSON.stringify and String() of a deeply nested array both overflow it).
 */
export function preview(value: unknown, max = 80): string {
  try {
    return render(value, max);
  } catch {
    return '(a value that cannot be shown)';
  }
}

type Item = { text: string } | { value: unknown };

function render(value: unknown, max: number): string {
  let out = '';
  const stack: Item[] = [{ value }];
  while (stack.length > 0 && out.length <= max) {
    const item = stack.pop()!;
    if ('text' in item) { out += item.text; continue; }
    const v = item.value;
    if (Array.isArray(v)) {
      // Only as many elements as could still be shown are looked at (each takes at least a character).
      const shown = Math.min(v.length, max - out.length + 1);
      stack.push({ text: ']' });
      for (let i = shown - 1; i >= 0; i--) {
        stack.push({ value: v[i] });
        if (i > 0) stack.push({ text: ',' });
      }
      stack.push({ text: '[' });
    } else if (v !== null && typeof v === 'object') {
      const keys: string[] = [];
      for (const k in v) {
        if (!Object.hasOwn(v, k)) continue;
        if (keys.length > max - out.length) break;
        keys.push(k);
      }
      stack.push({ text: '}' });
      for (let i = keys.length - 1; i >= 0; i--) {
        stack.push({ value: (v as Record<string, unknown>)[keys[i]!] });
        stack.push({ text: `${JSON.stringify(keys[i]!.slice(0, max))}:` });
        if (i > 0) stack.push({ text: ',' });
      }
      stack.push({ text: '{' });
    } else if (typeof v === 'string') {
      out += JSON.stringify(v.length > max ? v.slice(0, max) : v);
    } else if (typeof v === 'number' || typeof v === 'boolean' || v === null) {
      out += String(v);
    } else {
      out += typeof v === 'bigint' ? `${v}n` : `(${typeof v})`;
    }
  }
  return out.length > max ? `${out.slice(0, max - 3)}...` : out;
}
