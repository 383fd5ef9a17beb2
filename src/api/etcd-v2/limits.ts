/**
 * Named limits of the etcd v2 HTTP surface. Past any of them the client gets a clear etcd-style
 * error (see errors.ts), never unbounded growth.
 *
 * Limits of the keyspace itself (key bytes, value bytes, watchers per member) are the kv layer's
 * (src/kv/limits.ts); these only bound what the HTTP layer holds.
 */
import { kvLimits } from '../../kv/limits.ts'

export interface EtcdV2Limits {
  /**
   * Bytes of one request body. etcd's --max-request-bytes is 1.5 MiB; a form carries the value
   * plus its field names and other parameters, so the body may exceed the value limit
   * (kvLimits.valueBytesMax, 1.5 MiB) by formOverheadBytes. A larger body is answered 413.
   */
  requestBodyBytesMax: number
  /** Long-poll and stream watches this API holds open at once (all connections). */
  watchesOpenMax: number
  /** Watches one client connection may hold open (HTTP/1.1 pipelining aside, normally 1). */
  watchesPerConnectionMax: number
  /** Member-list bodies (POST/PUT /v2/members) are small JSON documents. */
  membersBodyBytesMax: number
  /**
   * How long a follower waits for the leader's answer to a membership change it forwarded
   * (members-route.ts); past it the client gets 504.
   */
  membersForwardTimeoutMs: number
}

/** Room in a form body for field names, `&`/`=` and the other parameters. */
export const formOverheadBytes = 16 * 1024

export const etcdV2LimitsDefault: EtcdV2Limits = {
  requestBodyBytesMax: kvLimits.valueBytesMax + formOverheadBytes,
  watchesOpenMax: 10_000,
  watchesPerConnectionMax: 16,
  membersBodyBytesMax: 64 * 1024,
  membersForwardTimeoutMs: 10_000,
}
