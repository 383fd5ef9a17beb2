/**
 * How client commands print: `-o json` writes one JSON document (or one per line for a watch),
 * `-o table` aligned columns with an upper-case header. Pure formatting; the commands write.
 */

/** Columns separated by two spaces, each as wide as its widest cell; no trailing spaces. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd()
  return [line(header), ...rows.map(line)].join('\n') + '\n'
}

export function formatJson(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n'
}

export function print(text: string): void {
  process.stdout.write(text)
}
