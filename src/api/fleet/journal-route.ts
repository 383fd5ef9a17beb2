/**
 * Cairn's GET /fleet/v1/journal/<name>?lines=N&follow=true&machineID=M: a unit's journal from the
 * machine that runs it, as NDJSON (one JournalLine `{ts, stream, text}` per line).
 *
 * Which machine: `machineID` when given; else the unit's assignment (a global unit on several
 * machines needs `machineID`, unless one of them is this agent); else the machine that last
 * reported a state for it; else this agent. This agent answers from deps.journals; another
 * machine's agent is asked over HTTP at its MachineRecord.Api with `machineID` set and the hop
 * header, so it answers from its own journals and a request is proxied at most once.
 *
 * Following: the follow starts before the tail is read, lines that arrive meanwhile are held and
 * written after the tail (those already in it dropped), then every new line as it comes, until the
 * client goes away or the server closes. A reader that lets more than journalPendingBytesMax pile
 * up gets a last `cairn` line saying so and the stream ends (never unbounded buffering).
 */
import { PassThrough } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { request as httpRequest } from 'undici'
import { decodeMachine, machineKey } from '../../catalog/records.ts'
import { CairnError } from '../../errors.ts'
import type { JournalLine } from '../../scheduler/journal.ts'
import { parseUnitName } from '../../scheduler/unit-name.ts'
import type { FleetApiDeps } from './deps.ts'
import { fleetErrorReply, invalid, queryBool, queryValue } from './http.ts'
import { fleetLimits, journalHopHeader } from './limits.ts'
import { readPlacements } from './unit-view.ts'

type Query = Record<string, string | string[] | undefined>

interface JournalQuery {
  unit: string
  lines: number
  follow: boolean
  machineID: string | undefined
}

export function registerJournalRoute(app: FastifyInstance, deps: FleetApiDeps, closing: AbortSignal): void {
  app.get('/fleet/v1/journal/*', async (request, reply) => {
    try {
      const query = journalQuery(request)
      const local = request.headers[journalHopHeader] !== undefined
      const machine = local ? deps.nodeName : await journalMachine(deps, query)
      if (machine.toLowerCase() === deps.nodeName.toLowerCase()) {
        return await serveLocal(deps, query, reply, closing)
      }
      return await proxy(deps, { ...query, machineID: machine }, reply, closing)
    } catch (error) {
      if (reply.sent) return reply
      if (!(error instanceof CairnError)) request.log.error({ err: error }, 'fleet api: journal failed')
      return fleetErrorReply(reply, error)
    }
  })
}

function journalQuery(request: FastifyRequest): JournalQuery {
  const unit = parseUnitName((request.params as Record<string, string | undefined>)['*'] ?? '').name
  const query = request.query as Query
  const linesText = queryValue(query, 'lines')
  let lines: number = fleetLimits.journalLinesDefault
  if (linesText !== undefined) {
    if (!/^[0-9]{1,9}$/.test(linesText) || Number(linesText) > fleetLimits.journalLinesMax)
      throw invalid(`lines: want a whole number from 0 to journalLinesMax (${fleetLimits.journalLinesMax})`)
    lines = Number(linesText)
  }
  const machineID = queryValue(query, 'machineID')
  if (machineID === '') throw invalid('machineID: empty')
  return { unit, lines, follow: queryBool(query, 'follow'), machineID }
}

/** The machine whose journal to read (see the header). */
async function journalMachine(deps: FleetApiDeps, query: JournalQuery): Promise<string> {
  if (query.machineID !== undefined) return query.machineID
  const placements = await readPlacements(deps.store)
  const self = deps.nodeName.toLowerCase()
  for (const list of [placements.assignments.get(query.unit), placements.states.get(query.unit)]) {
    const machines = [...new Set((list ?? []).map((r) => r.record.machine))]
    if (machines.length === 1) return machines[0] as string
    if (machines.some((m) => m.toLowerCase() === self)) return deps.nodeName
    if (machines.length > 1)
      throw invalid(
        `${query.unit} runs on several machines (${machines.slice(0, 5).join(', ')}): pick one with machineID`,
      )
  }
  return deps.nodeName
}

function lineText(line: JournalLine): string {
  return `${JSON.stringify({ ts: line.ts, stream: line.stream, text: line.text })}\n`
}

function sameLine(a: JournalLine, b: JournalLine): boolean {
  return a.ts === b.ts && a.stream === b.stream && a.text === b.text
}

async function serveLocal(
  deps: FleetApiDeps,
  query: JournalQuery,
  reply: FastifyReply,
  closing: AbortSignal,
): Promise<FastifyReply> {
  const noJournal = () =>
    new CairnError('FLEET_UNIT_NOT_FOUND', `${query.unit} has no journal on machine ${deps.nodeName}`)
  if (!query.follow) {
    const tail = await deps.journals.tail(query.unit, query.lines)
    if (tail === undefined) throw noJournal()
    return reply.type('application/x-ndjson').send(tail.map(lineText).join(''))
  }
  const stop = new AbortController()
  const held: JournalLine[] = []
  let out: PassThrough | undefined
  const write = (line: JournalLine): void => {
    if (out === undefined) {
      held.push(line)
      if (held.length > fleetLimits.journalLinesMax) held.shift()
      return
    }
    if (out.writableLength > fleetLimits.journalPendingBytesMax) {
      out.end(
        lineText({ ts: line.ts, stream: 'cairn', text: 'journal: the reader fell behind; stream ended' }),
      )
      stop.abort()
      return
    }
    out.write(lineText(line))
  }
  const following = deps.journals.follow(query.unit, write, stop.signal)
  let tail: JournalLine[] | undefined
  try {
    tail = await deps.journals.tail(query.unit, query.lines)
  } catch (error) {
    stop.abort()
    throw error
  }
  if (!following && tail === undefined) {
    stop.abort()
    throw noJournal()
  }
  const stream = new PassThrough()
  const end = (): void => {
    stop.abort()
    if (!stream.writableEnded) stream.end()
  }
  reply.raw.on('close', end)
  closing.addEventListener('abort', end, { once: true })
  stop.signal.addEventListener('abort', () => closing.removeEventListener('abort', end), { once: true })
  for (const line of tail ?? []) stream.write(lineText(line))
  out = stream
  for (const line of held) if (!(tail ?? []).some((t) => sameLine(t, line))) write(line)
  held.length = 0
  if (!following || closing.aborted) end()
  return reply.type('application/x-ndjson').send(stream)
}

async function proxy(
  deps: FleetApiDeps,
  query: JournalQuery & { machineID: string },
  reply: FastifyReply,
  closing: AbortSignal,
): Promise<FastifyReply> {
  const machine = query.machineID
  const kv = (await deps.store.range({ key: machineKey(machine) })).kvs[0]
  const record = kv === undefined ? undefined : decodeMachine(kv.value)
  if (record === undefined)
    throw new CairnError('FLEET_MACHINE_UNREACHABLE', `machine ${machine} has no live agent (no machine key)`)
  if (record.Api === undefined)
    throw new CairnError(
      'FLEET_MACHINE_UNREACHABLE',
      `machine ${machine}'s agent does not publish its API address`,
    )
  const params = new URLSearchParams({ lines: String(query.lines), machineID: machine })
  if (query.follow) params.set('follow', 'true')
  const url = `${record.Api.replace(/\/+$/, '')}/fleet/v1/journal/${encodeURIComponent(query.unit)}?${params}`
  const abort = new AbortController()
  const onClose = (): void => abort.abort()
  reply.raw.on('close', onClose)
  closing.addEventListener('abort', onClose, { once: true })
  let upstream: Awaited<ReturnType<typeof httpRequest>>
  try {
    upstream = await httpRequest(url, {
      method: 'GET',
      headers: { [journalHopHeader]: '1' },
      signal: abort.signal,
      headersTimeout: fleetLimits.journalProxyHeadersTimeoutMs,
      bodyTimeout: query.follow ? 0 : fleetLimits.journalProxyHeadersTimeoutMs,
    })
  } catch (error) {
    closing.removeEventListener('abort', onClose)
    throw new CairnError(
      'FLEET_MACHINE_UNREACHABLE',
      `machine ${machine} at ${record.Api}: ${(error as Error).message}`,
    )
  }
  upstream.body.on('close', () => closing.removeEventListener('abort', onClose))
  upstream.body.on('error', () => {}) // an aborted upstream ends this answer; nothing to report
  const type = upstream.headers['content-type']
  reply.code(upstream.statusCode)
  if (typeof type === 'string') reply.type(type)
  const code = upstream.headers['x-cairn-error-code']
  if (typeof code === 'string') reply.header('X-Cairn-Error-Code', code)
  return reply.send(upstream.body)
}
