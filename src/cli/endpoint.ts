/**
 * The client side of the `cairn` commands that talk to a running agent: the global flags
 * (`--endpoint`, `-o`), one HTTP call to the agent's API, and the mapping of every failure to a
 * message and an exit code.
 *
 * Exit codes: 0 success, 1 the agent answered an error or could not be reached, 2 bad arguments
 * (commander's own parse errors, and an --endpoint that is not an http(s) URL).
 * Error messages: an etcd error body `{errorCode, message, cause}` → `Error: <message> (<cause>)`;
 * a members error `{message}` → `Error: <message>`; a refused connection →
 * `cannot reach <endpoint>: is an agent running? (cairn agent --help)`.
 */
import { type Command, Option } from 'commander'
import { request } from 'undici'

export const endpointDefault = 'http://127.0.0.1:4001'
export const outputFormats = ['table', 'json'] as const
export type OutputFormat = (typeof outputFormats)[number]

/** One request that is not a watch: the agent answers local reads at once, writes within Raft's timeout. */
export const requestTimeoutMs = 15_000
/** Largest answer body the CLI reads (a listing of a big directory); past it, the call fails. */
export const responseBytesMax = 64 * 1024 * 1024

export interface ClientFlags {
  endpoint: string
  output: OutputFormat
}

/** A failure the command reports on stderr with its exit code; anything else is a bug. */
export class ClientError extends Error {
  readonly exitCode: number
  constructor(message: string, exitCode = 1) {
    super(message)
    this.exitCode = exitCode
  }
}

/** Adds `--endpoint` and `-o` to one client command. */
export function withClientFlags(command: Command): Command {
  return command
    .option(
      '--endpoint <url>',
      'agent client URL (env CAIRN_ENDPOINT)',
      process.env['CAIRN_ENDPOINT'] || endpointDefault,
    )
    .addOption(new Option('-o, --output <format>', 'output format').choices(outputFormats).default('table'))
}

/** The endpoint without a trailing slash; a malformed one is bad arguments (exit 2). */
export function endpointOf(flags: ClientFlags): string {
  let url: URL
  try {
    url = new URL(flags.endpoint)
  } catch {
    throw new ClientError(`--endpoint: "${flags.endpoint}" is not a URL (want http://host:port)`, 2)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new ClientError(`--endpoint: "${flags.endpoint}" is not an http(s) URL`, 2)
  return flags.endpoint.replace(/\/+$/, '')
}

export interface ApiReply {
  status: number
  body: unknown
  headers: Record<string, string | string[] | undefined>
}

export interface ApiCall {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE'
  /** Path and query, starting with '/'. */
  path: string
  form?: Record<string, string>
  json?: unknown
  /** Watches wait without a deadline. */
  noTimeout?: boolean
}

/** One HTTP call to `base`; a connection failure becomes a ClientError with the hint. */
export async function callApi(base: string, call: ApiCall): Promise<ApiReply> {
  const timeoutMs = call.noTimeout === true ? 0 : requestTimeoutMs
  let body: string | undefined
  const headers: Record<string, string> = {}
  if (call.form !== undefined) {
    body = new URLSearchParams(call.form).toString()
    headers['content-type'] = 'application/x-www-form-urlencoded'
  } else if (call.json !== undefined) {
    body = JSON.stringify(call.json)
    headers['content-type'] = 'application/json'
  }
  try {
    const res = await request(`${base}${call.path}`, {
      method: call.method,
      body,
      headers,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    })
    const text = await readText(res.body)
    return { status: res.statusCode, body: parseBody(text), headers: res.headers }
  } catch (error) {
    if (error instanceof ClientError) throw error
    throw new ClientError(unreachableMessage(base, error))
  }
}

async function readText(body: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = []
  let bytes = 0
  for await (const chunk of body) {
    bytes += chunk.length
    if (bytes > responseBytesMax) throw new ClientError(`the answer is larger than ${responseBytesMax} bytes`)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function parseBody(text: string): unknown {
  if (text.trim() === '') return undefined
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

const unreachableCodes = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
])

function unreachableMessage(base: string, error: unknown): string {
  const code = errorCode(error)
  if (code !== undefined && unreachableCodes.has(code))
    return `cannot reach ${base}: is an agent running? (cairn agent --help)`
  return `request to ${base} failed: ${(error as Error).message}${code === undefined ? '' : ` (${code})`}`
}

function errorCode(error: unknown): string | undefined {
  for (let e = error as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; depth++) {
    if (typeof e.code === 'string') return e.code
    // AggregateError (several addresses tried): the first inner error names the cause.
    const inner = (e as { errors?: unknown[] }).errors?.[0]
    e = (e.cause ?? inner) as typeof e
  }
  return undefined
}

/** The agent's error answer as a ClientError: etcd's `{errorCode, message, cause}` or `{message}`. */
export function apiError(reply: ApiReply): ClientError {
  const body = reply.body as { errorCode?: unknown; message?: unknown; cause?: unknown } | string | undefined
  if (typeof body === 'object' && body !== null && typeof body.message === 'string') {
    const cause = typeof body.cause === 'string' && body.cause !== '' ? ` (${body.cause})` : ''
    return new ClientError(`Error: ${body.message}${cause}`)
  }
  const text = typeof body === 'string' ? `: ${body.trim()}` : ''
  return new ClientError(`Error: HTTP ${reply.status}${text}`)
}

/** Runs one client command: its failures go to stderr; returns the exit code. */
export async function runClient(action: () => Promise<void>): Promise<number> {
  try {
    await action()
    return 0
  } catch (error) {
    if (!(error instanceof ClientError)) throw error
    process.stderr.write(`${error.message}\n`)
    return error.exitCode
  }
}
