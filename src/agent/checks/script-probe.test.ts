/**
 * Proves the script check with real child processes: exit 0 passing, 1 warning, other codes and
 * signals critical, output (stdout and stderr) capped at OutputMaxSize, a script running past
 * Timeout killed with its process group, stop() killing a running script so that no pid of it is
 * left, a missing program critical, and script checks refused unless enabled.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { isCairnError } from '../../errors.ts'
import { parseCheckDefinition } from './definition.ts'
import { eventually, isAlive, startRunner } from './test-helpers.ts'

const dir = mkdtempSync(join(tmpdir(), 'cairn-script-check-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const sh = (script: string) => ['/bin/sh', '-c', script]

/** Pids written by a script as "shell-pid child-pid", once the file is complete. */
function readPids(file: string): number[] | undefined {
  try {
    const text = readFileSync(file, 'utf8')
    if (!text.endsWith('\n')) return undefined
    return text.trim().split(' ').map(Number)
  } catch {
    return undefined
  }
}

describe('script checks with real processes', () => {
  it.each([
    ['exit 0', 'passing'],
    ['exit 1', 'warning'],
    ['exit 2', 'critical'],
    ['exit 255', 'critical'],
  ])('%s is %s', async (script, status) => {
    const { runner, recorder } = startRunner({
      Name: 's',
      Args: sh(`echo out; echo err >&2; ${script}`),
      Interval: '10s',
      Status: status === 'critical' ? 'passing' : 'critical',
    })
    const change = await recorder.next()
    expect(change.status).toBe(status)
    expect(change.output.split('\n').sort()).toEqual(['', 'err', 'out'])
    await runner.stop()
  })

  it('a script killed by a signal is critical', async () => {
    const { runner, recorder } = startRunner({
      Name: 's',
      Args: sh('kill -TERM $$'),
      Interval: '10s',
      Status: 'passing',
    })
    expect((await recorder.status('critical')).output).toContain('killed by SIGTERM')
    await runner.stop()
  })

  it('output over OutputMaxSize is capped (the start is kept)', async () => {
    const { runner, recorder } = startRunner({
      Name: 's',
      Args: sh('echo start; head -c 1000000 /dev/zero | tr "\\0" x; exit 1'),
      Interval: '10s',
      OutputMaxSize: 100,
    })
    const change = await recorder.status('warning')
    expect(Buffer.byteLength(change.output)).toBe(100)
    expect(change.output).toBe(`start\n${'x'.repeat(94)}`)
    await runner.stop()
  })

  it('a script past Timeout is killed with its process group and is critical', async () => {
    const file = join(dir, 'timeout.pids')
    const started = Date.now()
    const { runner, recorder } = startRunner({
      Name: 's',
      Args: sh(`sleep 30 & echo "$$ $!" > ${file}; wait`),
      Interval: '10s',
      Timeout: '300ms',
      Status: 'passing',
    })
    const change = await recorder.status('critical')
    expect(change.output).toMatch(/^Timed out \(300ms\) running check/)
    expect(Date.now() - started).toBeLessThan(3_000)
    const pids = readPids(file)
    expect(pids).toHaveLength(2)
    expect(isAlive(pids![0]!)).toBe(false) // the shell: reaped before the result was reported
    await eventually(() => !isAlive(pids![1]!), 'the sleep in its group is gone', 2_000)
    await runner.stop()
  })

  it('stop() kills a running script: no pid of it is left', async () => {
    const file = join(dir, 'stop.pids')
    const { runner, recorder } = startRunner({
      Name: 's',
      Args: sh(`sleep 30 & echo "$$ $!" > ${file}; wait`),
      Interval: '10s',
      Timeout: '30s',
    })
    await eventually(() => readPids(file) !== undefined, 'the script started')
    const pids = readPids(file)!
    expect(pids.every(isAlive)).toBe(true)
    await runner.stop()
    expect(isAlive(pids[0]!)).toBe(false)
    await eventually(() => !isAlive(pids[1]!), 'the sleep in its group is gone', 2_000)
    expect(recorder.changes).toEqual([])
  })

  it('a missing program is critical', async () => {
    const { runner, recorder } = startRunner({
      Name: 's',
      Args: ['/nonexistent/cairn-check'],
      Interval: '10s',
      Status: 'passing',
    })
    expect((await recorder.status('critical')).output).toContain('failed to run /nonexistent/cairn-check')
    await runner.stop()
  })

  it('is refused unless enableScriptChecks', () => {
    let error: unknown
    try {
      parseCheckDefinition({ Name: 's', Args: ['/bin/true'], Interval: '10s' })
    } catch (e) {
      error = e
    }
    expect(isCairnError(error, 'CHECK_INVALID')).toBe(true)
    expect((error as Error).message).toContain('script checks are disabled')
  })
})
