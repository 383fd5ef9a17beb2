/**
 * buildConsulApi(deps): the Consul v1 HTTP surface as a fastify plugin, served on the same port
 * as the etcd v2 API.
 *
 *   app.register(buildConsulApi({ store, catalog, writer, readBarrier, leader, peers,
 *                                 datacenter, nodeName, agent }))
 *
 * Routes: /v1/catalog/* (catalog-route.ts), /v1/health/* (health-route.ts), /v1/status/*
 * (status-route.ts), /v1/agent/* (agent-route.ts), /v1/kv/* (kv-route.ts), /v1/session/*
 * (session-route.ts), /v1/txn (txn-route.ts). docs/api-consul.md is the page for users.
 *
 * The plugin is one encapsulated context, so nothing here leaks into the etcd v2 routes:
 * - every request body arrives as a Buffer (the default JSON and text parsers are removed; one
 *   catch-all parser reads the raw bytes up to consulBodyBytesMax); routes decode with jsonBody;
 * - errors answer in Consul's shape (consulErrorReply: plain text and the code's status);
 * - an unknown /v1 path is a plain-text 404 (Go's "404 page not found"); a known path with a
 *   method it does not serve is a 405 with an Allow header, as Consul's MethodNotAllowedError;
 * - closing the fastify instance first aborts `closing`, which ends every blocking query (they
 *   answer with what they have), so close never waits out a 5-minute long poll.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { registerAgentRoutes } from './agent-route.ts'
import { registerCatalogRoutes } from './catalog-route.ts'
import type { ConsulApiDeps } from './deps.ts'
import { registerHealthRoutes } from './health-route.ts'
import { consulErrorReply, consulStatusOf } from './http.ts'
import { registerKvRoutes } from './kv-route.ts'
import { registerSessionRoutes } from './session-route.ts'
import { registerStatusRoutes } from './status-route.ts'
import { registerTxnRoutes } from './txn-route.ts'

export type { ConsulApiDeps, LeaderView } from './deps.ts'
export type { LocalAgent } from './local-agent.ts'

/** Largest request body (DESIGN.md: 1.5 MiB); past it, 413. */
export const consulBodyBytesMax = 1.5 * 1024 * 1024

/** The methods a /v1 path can be asked with; those a path does not serve answer 405. */
const methodsAnswered = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'PATCH'] as const

export interface ConsulApi {
  (app: FastifyInstance): Promise<void>
  /** Blocking catalog queries waiting now (for tests and metrics). */
  readonly waitingQueries: () => number
}

export function buildConsulApi(deps: ConsulApiDeps): ConsulApi {
  const plugin = async (app: FastifyInstance): Promise<void> => {
    const closing = new AbortController()
    app.addHook('preClose', async () => closing.abort())
    app.removeAllContentTypeParsers()
    app.addContentTypeParser(
      '*',
      { parseAs: 'buffer', bodyLimit: consulBodyBytesMax },
      (_request, body, done) => done(null, body),
    )
    app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      if (consulStatusOf(error) >= 500) request.log.error({ err: error }, 'consul api: request failed')
      return consulErrorReply(reply, error)
    })
    const methodsByUrl = new Map<string, Set<string>>()
    app.addHook('onRoute', (route: RouteOptions) => {
      let methods = methodsByUrl.get(route.url)
      if (methods === undefined) methodsByUrl.set(route.url, (methods = new Set()))
      for (const method of [route.method].flat()) methods.add(method)
    })

    registerCatalogRoutes(app, deps, closing.signal)
    registerHealthRoutes(app, deps, closing.signal)
    registerStatusRoutes(app, deps)
    registerAgentRoutes(app, deps, closing.signal)
    registerKvRoutes(app, deps, closing.signal)
    registerSessionRoutes(app, deps, closing.signal)
    registerTxnRoutes(app, deps)

    await app.register(
      async (v1) => {
        v1.setNotFoundHandler((_request, reply) =>
          reply.code(404).type('text/plain; charset=utf-8').send('404 page not found\n'),
        )
      },
      { prefix: '/v1' },
    )
    // Last, so that it sees every route registered above, in nested plugins too.
    await app.register(async (tail) => registerMethodNotAllowed(tail, methodsByUrl))
  }
  return Object.assign(plugin, { waitingQueries: () => deps.catalog.waiterCount })
}

/** For every path, a 405 (with Allow) on the methods it does not serve. */
function registerMethodNotAllowed(app: FastifyInstance, methodsByUrl: Map<string, Set<string>>): void {
  const snapshot = [...methodsByUrl].map(([url, methods]) => [url, [...methods]] as const)
  for (const [url, methods] of snapshot) {
    const served = new Set(methods)
    const missing = methodsAnswered.filter((m) => !served.has(m) && !(m === 'HEAD' && served.has('GET')))
    if (missing.length === 0) continue
    const allow = methodsAnswered.filter((m) => served.has(m)).join(', ')
    app.route({
      method: missing,
      url,
      handler: (request, reply) =>
        reply
          .code(405)
          .header('Allow', allow)
          .type('text/plain; charset=utf-8')
          .send(`method ${request.method} not allowed`),
    })
  }
}
