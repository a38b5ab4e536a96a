// format.ts: a policy file as people read it: JSON indented by 2, with every array or object that
// fits in 100 columns on one line (short lists, one mount per line); long lists of names wrap.
const WIDTH = 100;

export function formatPolicyFile(doc: unknown): string {
  return `${format(doc, '', 0)}\n`;
}

/** One line: JSON with a space after each comma and colon (outside strings). */
function inline(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(inline).join(', ')}]`;
  const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
  return `{${entries.map(([k, x]) => `${JSON.stringify(k)}: ${inline(x)}`).join(', ')}}`;
}

/** `used`: columns already taken on the line where the value starts. */
function format(v: unknown, indent: string, used: number): string {
  const flat = inline(v);
  if (v === null || typeof v !== 'object' || used + flat.length + 1 <= WIDTH) return flat;
  const inner = `${indent}  `;
  if (Array.isArray(v)) {
    if (v.every((x) => x === null || typeof x !== 'object')) {
      const lines: string[] = [];
      let line = '';
      for (const x of v.map((x) => JSON.stringify(x))) {
        if (line && inner.length + line.length + 2 + x.length + 1 > WIDTH) {
          lines.push(line);
          line = '';
        }
        line += (line ? ', ' : '') + x;
      }
      if (line) lines.push(line);
      return `[\n${lines.map((l, i) => inner + l + (i < lines.length - 1 ? ',' : '')).join('\n')}\n${indent}]`;
    }
    return `[\n${v.map((x) => inner + format(x, inner, inner.length)).join(',\n')}\n${indent}]`;
  }
  const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
  return `{\n${entries
    .map(([k, x]) => {
      const head = `${inner}${JSON.stringify(k)}: `;
      return head + format(x, inner, head.length);
    })
    .join(',\n')}\n${indent}}`;
}
