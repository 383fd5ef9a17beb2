/**
 * The TCP check: connect, and close at once. An accepted connection is passing; a refusal, an
 * unreachable host, a failed name lookup or no answer within Timeout is critical. Node tries the
 * addresses a name resolves to (IPv4 and IPv6) in turn, so one success is enough, as in Consul.
 */
import { connect } from 'node:net'
import { formatDurationMs } from '../../catalog/durations.ts'
import type { TcpCheckSpec } from './definition.ts'
import { capText } from './output.ts'
import { errorText, type ProbeHandle, type ProbeResult, withDeadline } from './probe.ts'

export function createTcpProbe(spec: TcpCheckSpec, outputBytesMax: number): ProbeHandle {
  const target = spec.host.includes(':') ? `[${spec.host}]:${spec.port}` : `${spec.host}:${spec.port}`
  const probe = (signal: AbortSignal): Promise<ProbeResult> =>
    withDeadline(signal, spec.timeoutMs, (deadline, timedOut) =>
      connectOnce(spec, deadline).then(
        () => ({ status: 'passing', output: `TCP connect ${target}: Success` }),
        (error: unknown) => {
          const why = timedOut() ? `timed out after ${formatDurationMs(spec.timeoutMs)}` : errorText(error)
          return { status: 'critical', output: capText(`TCP connect ${target}: ${why}`, outputBytesMax) }
        },
      ),
    )
  return { probe, close: async () => {} }
}

/** Resolves once connected (the socket is then closed), rejects on error or abort. */
function connectOnce(spec: TcpCheckSpec, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason)
    const socket = connect({ host: spec.host, port: spec.port })
    const onAbort = () => {
      socket.destroy()
      reject(signal.reason)
    }
    signal.addEventListener('abort', onAbort, { once: true })
    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort)
      socket.destroy()
      resolve()
    })
    socket.once('error', (error) => {
      signal.removeEventListener('abort', onAbort)
      socket.destroy()
      reject(error)
    })
  })
}
