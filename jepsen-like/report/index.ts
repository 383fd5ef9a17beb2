/**
 * A run's results folder: `history.jsonl` (the history, one entry per line; see ../history.ts),
 * `summary.json` (./summary.ts) and `report.html` (./html.ts, self-contained). The folder is
 * created if needed; existing files of those names are replaced.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { CheckResult } from '../checkers/checker.ts'
import { type Op, writeHistory } from '../history.ts'
import { renderReport } from './html.ts'
import { summarize } from './summary.ts'

export type { RunSummary } from './summary.ts'

export interface RunResults {
  history: readonly Op[]
  results: CheckResult[]
  meta: Record<string, unknown>
}

export async function writeResults(dir: string, run: RunResults): Promise<void> {
  await mkdir(dir, { recursive: true })
  await writeHistory(join(dir, 'history.jsonl'), run.history)
  const summary = summarize(run.history, run.results, run.meta)
  await writeFile(join(dir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`)
  await writeFile(join(dir, 'report.html'), renderReport(run.history, summary))
}
