/**
 * Proves the `cairn` command works as installed: ./bin/cairn runs as a real child process, prints
 * its version, runs the simulator with the documented last line and exit codes, and answers bad
 * arguments with a clear error and exit code 2.
 */
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const bin = fileURLToPath(new URL('../bin/cairn', import.meta.url))

function cairn(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(bin, args, { encoding: 'utf8', timeout: 60_000 })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

describe('cairn CLI', () => {
  it('prints the package version', () => {
    const { code, stdout } = cairn('--version')
    expect(code).toBe(0)
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/)
  })

  it('cairn sim ends with the summary line and exits 0 when no invariant broke', () => {
    const { code, stdout } = cairn('sim', '--seeds', '3')
    expect(code).toBe(0)
    expect(stdout.trim().split('\n').at(-1)).toMatch(/^seeds: 3, steps: \d+, violations: 0$/)
  })

  it('cairn sim exits 1 on a violation and prints the command that replays it', () => {
    const { code, stdout } = cairn('sim', '--seed', '2', '--bug', 'readWithoutQuorum')
    expect(code).toBe(1)
    expect(stdout).toContain('VIOLATION seed 2: read-linearizability')
    expect(stdout).toContain('replay: npm run sim -- --seed 2 --bug readWithoutQuorum')
    expect(stdout.trim().split('\n').at(-1)).toMatch(/^seeds: 1, steps: \d+, violations: 1$/)
  })

  it.each([
    [['sim', '--seeds', '0'], '--seeds needs a positive integer'],
    [['sim', '--bug', 'nope'], 'unknown bug nope'],
    [['sim', '--scenario', '{not json'], '--scenario is not JSON'],
    [['sim', '--scenario', '{"nodeCount":"five"}'], 'nodeCount needs a number'],
  ])('cairn %j is refused with a clear error and exit code 2', (args, message) => {
    const { code, stderr } = cairn(...args)
    expect(code).toBe(2)
    expect(stderr).toContain(message)
  })
})
