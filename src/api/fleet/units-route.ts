/**
 * /fleet/v1/units: list (paged), get, create or change (PUT), destroy (DELETE), and Cairn's
 * /fleet/v1/units/<name>/status. Only units/ records are written here; assign/, states/,
 * unplaced/ and rollouts/ are read (the engine and the runners write them).
 *
 * Writes read the unit (and an instance's template), plan (unit-plan.ts), and submit one txn whose
 * compares are the modRevisions read (0 for a key that was absent), so two writers can never both
 * act on the same read: the loser reads and plans again, at most writeAttemptsMax times, then
 * answers FLEET_WRITE_CONTENDED (503).
 *
 * Names come from a wildcard route and are validated here (fastify's named parameters stop at 100
 * characters; unit names may have 256).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { CairnError } from '../../errors.ts'
import type { KvStore } from '../../kv/kv-store.ts'
import type { Compare, KeyValue } from '../../kv/mvcc.ts'
import {
  decodeRollout,
  decodeUnit,
  decodeUnplaced,
  rolloutKey,
  type UnitRecord,
  unitKey,
  unitsPrefix,
  unplacedKey,
} from '../../scheduler/records.ts'
import { parseUnitName, templateOf, type UnitName } from '../../scheduler/unit-name.ts'
import type { FleetApiDeps } from './deps.ts'
import { fleetErrorReply, invalid, jsonBody, queryBool, queryValue } from './http.ts'
import { fleetLimits } from './limits.ts'
import { decodePageToken, readPage } from './page.ts'
import { decodeUnitBody } from './unit-body.ts'
import { planUnitPut } from './unit-plan.ts'
import { type Placements, readPlacements, renderUnit, textOf } from './unit-view.ts'

type Query = Record<string, string | string[] | undefined>

interface StoredUnit {
  record: UnitRecord | undefined
  /** 0 when the key is absent. */
  modRevision: number
}

export function registerUnitsRoutes(app: FastifyInstance, deps: FleetApiDeps): void {
  const guard =
    (handler: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      try {
        return await handler(request, reply)
      } catch (error) {
        if (reply.sent) return reply
        if (!(error instanceof CairnError)) request.log.error({ err: error }, 'fleet api: request failed')
        return fleetErrorReply(reply, error)
      }
    }
  app.get(
    '/fleet/v1/units',
    guard((request) => listUnits(deps, request.query as Query)),
  )
  app.get(
    '/fleet/v1/units/*',
    guard(async (request, reply) => {
      const { name, status } = unitPath(request)
      return status ? await unitStatus(deps, name) : await getUnit(deps, name, reply)
    }),
  )
  app.put(
    '/fleet/v1/units/*',
    guard(async (request, reply) => {
      const { name, status } = unitPath(request)
      if (status) throw invalid('PUT is not served on /status')
      const replace = queryBool(request.query as Query, 'replace')
      const body = decodeUnitBody(jsonBody(request.body), name.name)
      const code = await putUnit(deps, name, body, replace)
      return reply.code(code).send()
    }),
  )
  app.delete(
    '/fleet/v1/units/*',
    guard(async (request, reply) => {
      const { name, status } = unitPath(request)
      if (status) throw invalid('DELETE is not served on /status')
      await deleteUnit(deps, name)
      return reply.code(204).send()
    }),
  )
}

/** `<name>` or `<name>/status` from the wildcard; a bad name is UNIT_NAME_INVALID (400). */
function unitPath(request: FastifyRequest): { name: UnitName; status: boolean } {
  const rest = (request.params as Record<string, string | undefined>)['*'] ?? ''
  const status = rest.endsWith('/status')
  const text = status ? rest.slice(0, -'/status'.length) : rest
  return { name: parseUnitName(text), status }
}

async function readUnit(store: Pick<KvStore, 'range'>, name: string): Promise<StoredUnit> {
  const kv = (await store.range({ key: unitKey(name) })).kvs[0]
  if (kv === undefined) return { record: undefined, modRevision: 0 }
  const record = decodeUnit(kv.value)
  // A record stored under another unit's key is not that unit (hand-written through v2).
  return { record: record?.name === name ? record : undefined, modRevision: kv.modRevision }
}

function notFound(name: string): CairnError {
  return new CairnError('FLEET_UNIT_NOT_FOUND', name)
}

/** Template records for the instances among `records` whose template is not among them. */
async function templatesOf(
  store: Pick<KvStore, 'range'>,
  records: readonly UnitRecord[],
): Promise<Map<string, UnitRecord>> {
  const out = new Map<string, UnitRecord>()
  for (const r of records) if (r.version !== undefined) out.set(r.name, r)
  const missing = new Set<string>()
  for (const r of records) if (r.template !== undefined && !out.has(r.template)) missing.add(r.template)
  const read = await Promise.all([...missing].map((name) => readUnit(store, name)))
  for (const stored of read) if (stored.record !== undefined) out.set(stored.record.name, stored.record)
  return out
}

function pickUnit(kv: KeyValue): UnitRecord | undefined {
  const record = decodeUnit(kv.value)
  return record !== undefined && unitKey(record.name) === kv.key ? record : undefined
}

async function listUnits(deps: FleetApiDeps, query: Query): Promise<unknown> {
  const after = decodePageToken(queryValue(query, 'nextPageToken'))
  const page = await readPage(deps.store, unitsPrefix, after, pickUnit)
  const [templates, placements] = await Promise.all([
    templatesOf(deps.store, page.items),
    readPlacements(deps.store),
  ])
  const units = page.items.map((r) => renderUnit(r, textOf(r, templates.get(r.template ?? '')), placements))
  // fleet's UnitPage: both fields are omitted when empty.
  const out: Record<string, unknown> = {}
  if (units.length > 0) out['units'] = units
  if (page.nextPageToken !== undefined) out['nextPageToken'] = page.nextPageToken
  return out
}

async function readWithTemplate(
  store: Pick<KvStore, 'range'>,
  name: UnitName,
): Promise<{ unit: StoredUnit; template: StoredUnit | undefined }> {
  const templateName = templateOf(name)
  const [unit, template] = await Promise.all([
    readUnit(store, name.name),
    templateName === undefined ? undefined : readUnit(store, templateName),
  ])
  return { unit, template }
}

async function getUnit(deps: FleetApiDeps, name: UnitName, reply: FastifyReply): Promise<unknown> {
  const [{ unit, template }, placements] = await Promise.all([
    readWithTemplate(deps.store, name),
    readPlacements(deps.store),
  ])
  if (unit.record === undefined) throw notFound(name.name)
  return reply.send(renderUnit(unit.record, textOf(unit.record, template?.record), placements))
}

async function putUnit(
  deps: FleetApiDeps,
  name: UnitName,
  body: ReturnType<typeof decodeUnitBody>,
  replace: boolean,
): Promise<number> {
  const clock = deps.clock ?? Date.now
  for (let attempt = 0; attempt < fleetLimits.writeAttemptsMax; attempt++) {
    const { unit, template } = await readWithTemplate(deps.store, name)
    const plan = planUnitPut({
      name,
      body,
      existing: unit.record,
      template: template?.record,
      replace,
      nowMs: clock(),
    })
    if (plan.write === undefined) return plan.status
    const compare: Compare[] = [
      { key: unitKey(name.name), target: 'modRevision', result: 'equal', value: unit.modRevision },
    ]
    if (template !== undefined) {
      const key = unitKey(templateOf(name) as string)
      compare.push({ key, target: 'modRevision', result: 'equal', value: template.modRevision })
    }
    const result = await deps.store.txn({
      compare,
      success: [{ type: 'put', key: unitKey(name.name), value: JSON.stringify(plan.write) }],
      failure: [],
    })
    if (result.succeeded) return plan.status
  }
  throw new CairnError('FLEET_WRITE_CONTENDED', name.name)
}

/** Instances of `template` that are submitted, at most `limit` of them. */
async function instancesOf(
  store: Pick<KvStore, 'range'>,
  template: UnitName,
  limit: number,
): Promise<string[]> {
  const prefix = `${unitsPrefix}${template.prefix}@`
  const found: string[] = []
  let after = ''
  do {
    const page = await readPage(store, prefix, after, (kv) => {
      const record = pickUnit(kv)
      return record?.template === template.name ? record.name : undefined
    })
    found.push(...page.items)
    after = page.nextPageToken === undefined ? '' : decodePageToken(page.nextPageToken)
  } while (after !== '' && found.length < limit)
  return found.slice(0, limit)
}

async function deleteUnit(deps: FleetApiDeps, name: UnitName): Promise<void> {
  for (let attempt = 0; attempt < fleetLimits.writeAttemptsMax; attempt++) {
    const unit = await readUnit(deps.store, name.name)
    if (unit.modRevision === 0) throw notFound(name.name)
    if (name.kind === 'template') {
      const instances = await instancesOf(deps.store, name, 4)
      if (instances.length > 0) {
        const shown = instances.slice(0, 3).join(', ') + (instances.length > 3 ? ', ...' : '')
        throw new CairnError('FLEET_TEMPLATE_IN_USE', `${name.name} is the template of ${shown}`)
      }
    }
    const result = await deps.store.txn({
      compare: [{ key: unitKey(name.name), target: 'modRevision', result: 'equal', value: unit.modRevision }],
      success: [{ type: 'delete', key: unitKey(name.name) }],
      failure: [],
    })
    if (result.succeeded) return
  }
  throw new CairnError('FLEET_WRITE_CONTENDED', name.name)
}

/** Cairn's status: the unit, where it is assigned, what the runners report, why it waits. */
async function unitStatus(deps: FleetApiDeps, name: UnitName): Promise<unknown> {
  const [{ unit, template }, placements, unplacedKv, rolloutKv] = await Promise.all([
    readWithTemplate(deps.store, name),
    readPlacements(deps.store),
    deps.store.range({ key: unplacedKey(name.name) }),
    name.kind === 'template' ? deps.store.range({ key: rolloutKey(name.name) }) : undefined,
  ])
  if (unit.record === undefined) throw notFound(name.name)
  const record = unit.record
  const text = textOf(record, template?.record)
  const out: Record<string, unknown> = {
    unit: renderUnit(record, text, placements),
    file: statusFile(record, template?.record),
    assignments: (placements.assignments.get(name.name) ?? []).map(({ record: a }) => ({
      machineID: a.machine,
      desiredState: a.desiredState,
      hash: a.hash,
      engine: a.engine,
      placedMs: a.placedMs,
    })),
    states: (placements.states.get(name.name) ?? []).map(({ record: s }) => ({ ...s, machineID: s.machine })),
  }
  const unplaced = unplacedKv.kvs[0] === undefined ? undefined : decodeUnplaced(unplacedKv.kvs[0].value)
  if (unplaced !== undefined) out['unplaced'] = { reason: unplaced.reason, sinceMs: unplaced.sinceMs }
  const rolloutValue = rolloutKv?.kvs[0]?.value
  const rollout = rolloutValue === undefined ? undefined : decodeRollout(rolloutValue)
  if (rollout !== undefined) out['rollout'] = rollout
  if (name.kind === 'template') out['instances'] = await instancesOf(deps.store, name, fleetLimits.pageSize)
  return out
}

function statusFile(
  record: UnitRecord,
  template: UnitRecord | undefined,
): Record<string, unknown> | undefined {
  const version = record.version ?? template?.version
  if (version === undefined) return undefined
  const file: Record<string, unknown> = {
    name: record.version !== undefined ? record.name : record.template,
    ...version,
  }
  if (record.previous !== undefined) file['previousHash'] = record.previous.hash
  return file
}

export type { Placements }
