/**
 * registerStoreRoutes(app, store, closing): the internal store API that client agents use to reach
 * a server's KvStore over HTTP (docs/store-api.md; the client is src/kv/remote-kv-store.ts).
 *
 *   POST /_cairn/store/v1/range | put | delete | txn                 JSON request → JSON result
 *   POST /_cairn/store/v1/lease/grant | keepalive | revoke | ttl
 *   POST /_cairn/store/v1/changes      {key, recursive, includeHidden, sinceRevision} → {revision, lastRevision}
 *   GET  /_cairn/store/v1/watch?key=&recursive=&includeHidden=&stream=&sinceRevision=   NDJSON
 *
 * Bodies are the request objects of mvcc.ts / lease-ops.ts (plus `serializable` for reads),
 * checked for shape and types (bodies.ts: 400 KV_COMMAND_INVALID, nothing changed); answers are the
 * result objects; every failure is `{code, message, cause?, index?, oldestIndex?}` (errors.ts).
 *
 * The routes live in their own encapsulated context under the prefix: their own error handler,
 * not-found handler and body limit, nothing leaking into the other surfaces. Call it before the
 * app listens (the plugin is loaded with the others when the app becomes ready).
 *
 * Ends: when `closing` aborts, or the app closes (preClose), every open watch stream ends with a
 * KV_WATCHER_CLEARED cancel line (clients resume on another server) and new watches are refused
 * with 503; requests already in flight finish.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { KvError } from '../../kv/kv-error.ts'
import type { KvStore } from '../../kv/kv-store.ts'
import { errorBodyOf, storeApiPrefix } from '../../kv/store-wire.ts'
import {
  readChangesBody,
  readDeleteBody,
  readLeaseGrantBody,
  readLeaseIdBody,
  readLeaseTtlBody,
  readPutBody,
  readRangeBody,
  readTxnBody,
} from './bodies.ts'
import { storeErrorReply } from './errors.ts'
import { makeStoreApiLimits, type StoreApiLimits } from './limits.ts'
import { WatchStreams } from './watch-route.ts'

export { type StoreApiLimits, storeApiLimitsDefault } from './limits.ts'

export function registerStoreRoutes(
  app: FastifyInstance,
  store: KvStore,
  closing: AbortSignal,
  limits: Partial<StoreApiLimits> = {},
): void {
  const config = makeStoreApiLimits(limits)
  void app.register(
    async (scope) => {
      const streams = new WatchStreams(store, config)
      const close = (): void => streams.close()
      if (closing.aborted) close()
      else closing.addEventListener('abort', close, { once: true })
      scope.addHook('preClose', async () => {
        closing.removeEventListener('abort', close)
        close()
      })
      scope.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
        const { status, body, unexpected } = storeErrorReply(error, config.bodyBytesMax)
        if (unexpected) request.log.error({ err: error, url: request.url }, 'store api: unexpected error')
        return reply.code(status).send(body)
      })
      scope.setNotFoundHandler((request, reply) => {
        const error = new KvError(
          'KV_COMMAND_INVALID',
          `no store endpoint ${request.method} ${request.url}`,
          0,
        )
        return reply.code(404).send(errorBodyOf(error))
      })
      registerRoutes(scope, store, config.bodyBytesMax)
      scope.get('/watch', (request, reply) => streams.serve(request, reply))
    },
    { prefix: storeApiPrefix },
  )
}

function registerRoutes(scope: FastifyInstance, store: KvStore, bodyLimit: number): void {
  const post = (path: string, handle: (body: unknown) => Promise<unknown>): void => {
    scope.post(path, { bodyLimit }, async (request) => handle(request.body))
  }
  post('/range', (body) => {
    const { req, options } = readRangeBody(body)
    return store.range(req, options)
  })
  post('/put', (body) => store.put(readPutBody(body)))
  post('/delete', (body) => store.delete(readDeleteBody(body)))
  post('/txn', (body) => store.txn(readTxnBody(body)))
  post('/lease/grant', (body) => store.leaseGrant(readLeaseGrantBody(body)))
  post('/lease/keepalive', (body) => store.leaseKeepAlive(readLeaseIdBody(body, 'lease/keepalive')))
  post('/lease/revoke', (body) => store.leaseRevoke(readLeaseIdBody(body, 'lease/revoke')))
  post('/changes', (body) => {
    const { spec, sinceRevision, options } = readChangesBody(body)
    return store.lastChange(spec, sinceRevision, options)
  })
  post('/lease/ttl', async (body) => {
    const { id, options } = readLeaseTtlBody(body)
    return { lease: (await store.leaseTimeToLive(id, options)) ?? null }
  })
}
