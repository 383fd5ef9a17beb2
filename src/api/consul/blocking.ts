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

/**
 * Answers computed at one catalog revision, shared by every query with the same URL (less its
 * `index` and `wait`): the N waiters one change wakes compute and encode their answer once, not N
 * times. Dropped whenever the catalog's revision moves; at most memoEntriesMax URLs per revision.
 */
export const memoEntriesMax = 1024

interface Evaluated {
  answer: unknown
  json: string
}

const memos = new WeakMap<object, { revision: number; entries: Map<string, Evaluated> }>()

function evaluate(deps: ConsulApiDeps, key: string, query: CatalogQuery): Evaluated {
  const catalog = deps.catalog
  let memo = memos.get(catalog)
  if (memo === undefined || memo.revision !== catalog.revision) {
    memo = { revision: catalog.revision, entries: new Map() }
    memos.set(catalog, memo)
  }
  let evaluated = memo.entries.get(key)
  if (evaluated === undefined) {
    const answer = query.compute()
    evaluated = { answer, json: JSON.stringify(answer) }
    if (memo.entries.size < memoEntriesMax) memo.entries.set(key, evaluated)
  }
  return evaluated
}

/** The request's URL without the parameters that do not change its answer. */
function answerKey(url: string): string {
  const q = url.indexOf('?')
  if (q < 0) return url
  const kept = url
    .slice(q + 1)
    .split('&')
    .filter((p) => !/^(index|wait)(=|$)/.test(p))
  return `${url.slice(0, q)}?${kept.join('&')}`
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
  const key = answerKey(request.url)
  let evaluated = evaluate(deps, key, query)
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
      const before = evaluated.json
      let seen = asked
      index = asked
      while (!controller.signal.aborted) {
        await catalog.waitForChange(query.topics, seen, controller.signal)
        if (controller.signal.aborted) break
        seen = catalog.indexOf(query.topics)
        const next = evaluate(deps, key, query)
        if (next.json !== before) {
          evaluated = next
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
  return reply
    .code(query.statusOf?.(evaluated.answer) ?? 200)
    .type('application/json')
    .send(evaluated.json)
}
