/**
 * The Consul v1 agent endpoints (consul docs api-docs/agent/*.mdx; reference A1): this agent's own
 * services and checks, through the LocalAgent interface (local-agent.ts), which validates every
 * body and throws CairnErrors before it changes anything. This layer only reads parameters,
 * decodes JSON, renders answers and maps errors (consulErrorReply).
 *
 *   PUT /v1/agent/service/register[?replace-existing-checks]     body: the service definition
 *   PUT /v1/agent/service/deregister/:id
 *   PUT /v1/agent/service/maintenance/:id?enable=true|false[&reason=]
 *   PUT /v1/agent/maintenance?enable=true|false[&reason=]
 *   GET /v1/agent/services[?filter]                              {id: AgentService}
 *   GET /v1/agent/service/:id[?hash=&wait=]                      AgentService + ContentHash; 404
 *   GET /v1/agent/checks[?filter]                                {id: AgentCheck}
 *   PUT /v1/agent/check/register                                 body: the check definition
 *   PUT /v1/agent/check/deregister/:id
 *   PUT /v1/agent/check/{pass,warn,fail}/:id[?note=]
 *   PUT /v1/agent/check/update/:id                               body: {Status, Output}
 *   GET /v1/agent/members[?wan]   GET /v1/agent/self
 *   GET /v1/agent/health/service/name/:name[?format=text]        200 / 429 / 503 / 404
 *   GET /v1/agent/health/service/id/:id[?format=text]
 *
 * Writes answer 200 with an empty body, as Consul does. `GET /v1/agent/service/:id?hash=H` blocks
 * while the service's content hash is H: it wakes on changes of this node in the catalog (the
 * agent syncs every local change there), and at the latest after `wait` plus jitter.
 */
import { createHash } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { CheckStatus } from '../../catalog/records.ts'
import type { ConsulApiDeps } from './deps.ts'
import { agentCheckSchema, agentServiceSchema } from './filter/index.ts'
import { invalid, jsonBody, queryValue, readParams } from './http.ts'
import type { AgentCheckView, AgentServiceView } from './local-agent.ts'
import {
  applyFilterToMap,
  BodyFields,
  compileFilter,
  goBool,
  ownMap,
  pathName,
  type Query,
  queryBool,
  renderAgentCheck,
  renderAgentService,
} from './render.ts'

/** Consul's aggregated statuses; `maintenance` wins over everything (api.HealthChecks.AggregatedStatus). */
export type AggregatedStatus = CheckStatus | 'maintenance'

export const nodeMaintenanceCheckId = '_node_maintenance'
export const serviceMaintenanceCheckPrefix = '_service_maintenance:'

/** GET /v1/agent/health/service/*: the status code of each aggregated status. */
export const statusCodeOfAggregate: Readonly<Record<AggregatedStatus, number>> = {
  passing: 200,
  warning: 429,
  critical: 503,
  maintenance: 503,
}

export function registerAgentRoutes(app: FastifyInstance, deps: ConsulApiDeps, closing: AbortSignal): void {
  registerServiceRoutes(app, deps, closing)
  registerCheckRoutes(app, deps)
  registerHealthRoutes(app, deps)
  app.get('/v1/agent/members', async (_request, reply) => reply.send(deps.agent.members()))
  app.get('/v1/agent/self', async (_request, reply) => reply.send(deps.agent.self()))
}

function registerServiceRoutes(app: FastifyInstance, deps: ConsulApiDeps, closing: AbortSignal): void {
  const agent = deps.agent
  app.put('/v1/agent/service/register', async (request, reply) => {
    const replaceExistingChecks = queryBool(request.query as Query, 'replace-existing-checks') ?? false
    await agent.registerService(jsonBody(request.body), { replaceExistingChecks })
    return reply.send()
  })
  app.put('/v1/agent/service/deregister/*', async (request, reply) => {
    await agent.deregisterService(pathName(request.params, 'service id'))
    return reply.send()
  })
  app.put('/v1/agent/service/maintenance/*', async (request, reply) => {
    const id = pathName(request.params, 'service id')
    const { enable, reason } = maintenanceParams(request.query as Query)
    await agent.setServiceMaintenance(id, enable, reason)
    return reply.send()
  })
  app.put('/v1/agent/maintenance', async (request, reply) => {
    const { enable, reason } = maintenanceParams(request.query as Query)
    await agent.setNodeMaintenance(enable, reason)
    return reply.send()
  })
  app.get('/v1/agent/services', async (request, reply) => {
    const filter = compileFilter(readParams(request.query as Query).filter, agentServiceSchema)
    return reply.send(
      applyFilterToMap(
        filter,
        byId(agent.services(), (s) => s.ID, renderAgentService),
      ),
    )
  })
  app.get('/v1/agent/service/*', (request, reply) => agentService(request, reply, deps, closing))
}

function registerCheckRoutes(app: FastifyInstance, deps: ConsulApiDeps): void {
  const agent = deps.agent
  app.get('/v1/agent/checks', async (request, reply) => {
    const filter = compileFilter(readParams(request.query as Query).filter, agentCheckSchema)
    return reply.send(
      applyFilterToMap(
        filter,
        byId(agent.checks(), (c) => c.CheckID, renderAgentCheck),
      ),
    )
  })
  app.put('/v1/agent/check/register', async (request, reply) => {
    await agent.registerCheck(jsonBody(request.body))
    return reply.send()
  })
  app.put('/v1/agent/check/deregister/*', async (request, reply) => {
    await agent.deregisterCheck(pathName(request.params, 'check id'))
    return reply.send()
  })
  for (const [verb, status] of [
    ['pass', 'passing'],
    ['warn', 'warning'],
    ['fail', 'critical'],
  ] as const) {
    app.put(`/v1/agent/check/${verb}/*`, async (request, reply) => {
      const id = pathName(request.params, 'check id')
      await agent.updateTtlCheck(id, status, queryValue(request.query as Query, 'note') ?? '')
      return reply.send()
    })
  }
  app.put('/v1/agent/check/update/*', async (request, reply) => {
    const id = pathName(request.params, 'check id')
    const body = BodyFields.of(jsonBody(request.body))
    const status = body.string('Status') ?? ''
    if (status !== 'passing' && status !== 'warning' && status !== 'critical') {
      throw invalid(`Invalid check status: '${status.slice(0, 64)}'`)
    }
    await agent.updateTtlCheck(id, status, body.string('Output') ?? '')
    return reply.send()
  })
}

/** Aggregated health of this agent's services, for load balancers (A1). */
function registerHealthRoutes(app: FastifyInstance, deps: ConsulApiDeps): void {
  const agent = deps.agent
  app.get('/v1/agent/health/service/name/*', async (request, reply) => {
    const name = pathName(request.params, 'service name')
    const services = agent.services().filter((s) => s.Service === name)
    if (services.length === 0) {
      return wantsText(request)
        ? sendText(reply, 404, `ServiceName ${name} Not Found`)
        : reply.code(404).send([])
    }
    const checks = agent.checks()
    const entries = services.map((s) => healthOf(s, checks))
    const worst = worstOf(entries.map((e) => e.AggregatedStatus))
    const code = statusCodeOfAggregate[worst]
    return wantsText(request) ? sendText(reply, code, worst) : reply.code(code).send(entries)
  })
  app.get('/v1/agent/health/service/id/*', async (request, reply) => {
    const id = pathName(request.params, 'service id')
    const service = agent.services().find((s) => s.ID === id)
    if (service === undefined) return sendText(reply, 404, `ServiceId ${id} not found`)
    const entry = healthOf(service, agent.checks())
    const code = statusCodeOfAggregate[entry.AggregatedStatus]
    return wantsText(request) ? sendText(reply, code, entry.AggregatedStatus) : reply.code(code).send(entry)
  })
}

/** `?enable` is required and must parse as a Go bool; `?reason` is optional. */
function maintenanceParams(query: Query): { enable: boolean; reason: string } {
  const raw = queryValue(query, 'enable')
  if (raw === undefined) throw invalid('Missing value for enable')
  const enable = goBool(raw)
  if (enable === undefined) throw invalid(`Invalid value for enable: ${JSON.stringify(raw.slice(0, 64))}`)
  return { enable, reason: queryValue(query, 'reason') ?? '' }
}

function byId<T>(
  items: readonly T[],
  idOf: (item: T) => string,
  render: (item: T) => Record<string, unknown>,
): Record<string, Record<string, unknown>> {
  const out = ownMap<Record<string, unknown>>()
  for (const item of items) out[idOf(item)] = render(item)
  return out
}

interface AgentServiceHealth {
  AggregatedStatus: AggregatedStatus
  Service: Record<string, unknown>
  Checks: Record<string, unknown>[]
}

/** The service with its own checks and the node's checks, as Consul's agentHealthService. */
export function healthOf(service: AgentServiceView, checks: readonly AgentCheckView[]): AgentServiceHealth {
  const mine = checks.filter((c) => c.ServiceID === service.ID || c.ServiceID === '')
  return {
    AggregatedStatus: aggregate(mine),
    Service: renderAgentService(service),
    Checks: mine.map(renderAgentCheck),
  }
}

/** Consul's AggregatedStatus: maintenance if a maintenance check exists, else the worst status. */
export function aggregate(checks: readonly AgentCheckView[]): AggregatedStatus {
  let worst: AggregatedStatus = 'passing'
  for (const check of checks) {
    if (check.CheckID === nodeMaintenanceCheckId || check.CheckID.startsWith(serviceMaintenanceCheckPrefix)) {
      return 'maintenance'
    }
    worst = worstOf([worst, check.Status])
  }
  return worst
}

const aggregateRank: Readonly<Record<AggregatedStatus, number>> = {
  passing: 0,
  warning: 1,
  critical: 2,
  maintenance: 3,
}

function worstOf(statuses: readonly AggregatedStatus[]): AggregatedStatus {
  let worst: AggregatedStatus = 'passing'
  for (const status of statuses) if (aggregateRank[status] > aggregateRank[worst]) worst = status
  return worst
}

/** Consul's returnTextPlain: an Accept of text/plain, or `?format=text` (format wins). */
function wantsText(request: FastifyRequest): boolean {
  const format = queryValue(request.query as Query, 'format')
  if (format !== undefined && format !== '') return format === 'text'
  return (request.headers.accept ?? '').startsWith('text/plain')
}

function sendText(reply: FastifyReply, code: number, text: string): FastifyReply {
  return reply.code(code).type('text/plain; charset=utf-8').send(text)
}

// ---- GET /v1/agent/service/:id, with hash-based blocking ----

function serviceView(deps: ConsulApiDeps, id: string): Record<string, unknown> | undefined {
  const service = deps.agent.services().find((s) => s.ID === id)
  if (service === undefined) return undefined
  const view = renderAgentService(service)
  const hash = createHash('sha256').update(JSON.stringify(view)).digest('hex').slice(0, 16)
  return { ...view, ContentHash: hash }
}

async function agentService(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: ConsulApiDeps,
  closing: AbortSignal,
): Promise<FastifyReply> {
  const id = pathName(request.params, 'service id')
  const query = request.query as Query
  const params = readParams(query)
  const hash = queryValue(query, 'hash') ?? ''
  let view = serviceView(deps, id)
  if (view !== undefined && hash !== '' && view.ContentHash === hash) {
    view = await waitForNewHash(request, deps, params.waitMs, closing, () => serviceView(deps, id), hash)
  }
  if (view === undefined) return sendText(reply, 404, `unknown service ID: ${id}`)
  reply.header('X-Consul-ContentHash', String(view.ContentHash))
  return reply.send(view)
}

/** Waits (on this node's catalog topic) until the view's hash is not `hash`, or the wait ends. */
async function waitForNewHash(
  request: FastifyRequest,
  deps: ConsulApiDeps,
  waitMs: number,
  closing: AbortSignal,
  compute: () => Record<string, unknown> | undefined,
  hash: string,
): Promise<Record<string, unknown> | undefined> {
  const topics = [`node:${deps.nodeName.toLowerCase()}`]
  const random = deps.random ?? Math.random
  const controller = new AbortController()
  const abort = (): void => controller.abort()
  const timer = setTimeout(abort, waitMs + Math.floor(random() * (waitMs / 16)))
  request.raw.once('close', abort)
  closing.addEventListener('abort', abort, { once: true })
  let view = compute()
  try {
    let seen = deps.catalog.indexOf(topics)
    while (!controller.signal.aborted && view?.ContentHash === hash) {
      await deps.catalog.waitForChange(topics, seen, controller.signal)
      seen = deps.catalog.indexOf(topics)
      view = compute()
    }
  } finally {
    clearTimeout(timer)
    request.raw.off('close', abort)
    closing.removeEventListener('abort', abort)
  }
  return view
}
