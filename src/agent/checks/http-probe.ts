/**
 * The HTTP check: one request per run, as Consul makes it. Any 2xx is passing, 429 is warning,
 * anything else (another status, a connection error, a timeout) is critical. The output is the
 * status line followed by the start of the body, capped at OutputMaxSize; the body is read only
 * up to that cap, then the connection is dropped, so a huge or endless body costs nothing.
 *
 * Each check has its own undici Agent (its own connections), destroyed by close(), so stopping a
 * check leaves no socket behind. Redirects are followed up to redirectsMax unless DisableRedirects.
 */
import { STATUS_CODES } from 'node:http'
import type { Dispatcher } from 'undici'
import { Agent, request } from 'undici'
import { formatDurationMs } from '../../catalog/durations.ts'
import type { CheckStatus, HttpCheckSpec } from './definition.ts'
import { redirectsMax } from './limits.ts'
import { capText, OutputBuffer } from './output.ts'
import { errorText, type ProbeHandle, type ProbeResult, withDeadline } from './probe.ts'

export function statusOfHttpCode(code: number): CheckStatus {
  if (code >= 200 && code <= 299) return 'passing'
  if (code === 429) return 'warning'
  return 'critical'
}

export function createHttpProbe(spec: HttpCheckSpec, outputBytesMax: number): ProbeHandle {
  const agent = new Agent({ maxRedirections: spec.disableRedirects ? 0 : redirectsMax })
  const prefix = `HTTP ${spec.method} ${spec.url}`
  const probe = (signal: AbortSignal): Promise<ProbeResult> =>
    withDeadline(signal, spec.timeoutMs, async (deadline, timedOut) => {
      try {
        return await requestOnce(agent, spec, deadline, prefix, outputBytesMax)
      } catch (error) {
        const why = timedOut() ? `timed out after ${formatDurationMs(spec.timeoutMs)}` : errorText(error)
        return { status: 'critical', output: capText(`${prefix}: ${why}`, outputBytesMax) }
      }
    })
  return { probe, close: () => agent.destroy() }
}

async function requestOnce(
  agent: Dispatcher,
  spec: HttpCheckSpec,
  signal: AbortSignal,
  prefix: string,
  outputBytesMax: number,
): Promise<ProbeResult> {
  const response = await request(spec.url, {
    dispatcher: agent,
    method: spec.method as Dispatcher.HttpMethod,
    headers: spec.headers as Record<string, string[]>,
    body: spec.body === '' ? undefined : spec.body,
    signal,
  })
  const output = new OutputBuffer(outputBytesMax)
  const reason = STATUS_CODES[response.statusCode]
  const statusLine = reason === undefined ? `${response.statusCode}` : `${response.statusCode} ${reason}`
  output.write(`${prefix}: ${statusLine} Output: `)
  for await (const chunk of response.body) {
    output.write(chunk as Buffer)
    if (output.full) break // leaving the loop destroys the body: the rest is never read
  }
  return { status: statusOfHttpCode(response.statusCode), output: output.text() }
}
