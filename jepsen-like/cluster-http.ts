/**
 * The harness's own HTTP calls to members (status polls, membership changes): one attempt with a
 * deadline, never a throw. Client operations of the workloads go through client.ts instead, which
 * classifies outcomes for the history.
 */
import { request } from 'undici'

export interface HttpReply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: unknown
}

/** Default deadline of one harness call (status polls, membership changes). */
export const harnessHttpTimeoutMs = 3_000

/** undefined when the member could not be reached or did not answer in time. */
export async function httpCall(
  method: 'GET' | 'POST' | 'DELETE',
  url: string,
  options: { json?: unknown; timeoutMs?: number } = {},
): Promise<HttpReply | undefined> {
  const timeoutMs = options.timeoutMs ?? harnessHttpTimeoutMs
  try {
    const res = await request(url, {
      method,
      body: options.json === undefined ? undefined : JSON.stringify(options.json),
      headers: options.json === undefined ? {} : { 'content-type': 'application/json' },
      signal: AbortSignal.timeout(timeoutMs),
    })
    const text = await res.body.text()
    let body: unknown = text
    try {
      body = text === '' ? undefined : JSON.parse(text)
    } catch {}
    return { status: res.statusCode, headers: res.headers, body }
  } catch {
    return undefined
  }
}

/** What the harness reads from GET /_cairn/status (docs/agent.md); ids in hex. */
export interface MemberStatus {
  name: string
  id: string
  clusterId: string
  role: string
  leader: string | null
  term: number
  commit: number
  applied: number
  revision: number
  voters: string[]
  learners: string[]
}

export async function fetchStatus(clientUrl: string, timeoutMs = 1_000): Promise<MemberStatus | undefined> {
  const reply = await httpCall('GET', `${clientUrl}/_cairn/status`, { timeoutMs })
  return reply?.status === 200 ? (reply.body as MemberStatus) : undefined
}
