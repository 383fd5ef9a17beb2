/**
 * Reconnect delays: exponential with jitter, from an injected uniform random source.
 *
 * After the n-th consecutive failure (n = 0 for the first) the ceiling is min(max, min * 2^n) and
 * the delay is drawn from [ceiling / 2, ceiling), never below `min`. Jitter keeps the members of a
 * cluster that lost a peer at the same moment from redialling it in lockstep.
 */
import { assertTransport } from './transport-error.ts'

export function reconnectDelayMs(
  failures: number,
  limits: { reconnectBackoffMinMs: number; reconnectBackoffMaxMs: number },
  random: () => number,
): number {
  assertTransport(Number.isSafeInteger(failures) && failures >= 0, `bad failure count ${failures}`)
  const { reconnectBackoffMinMs: min, reconnectBackoffMaxMs: max } = limits
  const ceiling = Math.min(max, min * 2 ** Math.min(failures, 30))
  const draw = random()
  assertTransport(draw >= 0 && draw < 1, `random() must be in [0, 1), got ${draw}`)
  return Math.max(min, Math.floor(ceiling / 2 + (draw * ceiling) / 2))
}
