/**
 * A run's results folder: history.jsonl (the history, one op per line), summary.json (verdicts)
 * and report.html. First version: report.html is a placeholder page.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { CheckResult } from '../checkers/checker.ts'
import { overallVerdict } from '../checkers/index.ts'
import { type Op, writeHistory } from '../history.ts'

export interface RunResults {
  history: readonly Op[]
  results: CheckResult[]
  meta: Record<string, unknown>
}

export async function writeResults(dir: string, run: RunResults): Promise<void> {
  await mkdir(dir, { recursive: true })
  await writeHistory(join(dir, 'history.jsonl'), run.history)
  const summary = {
    verdict: overallVerdict(run.results),
    meta: run.meta,
    checkers: run.results.map(({ checker, verdict, summary }) => ({ checker, verdict, summary })),
  }
  await writeFile(join(dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n')
  await writeFile(
    join(dir, 'report.html'),
    '<!doctype html><title>cairn jepsen-like</title><p>report pending</p>\n',
  )
}
