/**
 * bench/scheduler-fleet: the fleet v1 calls the scheduler bench makes (docs/api-fleet.md), and the
 * unit files it submits. Everything goes over HTTP to an agent, as `cairn unit` would send it; the
 * bench never reads or writes the scheduler's keys itself.
 */
import { request } from 'undici'
import { getJson } from './scheduler-cluster.ts'

/** fleet's UnitState. */
export interface FleetState {
  name: string
  hash: string
  machineID: string
  systemdActiveState: string
  systemdSubState: string
}

/** The parts of Cairn's GET /fleet/v1/units/<name>/status the bench reads. */
export interface UnitStatus {
  file?: { hash: string }
  states?: { machineID: string; hash: string; activeState: string; subState: string; health?: string }[]
  rollout?: { from: string; to: string; state: string; updated: string[]; reason?: string }
}

/** One fleet API call that must succeed with one of `ok`; anything else throws with the answer. */
async function call(method: 'PUT' | 'DELETE', url: string, body: unknown, ok: number[]): Promise<number> {
  const res = await request(url, {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  })
  const text = await res.body.text()
  if (!ok.includes(res.statusCode)) throw new Error(`${method} ${url}: ${res.statusCode} ${text}`)
  return res.statusCode
}

const unitUrl = (url: string, unit: string) => `${url}/fleet/v1/units/${encodeURIComponent(unit)}`

/** Submits a template (new content is a rolling update of its running instances). */
export async function submitTemplate(url: string, name: string, text: string): Promise<void> {
  await call('PUT', unitUrl(url, name), { text, desiredState: 'inactive' }, [201, 204])
}

/** Starts an instance of a submitted template (what `cairn unit start --no-block` sends). */
export async function startInstance(url: string, name: string): Promise<void> {
  await call('PUT', unitUrl(url, name), { desiredState: 'launched' }, [201, 204])
}

export async function destroyUnit(url: string, name: string): Promise<void> {
  await call('DELETE', unitUrl(url, name), undefined, [204, 404])
}

/** Every unit state the runners report (GET /fleet/v1/state, every page); undefined on an error. */
export async function fleetStates(url: string): Promise<FleetState[] | undefined> {
  const states: FleetState[] = []
  let token = ''
  for (;;) {
    const q = token === '' ? '' : `?nextPageToken=${encodeURIComponent(token)}`
    const page = await getJson<{ states?: FleetState[]; nextPageToken?: string }>(`${url}/fleet/v1/state${q}`)
    if (page === undefined) return undefined
    states.push(...(page.states ?? []))
    if (page.nextPageToken === undefined) return states
    token = page.nextPageToken
  }
}

/** Units with their machine (GET /fleet/v1/units, every page): name → machineID or ''. */
export async function fleetAssignments(url: string): Promise<Map<string, string> | undefined> {
  const out = new Map<string, string>()
  let token = ''
  for (;;) {
    const q = token === '' ? '' : `?nextPageToken=${encodeURIComponent(token)}`
    const page = await getJson<{ units?: { name: string; machineID?: string }[]; nextPageToken?: string }>(
      `${url}/fleet/v1/units${q}`,
    )
    if (page === undefined) return undefined
    for (const u of page.units ?? []) out.set(u.name, u.machineID ?? '')
    if (page.nextPageToken === undefined) return out
    token = page.nextPageToken
  }
}

export function unitStatus(url: string, name: string): Promise<UnitStatus | undefined> {
  return getJson<UnitStatus>(`${unitUrl(url, name)}/status`)
}

/** A state that says the unit's process runs the given version. */
export const runs = (s: FleetState | undefined, hash: string): boolean =>
  s !== undefined && s.hash === hash && s.systemdActiveState === 'active' && s.systemdSubState === 'running'

/** The sleeper of the 100-unit rows: /bin/sleep, nothing to register, nothing to check. */
export function sleeperText(): string {
  return [
    '[Unit]',
    'Description=scheduler bench sleeper %i',
    '',
    '[Service]',
    'ExecStart=/bin/sleep infinity',
  ]
    .join('\n')
    .concat('\n')
}

/**
 * The rolling update's unit: a tiny Node HTTP server on 127.0.0.1:<instance>, so an instance's
 * name is its port; registered as service `bench` with an HTTP check every second (the shortest
 * CheckInterval units.md allows). `version` only changes the text, hence the hash.
 */
export function webText(version: number, parallelism: number): string {
  const server = `require('http').createServer((q,s)=>s.end(process.env.VERSION)).listen(process.env.PORT,'127.0.0.1')`
  return [
    '[Unit]',
    'Description=scheduler bench web server %i',
    '',
    '[Service]',
    `Environment=PORT=%i VERSION=${version}`,
    `ExecStart=${process.execPath} -e "${server}"`,
    '',
    '[X-Cairn]',
    'ServiceName=bench',
    'ServicePort=%i',
    'CheckHTTP=http://127.0.0.1:%i/',
    'CheckInterval=1s',
    'CheckTimeout=1s',
    `UpdateParallelism=${parallelism}`,
    '',
  ].join('\n')
}
