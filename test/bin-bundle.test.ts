/**
 * Proves bin/bundle.mjs rebuilds the bundle bin/cairn runs when it is older than the sources (a
 * checkout or an edit), keeps it when it is current, and that the bundle runs.
 */
import { execFileSync } from 'node:child_process'
import { statSync, utimesSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
// @ts-expect-error: a plain JavaScript module without types
import { bundlePath, ensureBundle } from '../bin/bundle.mjs'
import { cairnBin } from './helpers/agent-processes.ts'

describe('bin/cairn bundle', () => {
  it('is rebuilt when older than the sources, kept when current, and runs', () => {
    ensureBundle()
    const old = new Date('2001-01-01T00:00:00Z')
    utimesSync(bundlePath, old, old)
    expect(ensureBundle()).toBe(bundlePath)
    const rebuilt = statSync(bundlePath).mtimeMs
    expect(rebuilt).toBeGreaterThan(old.getTime())
    expect(ensureBundle()).toBe(bundlePath)
    expect(statSync(bundlePath).mtimeMs).toBe(rebuilt)
    const version = execFileSync(process.execPath, [cairnBin, '--version'], { encoding: 'utf8' }).trim()
    expect(version).toMatch(/^\d+\.\d+\.\d+$/)
  })
})
