/**
 * Proves the agent's registrations file: what is written reads back equal; no file reads as
 * nothing; a damaged, edited, truncated, oversized or wrong-version file is refused with
 * CONFIG_INVALID (never half-read); a write leaves no temp file and the file is private (0600).
 */
import { mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isCairnError } from '../errors.ts'
import {
  encodeLocalState,
  type LocalState,
  localStateBytesMax,
  localStatePath,
  readLocalState,
  writeLocalState,
} from './local-state-file.ts'

const state: LocalState = {
  services: [{ ID: 'web', Name: 'web', Tags: ['é', 'v1'], Port: 80 }],
  checks: [{ ID: 'service:web', Name: "Service 'web' check", ServiceID: 'web', TTL: '10s' }],
  maintenance: [
    { serviceId: 'web', reason: 'deploy' },
    { serviceId: '', reason: '' },
  ],
}

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cairn-local-state-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function refusal(): Promise<string> {
  try {
    await readLocalState(dir)
  } catch (error) {
    expect(isCairnError(error, 'CONFIG_INVALID')).toBe(true)
    return (error as Error).message
  }
  throw new Error('the file was accepted')
}

describe('local-services.json', () => {
  it('reads back what was written; no temp file is left; the file is mode 0600', async () => {
    await writeLocalState(dir, encodeLocalState(state))
    expect(await readLocalState(dir)).toEqual(state)
    expect(await readdir(dir)).toEqual(['local-services.json'])
    expect((await stat(localStatePath(dir))).mode & 0o777).toBe(0o600)
  })

  it('a missing file is no state', async () => {
    expect(await readLocalState(dir)).toBeUndefined()
  })

  it('a second write replaces the first', async () => {
    await writeLocalState(dir, encodeLocalState(state))
    const next = { ...state, services: [] }
    await writeLocalState(dir, encodeLocalState(next))
    expect(await readLocalState(dir)).toEqual(next)
  })

  it('an edited file fails its checksum', async () => {
    await writeLocalState(dir, encodeLocalState(state))
    const text = await readFile(localStatePath(dir), 'utf8')
    await writeFile(localStatePath(dir), text.replace('"Port":80', '"Port":81'))
    expect(await refusal()).toContain('checksum mismatch')
  })

  it('a truncated file is not JSON', async () => {
    await writeLocalState(dir, encodeLocalState(state))
    await truncate(localStatePath(dir), 40)
    expect(await refusal()).toContain('not JSON')
  })

  it('another format version is refused', async () => {
    await writeFile(localStatePath(dir), JSON.stringify({ version: 2, sha256: '', state: {} }))
    expect(await refusal()).toContain('format version 2')
  })

  it('a well-formed checksum over a malformed state is still refused', async () => {
    const text = encodeLocalState({ services: 'x', checks: [], maintenance: [] } as unknown as LocalState)
    await writeFile(localStatePath(dir), text)
    expect(await refusal()).toContain('malformed')
  })

  it('an oversized file is refused unread', async () => {
    await writeFile(localStatePath(dir), '')
    await truncate(localStatePath(dir), localStateBytesMax + 1)
    expect(await refusal()).toContain(`larger than ${localStateBytesMax}`)
  })

  it('the message says how to start anyway', async () => {
    await writeFile(localStatePath(dir), '[]')
    expect(await refusal()).toContain('move the file aside')
  })
})
