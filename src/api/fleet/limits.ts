/**
 * The named limits of the fleet v1 API, each documented in docs/api-fleet.md. Past one, a request
 * is refused with a clear error (FLEET_REQUEST_INVALID, 400) and nothing changes; a journal stream
 * whose reader falls behind is ended with a last line saying so.
 */

export const fleetLimits = {
  /** Items per page of /units, /state and /machines (fleet's token_limit). */
  pageSize: 100,
  /** Keys one range read of a paged listing asks for while it filters (bounds each read). */
  pageScanChunk: 500,
  /** A PUT body in bytes: a unit file is at most 64 KiB, its options as JSON about three times that. */
  bodyBytesMax: 512 * 1024,
  /** Options in one PUT (one per line of a unit file at most). */
  optionsMax: 2_000,
  /** A page token, in characters (tokens are short; anything longer is not one of ours). */
  pageTokenCharsMax: 512,
  /** Reads and transactions one unit write tries before it reports contention. */
  writeAttemptsMax: 8,
  /** Journal lines when `?lines` is absent (fleetctl's --lines default). */
  journalLinesDefault: 10,
  /** The largest `?lines`. */
  journalLinesMax: 10_000,
  /** Bytes a followed journal may hold unsent for a slow reader before the stream is ended. */
  journalPendingBytesMax: 1024 * 1024,
  /** Connecting to (and the first answer of) another machine's agent when proxying its journal. */
  journalProxyHeadersTimeoutMs: 10_000,
} as const

/** Sent on a journal request proxied to another agent: that agent answers locally, never proxies again. */
export const journalHopHeader = 'x-cairn-journal-hop'
