/**
 * Proves the client's outcome classification against a scripted HTTP server (and a closed port):
 * success answers are `ok` with their values (a missing key reads as null); etcd 4xx errors are
 * definite `fail` (101 compare failed, 100 on a cas); a 5xx is `info` for a write and `fail` for a
 * read; a request nobody answers is `info` for a write and `fail` for a read; a refused connection
 * is `fail` even for a write (nothing was sent); watch answers become WatchEvents; and the client
 * moves to another member after an unclear outcome but not after a definite etcd error.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Prng } from '../src/raft/core/prng.ts'
import { createDispatcher, EtcdClient } from './client.ts'

type Script = (req: IncomingMessage, res: ServerResponse, body: string) => void

let server: Server
let script: Script = (_req, res) => res.end()
let url = ''
let closedUrl = ''
const dispatcher = createDispatcher(2_000)

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => {
      body += c.toString()
    })
    req.on('end', () => script(req, res, body))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const closed = createServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()))
  closedUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`
  await new Promise<void>((resolve) => closed.close(() => resolve()))
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  await dispatcher.close()
})

function json(status: number, body: unknown, headers: Record<string, string> = {}): Script {
  return (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers })
    res.end(`${JSON.stringify(body)}\n`)
  }
}

function client(urls: string[] = [url], timeoutMs = 2_000): EtcdClient {
  const prng = new Prng(1)
  return new EtcdClient({
    endpoints: urls.map((u, i) => ({ name: `n${i + 1}`, url: u })),
    first: 0,
    timeoutMs,
    random: () => prng.float(),
    dispatcher,
  })
}

describe('EtcdClient outcomes', () => {
  it('reads with quorum=true: a value, or null for a missing key', async () => {
    let seen = ''
    script = (req, res, body) => {
      seen = req.url ?? ''
      json(200, { action: 'get', node: { key: '/a', value: 'v1', modifiedIndex: 3 } })(req, res, body)
    }
    expect(await client().read('/a')).toEqual({ type: 'ok', value: 'v1', node: 'n1' })
    expect(seen).toBe('/v2/keys/a?quorum=true')
    script = json(404, { errorCode: 100, message: 'Key not found', index: 3 })
    expect(await client().read('/a')).toEqual({ type: 'ok', value: null, node: 'n1' })
  })

  it('writes and cas send the form; a failed compare or a missing key on cas is a definite fail', async () => {
    let form = ''
    script = (req, res, body) => {
      form = body
      json(200, { action: 'compareAndSwap', node: { key: '/a', value: 'v2', modifiedIndex: 9 } })(
        req,
        res,
        body,
      )
    }
    expect(await client().cas('/a', 'v1', 'v2')).toMatchObject({ type: 'ok' })
    expect(new URLSearchParams(form).get('prevValue')).toBe('v1')
    script = json(200, { action: 'set', node: { key: '/a', value: 'v3', modifiedIndex: 10 } })
    expect(await client().write('/a', 'v3')).toEqual({ type: 'ok', value: 10, node: 'n1' })
    script = json(412, { errorCode: 101, message: 'Compare failed', cause: '[v1 != v2]', index: 10 })
    expect(await client().cas('/a', 'v1', 'v4')).toMatchObject({ type: 'fail', error: '101 [v1 != v2]' })
    script = json(404, { errorCode: 100, message: 'Key not found', cause: '/a', index: 10 })
    expect(await client().cas('/a', 'v1', 'v4')).toMatchObject({ type: 'fail' })
  })

  it('a 5xx is unknown for a write and a failure for a read', async () => {
    script = json(500, { errorCode: 300, message: 'Raft Internal Error', cause: 'timed out', index: 0 })
    expect(await client().write('/a', 'x')).toMatchObject({ type: 'info', error: '300 timed out' })
    expect(await client().cas('/a', 'x', 'y')).toMatchObject({ type: 'info' })
    expect(await client().add('/s', 'x')).toMatchObject({ type: 'info' })
    expect(await client().read('/a')).toMatchObject({ type: 'fail' })
  })

  it('no answer before the deadline is unknown for a write and a failure for a read', async () => {
    script = () => {} // never answers
    expect(await client([url], 200).write('/a', 'x')).toEqual({ type: 'info', error: 'timeout', node: 'n1' })
    expect(await client([url], 200).read('/a')).toEqual({ type: 'fail', error: 'timeout', node: 'n1' })
    server.closeAllConnections()
  })

  it('a refused connection is a definite fail, even for a write', async () => {
    expect(await client([closedUrl]).write('/a', 'x')).toMatchObject({ type: 'fail', error: 'ECONNREFUSED' })
  })

  it('moves to another member after an unclear outcome, not after an etcd error', async () => {
    const c = client([url, url, url])
    script = json(412, { errorCode: 101, message: 'Compare failed', index: 1 })
    await c.cas('/a', 'x', 'y')
    expect(c.node).toBe('n1')
    script = json(500, { errorCode: 300, message: 'Raft Internal Error', index: 0 })
    await c.write('/a', 'x')
    expect(c.node).not.toBe('n1')
  })

  it('in-order adds answer their revision; lists read every leaf value', async () => {
    script = json(201, {
      action: 'create',
      node: { key: '/s/00000000000000000007', value: '4', modifiedIndex: 7 },
    })
    expect(await client().add('/s', '4')).toEqual({ type: 'ok', value: 7, node: 'n1' })
    script = json(200, {
      action: 'get',
      node: {
        key: '/s',
        dir: true,
        nodes: [
          { key: '/s/1', value: '1' },
          { key: '/s/2', value: '2' },
        ],
      },
    })
    expect(await client().list('/s')).toMatchObject({ type: 'ok', value: ['1', '2'] })
  })

  it('a long poll gives one WatchEvent; a stream gives events until told to stop', async () => {
    let seen = ''
    script = (req, res, body) => {
      seen = req.url ?? ''
      json(200, { action: 'set', node: { key: '/w/k1', value: 'v', modifiedIndex: 12 } })(req, res, body)
    }
    expect(await client().watchOnce('/w', 12, 1_000)).toEqual({
      type: 'ok',
      value: { revision: 12, key: '/w/k1', action: 'set', value: 'v' },
      node: 'n1',
    })
    expect(seen).toBe('/v2/keys/w?wait=true&recursive=true&waitIndex=12')
    script = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      for (let i = 1; i <= 3; i++)
        res.write(
          `${JSON.stringify({ action: 'set', node: { key: '/w/k', value: `${i}`, modifiedIndex: i } })}\n`,
        )
    }
    const revisions: number[] = []
    const why = await client().watchStream('/w', 1, (e) => revisions.push(e.revision) >= 3, 1_000)
    expect(why).toBe('done')
    expect(revisions).toEqual([1, 2, 3])
    server.closeAllConnections()
  })
})
