/**
 * Proves the HTTP check against a real HTTP server on a random port: 2xx passing, 429 warning,
 * 500 and refused connections critical, a hanging server critical at Timeout, a huge body read
 * only up to OutputMaxSize, the method, headers and body sent as defined, redirects followed
 * unless DisableRedirects, and no connection left open after stop().
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventually, startRunner } from './test-helpers.ts'

let server: Server
let base: string
let received: { method: string; headers: IncomingMessage['headers']; body: string } | undefined
let hugeBytesSent = 0

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      if (req.url === '/echo')
        received = { method: req.method!, headers: req.headers, body: Buffer.concat(chunks).toString() }
      if (req.url === '/hang') return // never answers
      if (req.url === '/huge') {
        res.writeHead(200)
        const chunk = Buffer.alloc(64 * 1024, 'y')
        const pump = () => {
          while (hugeBytesSent < 64 * 1024 * 1024 && res.write(chunk)) hugeBytesSent += chunk.length
          if (hugeBytesSent >= 64 * 1024 * 1024) res.end()
        }
        res.on('drain', pump)
        pump()
        return
      }
      if (req.url === '/redirect') {
        res.writeHead(302, { location: '/ok' })
        res.end()
        return
      }
      const code = { '/ok': 200, '/echo': 204, '/busy': 429, '/fail': 500 }[req.url ?? ''] ?? 404
      res.writeHead(code)
      res.end(`body of ${req.url}`)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})

describe('HTTP checks against a real server', () => {
  it.each([
    ['/ok', 'passing', ': 200 OK Output: body of /ok'],
    ['/busy', 'warning', ': 429 Too Many Requests Output: body of /busy'],
    ['/fail', 'critical', ': 500 Internal Server Error Output: body of /fail'],
  ])('%s is %s', async (path, status, output) => {
    const { runner, recorder } = startRunner({
      Name: 'h',
      HTTP: `${base}${path}`,
      Interval: '50ms',
      Status: 'warning',
    })
    const change = await recorder.next()
    expect(change.status).toBe(status)
    expect(change.output).toBe(`HTTP GET ${base}${path}${output}`)
    await runner.stop()
  })

  it('a refused connection is critical', async () => {
    const closed = createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as AddressInfo).port
    await new Promise((resolve) => closed.close(resolve))
    const { runner, recorder } = startRunner({
      Name: 'h',
      HTTP: `http://127.0.0.1:${port}/`,
      Interval: '50ms',
      Status: 'passing',
    })
    const change = await recorder.status('critical')
    expect(change.output).toContain('ECONNREFUSED')
    await runner.stop()
  })

  it('a server that hangs past Timeout is critical, at about the Timeout', async () => {
    const started = Date.now()
    const { runner, recorder } = startRunner({
      Name: 'h',
      HTTP: `${base}/hang`,
      Interval: '10s',
      Timeout: '150ms',
      Status: 'passing',
    })
    const change = await recorder.status('critical')
    const tookMs = Date.now() - started
    expect(change.output).toBe(`HTTP GET ${base}/hang: timed out after 150ms`)
    expect(tookMs).toBeGreaterThanOrEqual(140)
    expect(tookMs).toBeLessThan(2_000)
    await runner.stop()
  })

  it('a huge body is read only up to OutputMaxSize', async () => {
    const { runner, recorder } = startRunner({
      Name: 'h',
      HTTP: `${base}/huge`,
      Interval: '10s',
      OutputMaxSize: 300,
    })
    const change = await recorder.status('passing')
    expect(Buffer.byteLength(change.output)).toBe(300)
    expect(change.output).toMatch(/^HTTP GET .*\/huge: 200 OK Output: y+$/)
    await runner.stop()
    expect(hugeBytesSent).toBeLessThan(64 * 1024 * 1024) // the server was cut off, not drained
  })

  it('sends the method, headers and body of the definition', async () => {
    const { runner, recorder } = startRunner({
      Name: 'h',
      HTTP: `${base}/echo`,
      Interval: '10s',
      Method: 'POST',
      Header: { 'X-Check': ['a', 'b'], 'Content-Type': ['application/json'] },
      Body: '{"q":1}',
    })
    expect((await recorder.next()).status).toBe('passing')
    expect(received?.method).toBe('POST')
    expect(received?.headers['x-check']).toBe('a, b')
    expect(received?.headers['content-type']).toBe('application/json')
    expect(received?.body).toBe('{"q":1}')
    await runner.stop()
  })

  it('follows redirects unless DisableRedirects', async () => {
    const follow = startRunner({ Name: 'h', HTTP: `${base}/redirect`, Interval: '10s' })
    expect((await follow.recorder.next()).output).toContain('200 OK Output: body of /ok')
    await follow.runner.stop()
    const stay = startRunner({
      Name: 'h',
      HTTP: `${base}/redirect`,
      Interval: '10s',
      DisableRedirects: true,
      Status: 'passing',
    })
    expect((await stay.recorder.next()).output).toContain(': 302 Found')
    await stay.runner.stop()
  })

  it('stop() aborts a request in flight and leaves no connection open', async () => {
    const { runner } = startRunner({ Name: 'h', HTTP: `${base}/hang`, Interval: '10s', Timeout: '30s' })
    const connections = () =>
      new Promise<number>((resolve) => server.getConnections((_e, count) => resolve(count)))
    let open = 0
    await eventually(() => {
      void connections().then((c) => (open = c))
      return open > 0
    }, 'the check connected')
    await runner.stop()
    await eventually(() => {
      void connections().then((c) => (open = c))
      return open === 0
    }, 'the connection was closed')
  })
})
