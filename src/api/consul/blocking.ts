/**
 * Blocking queries over the catalog (Consul's `?index=N&wait=D`), answered from the agent's
 * CatalogState.
 *
 * Rules (docs/api-consul.md):
 * - Without `?index`, or when the query's topics changed after N, or when N is ahead of what this
 *   agent has seen (a client that talked to another agent, or a restored store: Consul's "reset
 *   your index" case), the answer is immediate.
 * - Otherwise the query waits on its own topics only. When one changes, the answer is computed
 *   again and compared with the answer as it was when the wait began; if it is the same (a change
 *   that does not show in this result, e.g. another tag of the service), the query keeps waiting.
 *   So it returns early only when its own result changed, unlike Consul (hashicorp/consul#1244).
 * - It returns at the latest after `wait` plus a jitter of up to wait/16; then with index N (its
 *   result did not change) and the same body.
 * - A waiting query ends when its client goes away or the server closes (the abort signal).
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ConsulApiDeps } from './deps.ts'
import { type ReadParams, setReadHeaders, settle } from './http.ts'

export interface CatalogQuery {
  /** The topics whose changes can change the answer (state.ts). */
  topics: readonly string[]
  /** The answer, computed from the catalog as it is now. */
  compute(): unknown
  /** Optional: a non-200 status for an answer (e.g. 404 when a node is unknown). */
  statusOf?(answer: unknown): number
}

export async function answerCatalogQuery(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: ConsulApiDeps,
  params: ReadParams,
  query: CatalogQuery,
  closing: AbortSignal,
): Promise<FastifyReply> {
  await settle(deps, params.consistency)
  const catalog = deps.catalog
  let answer = query.compute()
  let index = catalog.indexOf(query.topics)
  const asked = params.index
  if (asked !== undefined && asked > 0 && index <= asked && asked <= catalog.revision) {
    const random = deps.random ?? Math.random
    const waitMs = params.waitMs + Math.floor(random() * (params.waitMs / 16))
    const controller = new AbortController()
    const abort = (): void => controller.abort()
    const timer = setTimeout(abort, waitMs)
    request.raw.once('close', abort)
    closing.addEventListener('abort', abort, { once: true })
    try {
      const before = JSON.stringify(answer)
      let seen = asked
      index = asked
      while (!controller.signal.aborted) {
        await catalog.waitForChange(query.topics, seen, controller.signal)
        if (controller.signal.aborted) break
        seen = catalog.indexOf(query.topics)
        const next = query.compute()
        if (JSON.stringify(next) !== before) {
          answer = next
          index = seen
          break
        }
      }
    } finally {
      clearTimeout(timer)
      request.raw.off('close', abort)
      closing.removeEventListener('abort', abort)
    }
  }
  setReadHeaders(reply, deps, index, params.consistency)
  return reply.code(query.statusOf?.(answer) ?? 200).send(answer)
}
