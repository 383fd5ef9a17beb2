/**
 * Named limits of the internal store API (docs/store-api.md). Past any of them the caller gets a
 * clear error ({code, message} with 413 or 503), never unbounded growth.
 *
 * Limits of the keyspace itself (key, value, command bytes, txn ops, watchers per member, events
 * buffered per watcher) are the kv layer's (src/kv/limits.ts) and are checked there again.
 */
import { kvLimits } from '../../kv/limits.ts'

export interface StoreApiLimits {
  /**
   * Bytes of one JSON request body. A command may hold kvLimits.commandBytesMax (2 MiB) of msgpack;
   * JSON escapes control characters (up to 6 bytes for one), so the body limit is twice that: a
   * value the kv layer would refuse as too large reaches it and gets its KV_VALUE_TOO_LARGE.
   * A larger body is answered 413 KV_VALUE_TOO_LARGE before it is parsed.
   */
  bodyBytesMax: number
  /** Watch streams this API holds open at once (all clients); past it, 503 KV_WATCHERS_MAX. */
  watchStreamsMax: number
  /**
   * How often each open watch stream gets a heartbeat line (with a progress revision). Clients
   * treat a stream silent for a few heartbeats as dead (RemoteKvStore: watchIdleMsMax).
   */
  heartbeatMs: number
}

export const storeApiLimitsDefault: Readonly<StoreApiLimits> = {
  bodyBytesMax: 2 * kvLimits.commandBytesMax,
  watchStreamsMax: 4_096,
  heartbeatMs: 5_000,
}

export function makeStoreApiLimits(overrides: Partial<StoreApiLimits> = {}): StoreApiLimits {
  const limits = { ...storeApiLimitsDefault, ...overrides }
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1)
      throw new Error(`store api: ${name} must be a positive integer`)
  }
  return limits
}
