/**
 * The Consul v1 health endpoints (consul docs api-docs/health.mdx; reference A2, A5):
 *
 *   GET /v1/health/service/:name   [{Node, Service, Checks}]   passing, tag (AND), node-meta, filter
 *   GET /v1/health/checks/:service [HealthCheck]               node-meta, filter
 *   GET /v1/health/node/:node      [HealthCheck]               filter (serfHealth included)
 *   GET /v1/health/state/:state    [HealthCheck]               any|passing|warning|critical; node-meta, filter
 *
 * All are blocking queries (answerCatalogQuery) over CatalogState, whose health aggregation is
 * the contract: an entry's status is the worst of its own checks, its node's checks and, on an
 * agent's node, the machine check serfHealth; on a failed machine every check reads critical.
 * `?passing` keeps the entries whose status is passing (every check passing).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { CheckStatus } from '../../catalog/records.ts'
import type { HealthCheckView } from '../../catalog/state.ts'
import { answerCatalogQuery } from './blocking.ts'
import type { ConsulApiDeps } from './deps.ts'
import { healthCheckSchema, healthEntrySchema } from './filter/index.ts'
import { invalid, queryValues } from './http.ts'
import {
  applyFilter,
  hasTags,
  nodeMetaMatches,
  pathName,
  type Query,
  queryBool,
  readListQuery,
  renderCheck,
  renderHealthEntry,
} from './render.ts'

const states: readonly string[] = ['any', 'passing', 'warning', 'critical']

export function registerHealthRoutes(app: FastifyInstance, deps: ConsulApiDeps, closing: AbortSignal): void {
  app.get('/v1/health/service/*', (request, reply) => healthService(request, reply, deps, closing))
  app.get('/v1/health/checks/*', async (request, reply) => {
    const name = pathName(request.params, 'service name')
    return healthChecks(request, reply, deps, closing, {
      topics: [`service:${name.toLowerCase()}`],
      checks: () => deps.catalog.serviceChecks(name),
    })
  })
  app.get('/v1/health/node/*', async (request, reply) => {
    const name = pathName(request.params, 'node name')
    return healthChecks(request, reply, deps, closing, {
      topics: [`node:${name.toLowerCase()}`],
      checks: () => deps.catalog.nodeChecks(name),
    })
  })
  app.get('/v1/health/state/*', async (request, reply) => {
    const state = pathName(request.params, 'check state')
    if (!states.includes(state)) {
      throw invalid(
        `Invalid check state ${JSON.stringify(state.slice(0, 64))}: use any, passing, warning or critical`,
      )
    }
    return healthChecks(request, reply, deps, closing, {
      // A node record (an agent's node appearing or going) adds or removes its serfHealth check
      // without touching `checks` (state.ts), so this list also wakes on `nodes`.
      topics: ['checks', 'nodes'],
      checks: () => deps.catalog.checksInState(state as CheckStatus | 'any'),
    })
  })
}

async function healthService(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: ConsulApiDeps,
  closing: AbortSignal,
): Promise<FastifyReply> {
  const query = request.query as Query
  const { params, filter, meta } = readListQuery(query, deps, healthEntrySchema)
  const name = pathName(request.params, 'service name')
  const tags = queryValues(query, 'tag')
  const passing = queryBool(query, 'passing') ?? false
  const compute = () =>
    applyFilter(
      filter,
      deps.catalog
        .serviceEntries(name)
        .filter(
          (e) =>
            (!passing || e.status === 'passing') &&
            hasTags(e.service.record.Tags, tags) &&
            nodeMetaMatches(e.node.record.Meta, meta),
        )
        .map(renderHealthEntry),
    )
  const topics = [`service:${name.toLowerCase()}`]
  return answerCatalogQuery(request, reply, deps, params, { topics, compute }, closing)
}

interface ChecksQuery {
  topics: string[]
  checks(): HealthCheckView[]
}

/** The three endpoints that answer a list of checks: node-meta (on the check's node), filter. */
async function healthChecks(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: ConsulApiDeps,
  closing: AbortSignal,
  what: ChecksQuery,
): Promise<FastifyReply> {
  const query = request.query as Query
  const { params, filter, meta } = readListQuery(query, deps, healthCheckSchema)
  const topics = meta.length > 0 && !what.topics.includes('nodes') ? [...what.topics, 'nodes'] : what.topics
  const compute = () => {
    let checks = what.checks()
    if (meta.length > 0) {
      checks = checks.filter((c) => nodeMetaMatches(deps.catalog.nodeEntry(c.Node)?.record.Meta ?? {}, meta))
    }
    return applyFilter(filter, checks.map(renderCheck))
  }
  return answerCatalogQuery(request, reply, deps, params, { topics, compute }, closing)
}
