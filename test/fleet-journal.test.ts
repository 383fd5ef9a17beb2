/**
 * Proves Cairn's journal route: a unit's journal is read from the machine that runs it — this
 * agent's own journals when the unit is here, another agent's over HTTP (MachineRecord.Api) when
 * it is there, never proxied twice — with `lines` bounded, `follow` streaming new lines until the
 * client goes away (no follower left behind), and fleet-shaped errors for a unit with no journal,
 * a machine with no live agent, and an agent that does not answer. Two real API instances share
 * one LocalKvStore, as two agents share the cluster's store.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { fleetLimits } from '../src/api/fleet/limits.ts'
import {
  addMachine,
  assign,
  type FleetTestApi,
  reportState,
  startFleetApi,
} from '../src/api/fleet/test-support.ts'
import { LocalKvStore } from '../src/kv/local-kv-store.ts'

const text = '[Service]\nExecStart=/bin/true\n'
const opened: FleetTestApi[] = []
afterEach(async () => {
  for (const api of opened.splice(0)) await api.close()
})

/** Agents n1 and n2 over one store, each with its machine key publishing its API address. */
async function twoAgents(): Promise<[FleetTestApi, FleetTestApi]> {
  const store = new LocalKvStore()
  const n1 = await startFleetApi({ nodeName: 'n1', store })
  const n2 = await startFleetApi({ nodeName: 'n2', store })
  opened.push(n1, n2)
  await addMachine(store, 'n1', { api: n1.url })
  await addMachine(store, 'n2', { api: n2.url })
  return [n1, n2]
}

async function journal(
  api: FleetTestApi,
  path: string,
): Promise<{ status: number; lines: unknown[]; body: string }> {
  const res = await fetch(`${api.url}/fleet/v1/journal/${path}`)
  const body = await res.text()
  const lines =
    res.status === 200
      ? body
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l))
      : []
  return { status: res.status, lines, body }
}

describe('GET /fleet/v1/journal/<name>', () => {
  it('answers from this agent when the unit runs here, the last `lines` lines (default 10)', async () => {
    const [n1] = await twoAgents()
    await assign(n1.store, 'n1', 'a.service', text)
    for (let i = 0; i < 15; i++) n1.journals.append('a.service', `line ${i}`, 'stdout', 1000 + i)
    const all = await journal(n1, 'a.service')
    expect(all.status).toBe(200)
    expect(all.lines).toHaveLength(10)
    expect(all.lines[0]).toEqual({ ts: 1005, stream: 'stdout', text: 'line 5' })
    expect((await journal(n1, 'a.service?lines=3')).lines.map((l) => (l as { text: string }).text)).toEqual([
      'line 12',
      'line 13',
      'line 14',
    ])
  })

  it('proxies to the machine the unit is assigned to, or last reported from', async () => {
    const [n1, n2] = await twoAgents()
    await assign(n1.store, 'n2', 'b.service', text)
    n2.journals.append('b.service', 'from n2', 'stderr', 7)
    expect((await journal(n1, 'b.service')).lines).toEqual([{ ts: 7, stream: 'stderr', text: 'from n2' }])
    // Unassigned since, but n2 reported its last state: the journal is still there.
    await reportState(n1.store, 'n2', 'c.service', text)
    n2.journals.append('c.service', 'c on n2', 'cairn', 8)
    expect((await journal(n1, 'c.service')).lines).toEqual([{ ts: 8, stream: 'cairn', text: 'c on n2' }])
    // An explicit machineID wins.
    n1.journals.append('b.service', 'old run on n1', 'stdout', 3)
    expect((await journal(n2, 'b.service?machineID=n1')).lines).toEqual([
      { ts: 3, stream: 'stdout', text: 'old run on n1' },
    ])
  })

  it('a proxied request is answered where it lands, never proxied again', async () => {
    const [n1, n2] = await twoAgents()
    await assign(n1.store, 'n1', 'd.service', text)
    // n2 is asked with the hop header: it answers from its own journals (none) even though d runs on n1.
    const res = await fetch(`${n2.url}/fleet/v1/journal/d.service`, {
      headers: { 'x-cairn-journal-hop': '1' },
    })
    expect(res.status).toBe(404)
    expect(await res.json()).toEqual({
      error: { code: 404, message: expect.stringMatching(/no journal on machine n2/) },
    })
  })

  it('follow streams the tail, then each new line, locally and through a proxy; closing ends the follow', async () => {
    const [n1, n2] = await twoAgents()
    await assign(n1.store, 'n2', 'f.service', text)
    n2.journals.append('f.service', 'before', 'stdout', 1)
    let last = 'before'
    for (const via of [n2, n1]) {
      const abort = new AbortController()
      const res = await fetch(`${via.url}/fleet/v1/journal/f.service?follow=true&lines=1`, {
        signal: abort.signal,
      })
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toMatch(/application\/x-ndjson/)
      const reader = res.body!.getReader()
      let received = ''
      const readUntil = async (needle: string) => {
        while (!received.includes(needle)) {
          const { value, done } = await reader.read()
          if (done) throw new Error(`stream ended before ${needle}`)
          received += Buffer.from(value).toString('utf8')
        }
      }
      await readUntil(last) // the tail: the one last line
      expect(received.trim().split('\n')).toHaveLength(1)
      await waitFor(() => n2.journals.followers('f.service') === 1)
      n2.journals.append('f.service', `live via ${via.nodeName}`, 'stdout', 2)
      last = `live via ${via.nodeName}`
      await readUntil(last)
      abort.abort()
      await waitFor(() => n2.journals.followers('f.service') === 0)
    }
  })

  it('refuses bad parameters, a unit with no journal, and machines that cannot be reached', async () => {
    const [n1] = await twoAgents()
    n1.journals.append('e.service', 'x')
    expect((await journal(n1, `e.service?lines=${fleetLimits.journalLinesMax + 1}`)).status).toBe(400)
    expect((await journal(n1, 'e.service?lines=-1')).status).toBe(400)
    expect((await journal(n1, 'e.service?follow=perhaps')).status).toBe(400)
    expect((await journal(n1, 'bad name')).status).toBe(400)
    expect((await journal(n1, 'none.service')).status).toBe(404)

    await assign(n1.store, 'gone', 'g.service', text) // no machine key: the machine is dead
    const gone = await journal(n1, 'g.service')
    expect(gone.status).toBe(502)
    expect(JSON.parse(gone.body).error.message).toMatch(/no live agent/)

    await addMachine(n1.store, 'mute', { api: 'http://127.0.0.1:9' }) // nothing listens on port 9
    await assign(n1.store, 'mute', 'm.service', text)
    expect((await journal(n1, 'm.service')).status).toBe(502)

    await assign(n1.store, 'n1', 'h.service', text)
    await assign(n1.store, 'n2', 'h.service', text)
    await assign(n1.store, 'n3', 'k.service', text)
    await assign(n1.store, 'n2', 'k.service', text)
    const several = await journal(n1, 'k.service')
    expect(several.status).toBe(400)
    expect(JSON.parse(several.body).error.message).toMatch(/several machines/)
  })

  it('closing the server ends a local follow', async () => {
    const [n1] = await twoAgents()
    n1.journals.append('z.service', 'x')
    const res = await fetch(`${n1.url}/fleet/v1/journal/z.service?follow=true`)
    await waitFor(() => n1.journals.followers('z.service') === 1)
    await n1.close()
    opened.splice(opened.indexOf(n1), 1)
    await res.text() // ends
    expect(n1.journals.followers('z.service')).toBe(0)
  })
})

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
