/**
 * The results folder of a known-bad run (a stale read, hostile strings in values, keys, errors and
 * fault details): the three files exist, history.jsonl reads back, summary.json says invalid with
 * counts, faults and latencies, and report.html names the culprit operations, is self-contained and
 * lets no value open a <script> (or any other) tag.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { buildHistory, invokeIndexOf, type OpSpec } from '../checkers/history-builder.ts'
import { checkersFor } from '../checkers/index.ts'
import { readHistory } from '../history.ts'
import { escapeHtml, jsonForScript } from './html.ts'
import { writeResults } from './index.ts'
import { percentiles, type RunSummary } from './summary.ts'

const hostile = '</script><script>alert(1)</script><img src=x onerror=alert(2)>'
const key = '<script>k</script>'

const staleRead: OpSpec = { process: 2, f: 'read', key, call: 40, ret: 45, result: hostile }
const specs: OpSpec[] = [
  { process: 0, f: 'write', key, value: hostile, call: 0, ret: 10 },
  { process: 1, f: 'write', key, value: 'newer', call: 20, ret: 30 },
  staleRead,
  { process: 3, f: 'write', key, value: 'lost?', call: 41, ret: 60, type: 'info', error: hostile },
  { process: 0, f: 'read', key, call: 50, ret: 52, type: 'fail', error: 'refused' },
]
const faults = [
  { fault: { id: 1, kind: 'partition', detail: { halves: hostile } }, start: 15, stop: 35 },
  { fault: { id: 2, kind: '<b>kill</b>', detail: {} }, start: 38 },
]

const dirs: string[] = []
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
})

describe('results folder', () => {
  it('writes history, summary and a safe report pointing at the stale read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cairn-report-'))
    dirs.push(dir)
    const history = buildHistory(specs, faults)
    const results = checkersFor('register').map((checker) => checker.check(history, { timeBudgetMs: 10_000 }))
    await writeResults(dir, { history, results, meta: { seed: 7, note: hostile } })

    expect(await readHistory(join(dir, 'history.jsonl'))).toEqual(history)

    const summary = JSON.parse(await readFile(join(dir, 'summary.json'), 'utf8')) as RunSummary
    expect(summary.verdict).toBe('invalid')
    expect(summary.checkers[0]).toMatchObject({ checker: 'register', verdict: 'invalid' })
    expect(summary.ops.invocations).toBe(5)
    expect(summary.ops.byF['read']).toEqual({ invoke: 2, ok: 1, fail: 1 })
    expect(summary.ops.byF['write']).toEqual({ invoke: 3, ok: 2, info: 1 })
    expect(summary.faults).toEqual({ windows: 2, byKind: { partition: 1, '<b>kill</b>': 1 } })
    expect(summary.latencyMs['write']).toEqual({ count: 2, p50: 10, p90: 10, p99: 10, max: 10 })

    const html = await readFile(join(dir, 'report.html'), 'utf8')
    const culpritIndex = invokeIndexOf(history, staleRead)
    expect(summary.checkers[0]?.culprit?.opIndexes[0]).toBe(culpritIndex)
    expect(html).toContain(`id="op-${culpritIndex}"`)
    expect(html).toContain(`#${culpritIndex} process 2 read`)
    const ownTags = ['<script type="application/json" id="timeline-data">', '<script>(() => {']
    let rest = html
    for (const tag of ownTags) {
      expect(rest).toContain(tag)
      rest = rest.replace(tag, '')
    }
    expect(rest.toLowerCase()).not.toContain('<script')
    expect(html).not.toContain('<img')
    expect(html).not.toContain('<b>kill')
    expect(html).not.toMatch(/<(link|iframe)\b|src="http|href="http/i)
  })

  it('writes a valid run too, with no culprit section', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cairn-report-'))
    dirs.push(dir)
    const history = buildHistory(specs.slice(0, 2))
    const results = checkersFor('register').map((checker) => checker.check(history, { timeBudgetMs: 10_000 }))
    await writeResults(dir, { history, results, meta: {} })
    const summary = JSON.parse(await readFile(join(dir, 'summary.json'), 'utf8')) as RunSummary
    expect(summary.verdict).toBe('valid')
    const html = await readFile(join(dir, 'report.html'), 'utf8')
    expect(html).not.toContain('class="culprit"')
    expect(html).toContain('"culprit":null')
  })
})

/** Just enough DOM for timeline-script.ts: elements with attributes, children and listeners. */
class FakeElement {
  readonly attributes = new Map<string, string>()
  readonly children: FakeElement[] = []
  readonly listeners = new Map<string, () => void>()
  textContent = ''
  clientWidth = 1000
  scrollLeft = 0
  constructor(readonly name: string) {}
  setAttribute(name: string, value: string): void {
    this.attributes.set(name, value)
  }
  appendChild(child: FakeElement): FakeElement {
    this.children.push(child)
    return child
  }
  get firstChild(): FakeElement | null {
    return this.children[0] ?? null
  }
  removeChild(child: FakeElement): void {
    this.children.splice(this.children.indexOf(child), 1)
  }
  addEventListener(type: string, listener: () => void): void {
    this.listeners.set(type, listener)
  }
}

describe('timeline script', () => {
  it('draws one bar per operation, the faults, and outlines the culprit ops inside the culprit window', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cairn-report-'))
    dirs.push(dir)
    const history = buildHistory(specs, faults)
    const results = checkersFor('register').map((checker) => checker.check(history, { timeBudgetMs: 10_000 }))
    await writeResults(dir, { history, results, meta: {} })
    const html = await readFile(join(dir, 'report.html'), 'utf8')
    const json = /<script type="application\/json" id="timeline-data">(.*?)<\/script>/s.exec(html)?.[1]
    const script = /<script>(\(\(\) => \{.*)<\/script>/s.exec(html)?.[1]
    expect(json).toBeDefined()
    expect(script).toBeDefined()
    const elements = new Map<string, FakeElement>()
    for (const id of ['timeline-scroll', 'timeline', 'zoom-in', 'zoom-out', 'zoom-fit', 'zoom-culprit']) {
      elements.set(id, new FakeElement(id))
    }
    elements.set('timeline-data', Object.assign(new FakeElement('script'), { textContent: json! }))
    const document = {
      getElementById: (id: string) => elements.get(id) ?? null,
      createElementNS: (_ns: string, name: string) => new FakeElement(name),
    }
    const window = { addEventListener: () => {} }
    new Function('document', 'window', script!)(document, window)
    const svg = elements.get('timeline')!
    const bars = svg.children.filter((child) => child.attributes.has('data-op'))
    expect(bars).toHaveLength(5)
    const outlined = bars.filter((bar) => bar.attributes.get('stroke') === '#000')
    expect(outlined.map((bar) => Number(bar.attributes.get('data-op')))).toEqual(
      expect.arrayContaining([invokeIndexOf(history, staleRead)]),
    )
    expect(svg.children.some((child) => child.attributes.get('id') === 'culprit-window')).toBe(true)
    const labels = svg.children.filter((child) => child.name === 'text').map((child) => child.textContent)
    expect(labels).toEqual(expect.arrayContaining(['partition', '<b>kill</b>']))
    expect(elements.get('timeline-scroll')!.scrollLeft).toBeGreaterThan(0)
    elements.get('zoom-fit')!.listeners.get('click')!()
    expect(svg.children.filter((child) => child.attributes.has('data-op'))).toHaveLength(5)
  })
})

describe('report helpers', () => {
  it('escapeHtml leaves no markup characters', () => {
    expect(escapeHtml(`<a href="x" onclick='y'>&</a>`)).not.toMatch(/[<>"']/)
  })

  it('jsonForScript round-trips and contains no <', () => {
    const value = { a: hostile, b: '\u2028' }
    const text = jsonForScript(value)
    expect(text).not.toContain('<')
    expect(JSON.parse(text)).toEqual(value)
  })

  it('percentiles are nearest-rank', () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i)
    expect(percentiles(values)).toEqual({ count: 100, p50: 50, p90: 90, p99: 99, max: 100 })
    expect(percentiles([])).toEqual({ count: 0, p50: 0, p90: 0, p99: 0, max: 0 })
  })
})
