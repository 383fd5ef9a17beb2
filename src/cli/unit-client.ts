/**
 * The `cairn unit` commands' client of the fleet v1 API (docs/api-fleet.md): one function per call,
 * fleet's error body `{"error":{"code","message"}}` turned into `Error: <message>` (exit 1), paged
 * listings followed to their end (bounded by listPagesMax), and the journal streamed line by line.
 */
import { request } from 'undici'
import type { FleetMachine, FleetUnit, FleetUnitState } from '../api/fleet/unit-view.ts'
import type { DesiredState } from '../scheduler/records.ts'
import {
  type ApiReply,
  ClientError,
  type ClientFlags,
  callApi,
  endpointOf,
  requestTimeoutMs,
} from './endpoint.ts'

/** Pages one listing may follow (100 items each): far above fleet's advised 1,000 units. */
export const listPagesMax = 1_000

/** The wire shapes are the API's own (type-only: the CLI talks to it over HTTP). */
export type { FleetMachine, FleetUnit, FleetUnitState }

/** Cairn's /status answer (see units-route.ts). */
export interface UnitStatus {
  unit: FleetUnit
  file?: { name: string; text: string; hash: string; previousHash?: string }
  assignments: Array<{ machineID: string; desiredState: string; hash: string }>
  states: Array<{
    machineID: string
    hash: string
    loadState: string
    activeState: string
    subState: string
    pid?: number
    exitCode?: number | null
    exitSignal?: string | null
    restarts: number
    health?: string
    message?: string
    sinceMs: number
  }>
  unplaced?: { reason: string; sinceMs: number }
  rollout?: { from: string; to: string; state: string; updated: string[]; reason?: string }
  instances?: string[]
}

export function unitPath(name: string): string {
  return `/fleet/v1/units/${encodeURIComponent(name)}`
}

/** The fleet error of an answer as a ClientError. */
export function fleetError(reply: ApiReply): ClientError {
  const body = reply.body as { error?: { message?: unknown } } | string | undefined
  if (typeof body === 'object' && body !== null && typeof body.error?.message === 'string')
    return new ClientError(`Error: ${body.error.message}`)
  const text = typeof body === 'string' && body.trim() !== '' ? `: ${body.trim().slice(0, 300)}` : ''
  return new ClientError(`Error: HTTP ${reply.status}${text}`)
}

export class FleetClient {
  readonly #base: string

  constructor(flags: ClientFlags) {
    this.#base = endpointOf(flags)
  }

  get base(): string {
    return this.#base
  }

  async #call(method: 'GET' | 'PUT' | 'DELETE', path: string, json?: unknown): Promise<ApiReply> {
    return await callApi(this.#base, { method, path, ...(json === undefined ? {} : { json }) })
  }

  /** The unit, or undefined when it does not exist. */
  async unit(name: string): Promise<FleetUnit | undefined> {
    const reply = await this.#call('GET', unitPath(name))
    if (reply.status === 404) return undefined
    if (reply.status !== 200) throw fleetError(reply)
    return reply.body as FleetUnit
  }

  async status(name: string): Promise<UnitStatus> {
    const reply = await this.#call('GET', `${unitPath(name)}/status`)
    if (reply.status !== 200) throw fleetError(reply)
    return reply.body as UnitStatus
  }

  /** PUT, answered as is (the caller reads fleet's statuses and X-Cairn-Error-Code). */
  async putReply(name: string, body: { desiredState?: DesiredState; text?: string }, replace = false) {
    return await this.#call('PUT', `${unitPath(name)}${replace ? '?replace=true' : ''}`, body)
  }

  /** PUT; returns the status (201 created or replaced, 204 changed or unchanged). */
  async put(
    name: string,
    body: { desiredState?: DesiredState; text?: string },
    replace = false,
  ): Promise<number> {
    const reply = await this.#call('PUT', `${unitPath(name)}${replace ? '?replace=true' : ''}`, body)
    if (reply.status !== 201 && reply.status !== 204) throw fleetError(reply)
    return reply.status
  }

  /** DELETE; false when the unit did not exist. */
  async destroy(name: string): Promise<boolean> {
    const reply = await this.#call('DELETE', unitPath(name))
    if (reply.status === 404) return false
    if (reply.status !== 204) throw fleetError(reply)
    return true
  }

  async #all<T>(path: string, field: string): Promise<T[]> {
    const out: T[] = []
    let token: string | undefined
    for (let page = 0; page < listPagesMax; page++) {
      const sep = path.includes('?') ? '&' : '?'
      const reply = await this.#call(
        'GET',
        token === undefined ? path : `${path}${sep}nextPageToken=${token}`,
      )
      if (reply.status !== 200) throw fleetError(reply)
      const body = reply.body as Record<string, unknown> | undefined
      out.push(...((body?.[field] as T[] | undefined) ?? []))
      token = typeof body?.['nextPageToken'] === 'string' ? body['nextPageToken'] : undefined
      if (token === undefined) return out
    }
    throw new ClientError(`Error: the listing has more than ${listPagesMax} pages`)
  }

  units(): Promise<FleetUnit[]> {
    return this.#all('/fleet/v1/units', 'units')
  }

  states(): Promise<FleetUnitState[]> {
    return this.#all('/fleet/v1/state', 'states')
  }

  machines(): Promise<FleetMachine[]> {
    return this.#all('/fleet/v1/machines', 'machines')
  }

  /**
   * Streams the unit's journal: onLine for each NDJSON line. With follow, runs until the agent
   * ends the stream (or the process is interrupted).
   */
  async journal(name: string, lines: number, follow: boolean, onLine: (line: string) => void): Promise<void> {
    const query = `lines=${lines}${follow ? '&follow=true' : ''}`
    let res: Awaited<ReturnType<typeof request>>
    try {
      res = await request(`${this.#base}/fleet/v1/journal/${encodeURIComponent(name)}?${query}`, {
        headersTimeout: requestTimeoutMs,
        bodyTimeout: follow ? 0 : requestTimeoutMs,
      })
    } catch (error) {
      throw new ClientError(`cannot reach ${this.#base}: ${(error as Error).message}`)
    }
    if (res.statusCode !== 200) {
      const text = await res.body.text()
      let body: unknown = text
      try {
        body = JSON.parse(text)
      } catch {
        // not JSON: shown as text
      }
      throw fleetError({ status: res.statusCode, body, headers: res.headers })
    }
    let pending = ''
    for await (const chunk of res.body) {
      pending += (chunk as Buffer).toString('utf8')
      let newline = pending.indexOf('\n')
      while (newline >= 0) {
        const line = pending.slice(0, newline)
        pending = pending.slice(newline + 1)
        if (line !== '') onLine(line)
        newline = pending.indexOf('\n')
      }
    }
    if (pending !== '') onLine(pending)
  }
}
