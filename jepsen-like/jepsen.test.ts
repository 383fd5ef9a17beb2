/**
 * The short jepsen-like run inside `npm test`: 3 real members on random ports, partitions and
 * kills for 30 s, the register workload, then heal, final reads and the linearizability check.
 * It must come out `valid`, with a results folder holding the history, the summary and the report,
 * and no member process left running. The seed is fixed (JEPSEN_SEED overrides it); a failure
 * prints the folder and the command that replays the run.
 *
 * And the harness can fail: with the agents' planted bug stale-quorum-reads (quorum reads served
 * locally) a run with partitions must come out `invalid`, its culprit an ok read of a stale value,
 * named in the report.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { liveProcessCount } from './cluster-processes.ts'
import { pairOps, readHistory } from './history.ts'
import { runDefaults, runJepsen } from './run.ts'

const seed = Number(process.env.JEPSEN_SEED ?? 20_261_125)

describe('jepsen-like', () => {
  it('a short run with partitions and kills on 3 members is valid', { timeout: 300_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), 'cairn-jepsen-test-'))
    const command = `npm run jepsen -- --nodes 3 --time 30 --workload register --nemesis partition,kill --seed ${seed}`
    const result = await runJepsen({
      ...runDefaults,
      nodes: 3,
      timeS: 30,
      workload: 'register',
      nemeses: ['partition', 'kill'],
      seed,
      out,
      command,
    })
    const explain = `results in ${result.dir}; replay: ${command}\n${JSON.stringify(result.results, null, 2)}`
    expect(liveProcessCount()).toBe(0)
    expect(result.verdict, explain).toBe('valid')
    expect(result.results.map((r) => r.checker)).toContain('register')
    expect(
      Object.values(result.meta.faults as Record<string, number>).reduce((a, b) => a + b, 0),
    ).toBeGreaterThan(0)
    for (const file of ['history.jsonl', 'summary.json', 'report.html'])
      expect(existsSync(join(out, file))).toBe(true)
    rmSync(out, { recursive: true, force: true })
  })

  it('the planted bug stale-quorum-reads makes a run invalid, and the culprit is the stale read', {
    timeout: 400_000,
  }, async () => {
    // Members serve quorum=true reads locally, so one cut off by a partition answers with an old
    // value. A stale read is seen only when a client reads from the cut-off member after a newer
    // write was acknowledged (clients move to another member after a timeout), so a run may miss
    // it, the more so on a loaded machine (one CI run missed it with three seeds while the
    // same seeds alone caught it): up to six seeds are tried, and the first invalid run must point at a read.
    const seeds =
      process.env.JEPSEN_BUG_SEED !== undefined
        ? [Number(process.env.JEPSEN_BUG_SEED)]
        : [1, 3, 7, 11, 13, 17]
    const tried: string[] = []
    for (const bugSeed of seeds) {
      const out = mkdtempSync(join(tmpdir(), 'cairn-jepsen-bug-test-'))
      const command = `npm run jepsen -- --nodes 3 --time 30 --workload register --nemesis partition --seed ${bugSeed} --fault-seconds 2-4 --quiet-seconds 1-2 --bug stale-quorum-reads`
      const result = await runJepsen({
        ...runDefaults,
        nodes: 3,
        timeS: 30,
        workload: 'register',
        nemeses: ['partition'],
        faultMs: [2_000, 4_000],
        quietMs: [1_000, 2_000],
        seed: bugSeed,
        bug: 'stale-quorum-reads',
        out,
        command,
      })
      expect(liveProcessCount()).toBe(0)
      tried.push(`${command}: ${result.verdict}`)
      if (result.verdict === 'valid') {
        rmSync(out, { recursive: true, force: true })
        continue
      }
      const explain = `results in ${result.dir}; replay: ${command}\n${JSON.stringify(result.results, null, 2)}`
      expect(result.verdict, explain).toBe('invalid')
      const register = result.results.find((r) => r.checker === 'register')
      expect(register?.verdict, explain).toBe('invalid')
      const history = await readHistory(join(out, 'history.jsonl'))
      const culprit = register?.culprit?.opIndexes ?? []
      expect(culprit.length, explain).toBeGreaterThan(0)
      // The first culprit op (named by its invocation) is a read that no order of the writes explains.
      const read = pairOps(history).find((pair) => pair.invoke.index === culprit[0])
      expect(read?.invoke.f, explain).toBe('read')
      expect(read?.complete?.type, explain).toBe('ok')
      const html = readFileSync(join(out, 'report.html'), 'utf8')
      expect(html).toContain(String(culprit[0]))
      rmSync(out, { recursive: true, force: true })
      return
    }
    expect.fail(`no run caught the planted stale reads:\n${tried.join('\n')}`)
  })
})
