/**
 * GET /fleet/v1/state?machineID=&unitName= (fleet's UnitStates, paged) and GET /fleet/v1/machines
 * (fleet's Machines, paged). States are the runners' states/ records; machines are the agents
 * whose machine lease is alive, as this agent's catalog copy knows them, with the node's address
 * as primaryIP and its --metadata as metadata.
 */
import type { FastifyInstance } from 'fastify'
import { catalogNameBytesMax } from '../../catalog/records.ts'
import {
  decodeUnitState,
  machineStatesPrefix,
  parseSchedulerKey,
  statesPrefix,
} from '../../scheduler/records.ts'
import { unitNameFault } from '../../scheduler/unit-name.ts'
import type { FleetApiDeps } from './deps.ts'
import { fleetErrorReply, invalid, queryValue } from './http.ts'
import { fleetLimits } from './limits.ts'
import { decodePageToken, encodePageToken, readPage } from './page.ts'
import { type FleetMachine, type FleetUnitState, renderUnitState } from './unit-view.ts'

type Query = Record<string, string | string[] | undefined>

export function registerStateRoutes(app: FastifyInstance, deps: FleetApiDeps): void {
  app.get('/fleet/v1/state', async (request, reply) => {
    try {
      return await listStates(deps, request.query as Query)
    } catch (error) {
      return fleetErrorReply(reply, error)
    }
  })
  app.get('/fleet/v1/machines', async (request, reply) => {
    try {
      return listMachines(deps, request.query as Query)
    } catch (error) {
      return fleetErrorReply(reply, error)
    }
  })
}

async function listStates(deps: FleetApiDeps, query: Query): Promise<unknown> {
  const machineID = queryValue(query, 'machineID')
  const unitName = queryValue(query, 'unitName')
  if (machineID !== undefined && (machineID === '' || Buffer.byteLength(machineID) > catalogNameBytesMax))
    throw invalid(`machineID: want a machine id of 1 to ${catalogNameBytesMax} bytes`)
  if (unitName !== undefined) {
    const fault = unitNameFault(unitName)
    if (fault !== undefined) throw invalid(`unitName ${JSON.stringify(unitName.slice(0, 300))}: ${fault}`)
  }
  const after = decodePageToken(queryValue(query, 'nextPageToken'))
  const prefix = machineID === undefined ? statesPrefix : machineStatesPrefix(machineID)
  const page = await readPage(deps.store, prefix, after, (kv): FleetUnitState | undefined => {
    const key = parseSchedulerKey(kv.key)
    if (key?.kind !== 'state' || (unitName !== undefined && key.unit !== unitName)) return undefined
    const state = decodeUnitState(kv.value)
    return state === undefined || state.unit !== key.unit ? undefined : renderUnitState(state)
  })
  const out: Record<string, unknown> = {}
  if (page.items.length > 0) out['states'] = page.items
  if (page.nextPageToken !== undefined) out['nextPageToken'] = page.nextPageToken
  return out
}

/** Live machines by id, from the catalog copy (no store read: the copy is what DNS answers from). */
function listMachines(deps: FleetApiDeps, query: Query): unknown {
  const after = decodePageToken(queryValue(query, 'nextPageToken'))
  const machines: FleetMachine[] = []
  let nextPageToken: string | undefined
  for (const node of deps.catalog.nodes()) {
    const id = node.record.Node
    if (after !== '' && id <= after) continue
    if (deps.catalog.machineAlive(id) !== true) continue
    if (machines.length === fleetLimits.pageSize) {
      nextPageToken = encodePageToken(machines.at(-1)?.id ?? '')
      break
    }
    machines.push({ id, primaryIP: node.record.Address, metadata: { ...node.record.Meta } })
  }
  const out: Record<string, unknown> = {}
  if (machines.length > 0) out['machines'] = machines
  if (nextPageToken !== undefined) out['nextPageToken'] = nextPageToken
  return out
}
