/**
 * buildEtcdV2Forwarder(deps): the etcd v2 surface of a client agent (docs/client-agents.md).
 *
 * A client agent holds no keyspace, so every /v2 request, /version and /health is sent to the
 * servers as it came (RemoteKvStore.forward: the pooled connections, failover to another server
 * when that is safe) and the server's reply is handed back as it is: status, body and etcd's
 * headers. Apps see a server's answers; only the connection is local.
 *
 * Watches (GET /v2/keys/...?wait=true) are the exception: they are served here, by the same code
 * as on a server (watch-route.ts), from watchers of the RemoteKvStore. Identical watches share one
 * upstream stream, a watch survives the loss of its server (it resumes on another with no gap and
 * no repeat), and an app's long poll does not hold a pooled connection. The head is written once a
 * server accepted the watch, so a compacted waitIndex is still etcd's 401 error reply; a watch's
 * X-Etcd-Index is the newest store revision this agent has seen, and X-Raft-Index / X-Raft-Term
 * are the last a server reported.
 *
 * Invariants: a request is forwarded at most once per server attempt as RemoteKvStore.forward
 * allows (a write that may have reached a server is never sent again: its client gets etcd's 300
 * error with the reason); no route throws past its error reply; closing the fastify instance ends
 * every open watch first, as on a server.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { ForwardAnswer, ForwardRequest } from '../../kv/remote-kv-store.ts'
import { errorCodeHeader } from '../../kv/store-wire.ts'
import { parseV2KeyRequest, type V2KeyRequest, type V2Method } from '../../kv/v2-request.ts'
import type { WatchRequest } from '../../kv/watch-hub.ts'
import type { Watcher } from '../../kv/watcher.ts'
import type { OpenWatch } from './context.ts'
import { v2ErrorReply } from './errors.ts'
import { keyOfUrl, keysPrefix, mergeForm } from './form.ts'
import { errorHeaders, type HeaderMap, keyHeaders } from './headers.ts'
import { type EtcdV2Limits, etcdV2LimitsDefault } from './limits.ts'
import { serveWatch, type WatchServing } from './watch-route.ts'

/** What the forwarder needs of the client agent's store. */
export interface V2Upstream {
  forward(req: ForwardRequest): Promise<ForwardAnswer>
  watch(req: WatchRequest): Watcher
}

export interface EtcdV2ForwardDeps {
  upstream: V2Upstream
  limits?: Partial<EtcdV2Limits> | undefined
  /**
   * Longest wait for a server to accept a watch before its head is written anyway (the watch
   * then goes on resuming on the servers in the background).
   */
  watchConfirmMsMax?: number | undefined
}

/** Default of EtcdV2ForwardDeps.watchConfirmMsMax. */
export const watchConfirmMsMaxDefault = 3_000

/** Reply headers that describe the connection, not the answer: never copied through. */
const hopHeaders: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'date',
  errorCodeHeader,
])

export interface EtcdV2Forwarder {
  (app: FastifyInstance): Promise<void>
  /** Open watches served here (for tests and metrics). */
  readonly openWatches: () => number
}

export function buildEtcdV2Forwarder(deps: EtcdV2ForwardDeps): EtcdV2Forwarder {
  const host = new ForwardingHost(deps)
  const plugin = async (app: FastifyInstance): Promise<void> => {
    app.addHook('preClose', async () => {
      for (const watch of [...host.openWatches]) watch.finish()
    })
    await app.register(async (scope) => {
      // Bodies are forwarded as they came, whatever their type.
      scope.removeAllContentTypeParsers()
      scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body))
      scope.setErrorHandler((error, _request, reply) => host.sendError(reply, error))
      const handler = (request: FastifyRequest, reply: FastifyReply) => host.handle(request, reply)
      const options = { bodyLimit: host.limits.requestBodyBytesMax, exposeHeadRoute: false }
      for (const url of ['/v2', '/v2/*', '/version', '/health']) scope.all(url, options, handler)
    })
  }
  return Object.assign(plugin, { openWatches: () => host.openWatches.size })
}

class ForwardingHost implements WatchServing {
  readonly openWatches = new Set<OpenWatch>()
  readonly limits: EtcdV2Limits
  readonly #upstream: V2Upstream
  readonly #confirmMsMax: number
  /** The last cluster id and Raft position a server reported (for replies made here). */
  #clusterId = ''
  #raft = { raftIndex: 0, term: 0 }

  constructor(deps: EtcdV2ForwardDeps) {
    this.#upstream = deps.upstream
    this.limits = { ...etcdV2LimitsDefault, ...deps.limits }
    this.#confirmMsMax = deps.watchConfirmMsMax ?? watchConfirmMsMaxDefault
  }

  async handle(request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const method = request.method
    const url = request.url
    if ((method === 'GET' || method === 'HEAD') && url.startsWith(keysPrefix) && /[?&]wait=/.test(url)) {
      let req: V2KeyRequest
      try {
        req = parseV2KeyRequest(method as V2Method, keyOfUrl(url, 0), mergeForm(undefined, url), 0)
      } catch (error) {
        return this.sendError(reply, error)
      }
      if (req.wait) return serveWatch(this, request, reply, req)
    }
    const body = request.body
    const headers: Record<string, string> = {}
    const contentType = request.headers['content-type']
    if (contentType !== undefined) headers['content-type'] = contentType
    let answer: ForwardAnswer
    try {
      answer = await this.#upstream.forward({
        method,
        path: url,
        headers,
        body: Buffer.isBuffer(body) && body.length > 0 ? body : undefined,
        idempotent: method === 'GET' || method === 'HEAD',
      })
    } catch (error) {
      return this.sendError(reply, error)
    }
    this.#learn(answer)
    reply.code(answer.statusCode)
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value !== undefined && !hopHeaders.has(name)) reply.header(name, value)
    }
    return reply.send(answer.body)
  }

  countGet(_ok: boolean): void {
    // The store counters (/v2/stats/store) are the servers'; forwarded reads count there.
  }

  sendError(reply: FastifyReply, error: unknown): FastifyReply {
    const { status, body } = v2ErrorReply(error)
    return reply
      .code(status)
      .headers(errorHeaders(this.#clusterId, body.index))
      .send(`${JSON.stringify(body)}\n`)
  }

  watch(req: WatchRequest): Watcher {
    return this.#upstream.watch(req)
  }

  headersAt(index: number): HeaderMap {
    return keyHeaders(this.#clusterId, index, this.#raft)
  }

  /** Resolves once a server accepted the watch (or it already has an event), rejects with its error. */
  confirm(watcher: Watcher): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const check = (): boolean => {
        if (watcher.status === 'canceled') {
          if (watcher.error !== undefined) reject(watcher.error)
          else resolve()
        } else if (watcher.status === 'syncing' && watcher.buffered === 0) {
          return false
        } else {
          resolve()
        }
        watcher.setListener(undefined)
        if (timer !== undefined) clearTimeout(timer)
        return true
      }
      if (check()) return
      watcher.setListener(() => void check())
      timer = setTimeout(() => {
        watcher.setListener(undefined)
        resolve()
      }, this.#confirmMsMax)
      timer.unref()
    })
  }

  #learn(answer: ForwardAnswer): void {
    const cluster = answer.headers['x-etcd-cluster-id']
    if (typeof cluster === 'string') this.#clusterId = cluster
    const raftIndex = Number(answer.headers['x-raft-index'])
    const term = Number(answer.headers['x-raft-term'])
    if (Number.isSafeInteger(raftIndex) && Number.isSafeInteger(term)) this.#raft = { raftIndex, term }
  }
}
