/**
 * Check output, capped at the check's OutputMaxSize.
 *
 * Invariants:
 * - An OutputBuffer holds at most `bytesMax` bytes, whatever is written to it; bytes past the
 *   cap are counted (`bytesSeen`) and dropped, so a chatty script or a huge HTTP body costs no
 *   more memory than the cap.
 * - Text returned by capText/OutputBuffer.text() is at most `bytesMax` UTF-8 bytes and never ends
 *   in a partial character: the cut moves back to the last whole character. The start is kept
 *   (the status line, the first lines a script prints), the rest is dropped.
 */

export class OutputBuffer {
  readonly #bytesMax: number
  readonly #chunks: Buffer[] = []
  #bytesKept = 0
  #bytesSeen = 0

  constructor(bytesMax: number) {
    this.#bytesMax = bytesMax
  }

  /** Whether the cap is reached: later writes are only counted. */
  get full(): boolean {
    return this.#bytesKept >= this.#bytesMax
  }

  get bytesSeen(): number {
    return this.#bytesSeen
  }

  write(chunk: Buffer | string): void {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk
    this.#bytesSeen += bytes.length
    const room = this.#bytesMax - this.#bytesKept
    if (room <= 0) return
    const kept = bytes.length <= room ? bytes : bytes.subarray(0, room)
    this.#chunks.push(kept)
    this.#bytesKept += kept.length
  }

  text(): string {
    return decodeWhole(Buffer.concat(this.#chunks, this.#bytesKept))
  }
}

/** `text` cut to at most `bytesMax` UTF-8 bytes, on a character boundary. */
export function capText(text: string, bytesMax: number): string {
  if (text.length * 3 <= bytesMax) return text
  const bytes = Buffer.from(text, 'utf8')
  if (bytes.length <= bytesMax) return text
  return decodeWhole(bytes.subarray(0, bytesMax))
}

/** Decodes UTF-8, leaving out a character cut at the end. */
function decodeWhole(bytes: Buffer): string {
  let end = bytes.length
  // Step back over continuation bytes (10xxxxxx) to the lead byte of the last character.
  let lead = end - 1
  while (lead >= 0 && lead > end - 4 && ((bytes[lead] ?? 0) & 0xc0) === 0x80) lead--
  if (lead >= 0) {
    const first = bytes[lead] ?? 0
    const length = first >= 0xf0 ? 4 : first >= 0xe0 ? 3 : first >= 0xc0 ? 2 : 1
    if (lead + length > end) end = lead
  }
  return bytes.subarray(0, end).toString('utf8')
}
