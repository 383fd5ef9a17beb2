/**
 * Proves the TCP check against real listeners: an open port is passing, the same port once the
 * listener is closed is critical (connection refused), and a connect that gets no answer is
 * critical within Timeout (at Timeout where the network drops the SYN).
 */

import type { AddressInfo } from 'node:net'
import { createServer, type Server } from 'node:net'
import { describe, expect, it } from 'vitest'
import { startRunner } from './test-helpers.ts'

async function listen(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => socket.end())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, port: (server.address() as AddressInfo).port }
}

describe('TCP checks against real listeners', () => {
  it('open port passing, then critical once the listener is closed', async () => {
    const { server, port } = await listen()
    const { runner, recorder } = startRunner({ Name: 't', TCP: `127.0.0.1:${port}`, Interval: '30ms' })
    const up = await recorder.status('passing')
    expect(up.output).toBe(`TCP connect 127.0.0.1:${port}: Success`)
    await new Promise((resolve) => server.close(resolve))
    const down = await recorder.status('critical')
    expect(down.output).toContain(`TCP connect 127.0.0.1:${port}: connect ECONNREFUSED`)
    expect(down.criticalSinceMs).toBeDefined()
    await runner.stop()
  })

  it('an IPv6 literal is dialled as [::1]:port', async () => {
    const server = createServer((socket) => socket.end())
    const listening = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false))
      server.listen(0, '::1', () => resolve(true))
    })
    if (!listening) return // no IPv6 loopback on this machine
    const port = (server.address() as AddressInfo).port
    const { runner, recorder } = startRunner({ Name: 't', TCP: `[::1]:${port}`, Interval: '30ms' })
    expect((await recorder.status('passing')).output).toBe(`TCP connect [::1]:${port}: Success`)
    await runner.stop()
    await new Promise((resolve) => server.close(resolve))
  })

  it('an unroutable address is critical within Timeout', async () => {
    // 192.0.2.0/24 (TEST-NET-1) is never routed: the SYN gets no answer (then Timeout decides), or a
    // firewall refuses it at once (as in some sandboxes), or the route is unreachable.
    const started = Date.now()
    const { runner, recorder } = startRunner({
      Name: 't',
      TCP: '192.0.2.1:9',
      Interval: '10s',
      Timeout: '200ms',
      Status: 'passing',
    })
    const change = await recorder.status('critical')
    expect(change.output).toMatch(
      /^TCP connect 192\.0\.2\.1:9: (timed out after 200ms|.*E(NETUNREACH|HOSTUNREACH|CONNREFUSED))/,
    )
    expect(Date.now() - started).toBeLessThan(2_000)
    await runner.stop()
  })
})
