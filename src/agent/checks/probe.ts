/**
 * A probe runs one attempt of a check (one HTTP request, one TCP connect, one script run) and
 * says what it found. The runner decides when to probe and what the result means over time.
 *
 * Contract of every Probe:
 * - It never rejects: a refused connection, a timeout, a crashed script or a hostile server is a
 *   `critical` result with an output saying why.
 * - It settles within its check's Timeout (plus a short bounded drain), and promptly after
 *   `signal` aborts; when it has settled it has nothing left running (no socket, no child).
 * - `output` is already capped at the check's OutputMaxSize.
 */
import type { CheckStatus } from './definition.ts'

export interface ProbeResult {
  readonly status: CheckStatus
  readonly output: string
}

export type Probe = (signal: AbortSignal) => Promise<ProbeResult>

/** A probe and what it holds between attempts (an HTTP connection pool), released by close(). */
export interface ProbeHandle {
  readonly probe: Probe
  close(): Promise<void>
}

/** Runs `fn` with a timer of `timeoutMs` that aborts the returned signal, as `signal` does. */
export async function withDeadline<T>(
  signal: AbortSignal,
  timeoutMs: number,
  fn: (deadline: AbortSignal, timedOut: () => boolean) => Promise<T>,
): Promise<T> {
  const controller = new AbortController()
  let expired = false
  const timer = setTimeout(() => {
    expired = true
    controller.abort(new Error('timed out'))
  }, timeoutMs)
  const onAbort = () => controller.abort(new Error('stopped'))
  if (signal.aborted) onAbort()
  else signal.addEventListener('abort', onAbort, { once: true })
  try {
    return await fn(controller.signal, () => expired)
  } finally {
    clearTimeout(timer)
    signal.removeEventListener('abort', onAbort)
  }
}

export function errorText(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : ''
    return code !== undefined && !error.message.includes(code)
      ? `${error.message} (${code})${cause}`
      : `${error.message}${cause}`
  }
  return String(error)
}
