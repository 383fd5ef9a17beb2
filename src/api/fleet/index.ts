/**
 * buildFleetApi(deps): the fleet v1 HTTP surface as a fastify plugin, served on every agent's
 * HTTP port next to the etcd v2 and Consul APIs.
 *
 *   app.register(buildFleetApi({ store, catalog, journals, nodeName }))
 *
 * Routes (docs/api-fleet.md is the page for users):
 *   GET    /fleet/v1/units                    paged Units            (units-route.ts)
 *   GET    /fleet/v1/units/<name>             one Unit
 *   PUT    /fleet/v1/units/<name>[?replace]   create (201) or change (204)
 *   DELETE /fleet/v1/units/<name>             destroy (204)
 *   GET    /fleet/v1/units/<name>/status      Cairn: assignments, states, unplaced, rollout
 *   GET    /fleet/v1/state                    paged UnitStates       (state-route.ts)
 *   GET    /fleet/v1/machines                 paged Machines
 *   GET    /fleet/v1/journal/<name>           Cairn: the unit's journal (journal-route.ts)
 *
 * The plugin is one encapsulated context, so nothing here leaks into the other surfaces:
 * - bodies arrive as Buffers (every parser replaced by one that reads raw bytes up to
 *   fleetLimits.bodyBytesMax, whatever the content type); routes decode them with jsonBody;
 * - every error answers in fleet's shape `{"error":{"code","message"}}` (http.ts), including an
 *   unknown /fleet/v1 path (404) and a method a path does not serve (405, with Allow);
 * - closing the fastify instance ends every followed journal first, so close never waits on one.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { FleetApiDeps } from './deps.ts'
import { fleetErrorReply, fleetStatusOf } from './http.ts'
import { registerJournalRoute } from './journal-route.ts'
import { fleetLimits } from './limits.ts'
import { registerStateRoutes } from './state-route.ts'
import { registerUnitsRoutes } from './units-route.ts'

export type { FleetApiDeps } from './deps.ts'
export { fleetLimits } from './limits.ts'

/** The methods each route pattern serves; every other method there is a 405. */
const served: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['/fleet/v1/units', ['GET']],
  ['/fleet/v1/units/*', ['GET', 'PUT', 'DELETE']],
  ['/fleet/v1/state', ['GET']],
  ['/fleet/v1/machines', ['GET']],
  ['/fleet/v1/journal/*', ['GET']],
]
const methodsAnswered = ['GET', 'PUT', 'POST', 'DELETE', 'PATCH'] as const

export function buildFleetApi(deps: FleetApiDeps): (app: FastifyInstance) => Promise<void> {
  return async (app: FastifyInstance): Promise<void> => {
    const closing = new AbortController()
    app.addHook('preClose', async () => closing.abort())
    app.removeAllContentTypeParsers()
    app.addContentTypeParser(
      '*',
      { parseAs: 'buffer', bodyLimit: fleetLimits.bodyBytesMax },
      (_request, body, done) => done(null, body),
    )
    app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      if (fleetStatusOf(error) >= 500) request.log.error({ err: error }, 'fleet api: request failed')
      return fleetErrorReply(reply, error)
    })
    registerUnitsRoutes(app, deps)
    registerStateRoutes(app, deps)
    registerJournalRoute(app, deps, closing.signal)
    for (const [url, methods] of served) {
      const missing = methodsAnswered.filter((m) => !methods.includes(m))
      app.route({
        method: missing,
        url,
        handler: (request, reply) =>
          fleetErrorReply(
            reply.header('Allow', methods.join(', ')),
            httpError(405, `method ${request.method} not allowed on ${url}`),
          ),
      })
    }
    await app.register(
      async (v1) => {
        v1.setNotFoundHandler((request, reply) =>
          fleetErrorReply(reply, httpError(404, `no such path ${request.url.slice(0, 200)}`)),
        )
      },
      { prefix: '/fleet/v1' },
    )
  }
}

function httpError(statusCode: number, message: string): Error {
  return Object.assign(new Error(message), { statusCode })
}
