/**
 * Graceful shutdown on SIGTERM and SIGINT: the first signal stops the agent (ServerAgent.stop) and
 * exits 0 once it stopped; a failed stop exits 1; a stop that takes longer than shutdownMsMax
 * exits 1 with a log line rather than hang forever. A second signal while stopping exits 1 at once
 * (the operator insisted; the WAL makes that as safe as kill -9).
 *
 * Only signals stop the agent: bad client input is answered per request and never ends the process.
 */
import type { AgentLogger } from './logger.ts'

/** Longest a graceful stop may take (leadership hand-off is at most one election timeout). */
export const shutdownMsMax = 30_000

export const shutdownSignals = ['SIGTERM', 'SIGINT'] as const

export function exitOnSignals(stop: () => Promise<void>, log: AgentLogger): void {
  let stopping = false
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal while stopping: exiting now')
      process.exit(1)
    }
    stopping = true
    log.info({ signal }, 'stopping')
    const timer = setTimeout(() => {
      log.error({ shutdownMsMax }, 'graceful stop took too long: exiting')
      process.exit(1)
    }, shutdownMsMax)
    timer.unref()
    stop().then(
      () => {
        log.info({}, 'stopped')
        process.exit(0)
      },
      (error: unknown) => {
        log.error({ err: error }, 'stop failed')
        process.exit(1)
      },
    )
  }
  for (const signal of shutdownSignals) process.on(signal, onSignal)
}
