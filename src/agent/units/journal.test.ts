/**
 * Proves the journal's bounds and format: output cut into lines of at most lineBytesMax on UTF-8
 * boundaries, rotation at fileBytesMax keeping filesKept old files, tail across rotated files read
 * backwards, follow for new lines only, pending bytes bounded with drops counted.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { FileJournals, LineSplitter, readLastLines } from './journal.ts'
import { runnerLimits } from './limits.ts'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cairn-journal-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

function split(chunks: string[], max: number): string[] {
  const lines: string[] = []
  const splitter = new LineSplitter(max, (t) => lines.push(t))
  for (const c of chunks) splitter.push(Buffer.from(c))
  splitter.end()
  return lines
}

describe('LineSplitter', () => {
  it.each([
    ['lines across chunks', ['ab', 'c\nd', 'e\n'], 8, ['abc', 'de']],
    ['a last line without newline', ['a\nb'], 8, ['a', 'b']],
    ['CRLF', ['a\r\nb\r\n'], 8, ['a', 'b']],
    ['long lines are cut', ['abcdefghij\n'], 4, ['abcd', 'efgh', 'ij']],
    ['a partial line past the limit is cut before its newline', ['abcdef', 'gh'], 4, ['abcd', 'efgh']],
    ['cuts never split a character', ['ééé\n'], 3, ['é', 'é', 'é']],
  ])('%s', (_what, chunks, max, lines) => {
    expect(split(chunks, max)).toEqual(lines)
  })
})

describe('FileJournals', () => {
  const limits = { ...runnerLimits, journalFileBytesMax: 600, journalFilesKept: 2, journalReadChunkBytes: 64 }

  it('rotates at fileBytesMax, keeps filesKept old files, and tails across them in order', async () => {
    const journals = new FileJournals(dir, limits)
    const journal = journals.journal('web.service')
    for (let i = 0; i < 40; i++) journal.append({ ts: i, stream: 'stdout', text: `line ${i}` })
    await journal.flushed()
    const files = (await readdir(join(dir, 'web.service'))).sort()
    expect(files).toEqual(['journal', 'journal.1', 'journal.2'])
    const tail = await journals.tail('web.service', 5)
    expect(tail?.map((l) => l.text)).toEqual(['line 35', 'line 36', 'line 37', 'line 38', 'line 39'])
    const all = await journals.tail('web.service', 1000)
    // The oldest lines were rotated out; what is left is contiguous and ends with the last line.
    const numbers = all?.map((l) => Number(l.text.slice(5))) ?? []
    expect(numbers.at(-1)).toBe(39)
    expect(numbers).toEqual(numbers.map((_, i) => (numbers[0] ?? 0) + i))
    expect(numbers.length).toBeLessThan(40)
  })

  it('a unit without a journal has none; follow streams only new lines until aborted', async () => {
    const journals = new FileJournals(dir, limits)
    expect(await journals.tail('none.service', 5)).toBeUndefined()
    expect(journals.follow('none.service', () => {}, new AbortController().signal)).toBe(false)
    expect(await journals.tail('../etc', 5)).toBeUndefined()
    const journal = journals.journal('web.service')
    journal.append({ ts: 1, stream: 'stdout', text: 'before' })
    const seen: string[] = []
    const controller = new AbortController()
    expect(journals.follow('web.service', (l) => seen.push(l.text), controller.signal)).toBe(true)
    journal.append({ ts: 2, stream: 'stderr', text: 'after' })
    controller.abort()
    journal.append({ ts: 3, stream: 'cairn', text: 'aborted' })
    expect(seen).toEqual(['after'])
  })

  it('bounds bytes waiting for the disk and says how many lines were dropped', async () => {
    const journals = new FileJournals(dir, {
      ...limits,
      journalFileBytesMax: 1 << 20,
      journalPendingBytesMax: 200,
    })
    const journal = journals.journal('web.service')
    for (let i = 0; i < 10; i++) journal.append({ ts: i, stream: 'stdout', text: `line ${i}` })
    await journal.flushed()
    const texts = (await journals.tail('web.service', 100))?.map((l) => l.text) ?? []
    expect(texts.length).toBeLessThan(10)
    expect(texts.at(-1)).toMatch(/^\d+ lines dropped \(journalPendingBytesMax\)$/)
  })

  it('readLastLines reads a file backwards in small chunks', async () => {
    const journals = new FileJournals(dir, { ...limits, journalFileBytesMax: 1 << 20 })
    const journal = journals.journal('a.service')
    for (let i = 0; i < 100; i++) journal.append({ ts: i, stream: 'stdout', text: 'x'.repeat(i) })
    await journal.flushed()
    const lines = await readLastLines(join(dir, 'a.service', 'journal'), 3, 7)
    expect(lines.map((l) => (JSON.parse(l) as { text: string }).text.length)).toEqual([97, 98, 99])
  })
})
