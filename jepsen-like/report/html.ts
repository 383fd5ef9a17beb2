/**
 * report.html: one self-contained page (no external scripts, styles or fonts). Server-rendered
 * text: the verdicts, for each invalid checker its culprit operations and window, the faults.
 * Client-drawn (timeline-script.ts): one lane per client over time, each operation a bar from
 * invocation to completion coloured by outcome, fault windows shaded and labelled, the culprit
 * window highlighted and scrolled to.
 *
 * Safety: every string from the history or the results (user data) is escaped with `escapeHtml`
 * in markup, and the embedded JSON has every `<` written as \u003c, so no value can open or close a
 * tag. Operation labels are cut to `labelCharsMax` characters to keep the page small.
 */
import type { CheckResult } from '../checkers/checker.ts'
import { faultWindows, type Op, type PairedOp, pairOps } from '../history.ts'
import type { RunSummary } from './summary.ts'
import { timelineScript } from './timeline-script.ts'

export const labelCharsMax = 200

/** What the timeline script draws. Times in ms; null: never ended. */
export interface TimelineData {
  end: number
  lanes: string[]
  /** [lane, invokeIndex, completeIndex or -1, start, end or null, ok|fail|info|open, label] */
  ops: [number, number, number, number, number | null, string, string][]
  faults: { kind: string; start: number; end: number | null; label: string }[]
  culprit: { opIndexes: number[]; window: { start: number; end: number | null } } | null
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** JSON safe inside a <script> element: no `<` (so no `</script>` or `<!--`), no line separators. */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029')
}

function cut(text: string): string {
  return text.length <= labelCharsMax ? text : `${text.slice(0, labelCharsMax - 1)}…`
}

function finite(time: number): number | null {
  return Number.isFinite(time) ? time : null
}

function ms(time: number): string {
  return Number.isFinite(time) ? `${time.toFixed(1)} ms` : 'never'
}

/** "#12 process 3 write x "v1" → ok [10.0 ms – 12.5 ms] on n2" */
export function describeOp({ invoke, complete }: PairedOp): string {
  const key = invoke.key === undefined ? '' : ` ${invoke.key}`
  const type = complete?.type ?? 'open'
  const result =
    complete === undefined || complete.value === invoke.value ? '' : ` ${JSON.stringify(complete.value)}`
  const error = complete?.error === undefined ? '' : ` (${complete.error})`
  const node = invoke.node === undefined ? '' : ` on ${invoke.node}`
  const span = `[${ms(invoke.time)} – ${ms(complete?.time ?? Number.POSITIVE_INFINITY)}]`
  return `#${invoke.index} process ${invoke.process} ${invoke.f}${key} ${JSON.stringify(invoke.value)} → ${type}${result}${error} ${span}${node}`
}

export function timelineData(history: readonly Op[], culprit: CheckResult['culprit']): TimelineData {
  const pairs = pairOps(history)
  const processes = [...new Set(pairs.map((pair) => pair.invoke.process))].sort((a, b) => a - b)
  const laneOf = new Map(processes.map((process, lane) => [process, lane]))
  const end = history.at(-1)?.time ?? 0
  const ops: TimelineData['ops'] = pairs.map((pair) => [
    laneOf.get(pair.invoke.process)!,
    pair.invoke.index,
    pair.complete?.index ?? -1,
    pair.invoke.time,
    pair.complete?.time ?? null,
    pair.complete?.type ?? 'open',
    cut(describeOp(pair)),
  ])
  const faults = faultWindows(history).map(({ fault, start, end }) => ({
    kind: fault.kind,
    start,
    end: finite(end),
    label: cut(`${fault.kind} #${fault.id} ${JSON.stringify(fault.detail)} [${ms(start)} – ${ms(end)}]`),
  }))
  const shown =
    culprit === undefined
      ? null
      : {
          opIndexes: culprit.opIndexes,
          window: { start: culprit.window.start, end: finite(culprit.window.end) },
        }
  return { end, lanes: processes.map((process) => `process ${process}`), ops, faults, culprit: shown }
}

export function renderReport(history: readonly Op[], summary: RunSummary): string {
  const firstCulprit = summary.checkers.find(
    (result) => result.verdict === 'invalid' && result.culprit,
  )?.culprit
  const data = timelineData(history, firstCulprit)
  const culpritButton = firstCulprit === undefined ? '' : '<button id="zoom-culprit">culprit</button>'
  const lanes = data.lanes.map((lane) => `<div class="lane">${escapeHtml(lane)}</div>`).join('')
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>cairn jepsen-like: ${escapeHtml(summary.verdict)}</title>
<style>${style}</style></head><body>
<h1>cairn jepsen-like run: <span class="v-${escapeHtml(summary.verdict)}">${escapeHtml(summary.verdict)}</span></h1>
${renderCulprits(history, summary.checkers)}
${renderVerdicts(summary.checkers)}
<h2>Timeline</h2>
<p class="legend"><span class="k ok"></span>ok <span class="k fail"></span>fail <span class="k info"></span>info <span class="k open"></span>never completed <span class="k fault"></span>fault <span class="k culprit"></span>culprit window · hover a bar for the operation ·
<button id="zoom-in">zoom in</button><button id="zoom-out">zoom out</button><button id="zoom-fit">fit</button>${culpritButton}</p>
<div class="timeline"><div class="lanes">${lanes}</div><div id="timeline-scroll"><svg id="timeline" xmlns="http://www.w3.org/2000/svg"></svg></div></div>
${renderFaults(history)}
${renderCounts(summary)}
<h2>Run</h2><pre>${escapeHtml(JSON.stringify(summary.meta, null, 2))}</pre>
<script type="application/json" id="timeline-data">${jsonForScript(data)}</script>
<script>${timelineScript}</script>
</body></html>
`
}

function renderCulprits(history: readonly Op[], results: readonly CheckResult[]): string {
  const byIndex = new Map<number, PairedOp>()
  for (const pair of pairOps(history)) {
    byIndex.set(pair.invoke.index, pair)
    if (pair.complete !== undefined) byIndex.set(pair.complete.index, pair)
  }
  const sections = results
    .filter((result) => result.verdict === 'invalid' && result.culprit !== undefined)
    .map((result) => {
      const { opIndexes, window } = result.culprit!
      const items = opIndexes.map((index) => {
        const pair = byIndex.get(index)
        return `<li id="op-${index}">${escapeHtml(pair === undefined ? `#${index}` : describeOp(pair))}</li>`
      })
      return `<section class="culprit"><h2>${escapeHtml(result.checker)}: invalid</h2>
<p>${escapeHtml(result.summary)}</p>
<p>Window: ${escapeHtml(ms(window.start))} – ${escapeHtml(ms(window.end))}. Operations:</p><ol>${items.join('')}</ol></section>`
    })
  return sections.join('\n')
}

function renderVerdicts(results: readonly CheckResult[]): string {
  const rows = results.map(
    (result) =>
      `<tr><td>${escapeHtml(result.checker)}</td><td class="v-${escapeHtml(result.verdict)}">${escapeHtml(result.verdict)}</td><td>${escapeHtml(result.summary)}</td></tr>`,
  )
  return `<h2>Checkers</h2><table><tr><th>checker</th><th>verdict</th><th>summary</th></tr>${rows.join('')}</table>`
}

function renderFaults(history: readonly Op[]): string {
  const rows = faultWindows(history).map(
    ({ fault, start, end }) =>
      `<tr><td>${escapeHtml(String(fault.id))}</td><td>${escapeHtml(fault.kind)}</td><td>${escapeHtml(ms(start))}</td><td>${escapeHtml(ms(end))}</td><td>${escapeHtml(cut(JSON.stringify(fault.detail)))}</td></tr>`,
  )
  if (rows.length === 0) return '<h2>Faults</h2><p>none</p>'
  return `<h2>Faults</h2><table><tr><th>id</th><th>kind</th><th>start</th><th>end</th><th>detail</th></tr>${rows.join('')}</table>`
}

function renderCounts(summary: RunSummary): string {
  const rows = Object.entries(summary.ops.byF).map(([f, counts]) => {
    const latency = summary.latencyMs[f]
    const cells = ['invoke', 'ok', 'fail', 'info', 'open']
      .map((type) => `<td>${counts[type] ?? 0}</td>`)
      .join('')
    const timing =
      latency === undefined
        ? '<td colspan="4">–</td>'
        : [latency.p50, latency.p90, latency.p99, latency.max]
            .map((value) => `<td>${value.toFixed(1)}</td>`)
            .join('')
    return `<tr><td>${escapeHtml(f)}</td>${cells}${timing}</tr>`
  })
  return `<h2>Operations</h2><table><tr><th>f</th><th>invoke</th><th>ok</th><th>fail</th><th>info</th><th>open</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>max ms</th></tr>${rows.join('')}</table>`
}

const style = `
body{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#222}
table{border-collapse:collapse;margin:4px 0 12px}td,th{border:1px solid #ddd;padding:2px 8px;text-align:left;vertical-align:top}
.v-valid{color:#2a7d45;font-weight:600}.v-invalid{color:#c0322a;font-weight:600}.v-unknown{color:#b07800;font-weight:600}
.culprit{border:2px solid #d00;background:#fff5f5;padding:4px 12px;margin:8px 0}
.timeline{display:flex;border:1px solid #ddd}.lanes{padding-top:34px;min-width:90px;font-size:11px;border-right:1px solid #ddd}
.lane{height:18px;line-height:18px;padding:0 6px;white-space:nowrap}#timeline-scroll{overflow-x:auto;flex:1}
.k{display:inline-block;width:12px;height:10px;margin:0 3px 0 10px}.k.ok{background:#3a9d5d}.k.fail{background:#d0463b}
.k.info{background:#e6a23c}.k.open{background:#9a9a9a}.k.fault{background:rgba(90,110,200,.3)}.k.culprit{border:2px solid #d00}
button{margin-left:6px}pre{background:#f6f6f6;padding:8px;overflow:auto}
`
