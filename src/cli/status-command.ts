/**
 * `cairn status`: one line per member from its own `/_cairn/status` (name, id, role, term, applied
 * index, store revision, the leader it sees), then the cluster id. Members and their client URLs
 * come from `/v2/members` on the endpoint; a member without a client URL yet (not published) or one
 * that does not answer gets a row saying so. If no member lists a client URL, the endpoint alone
 * is asked. Exit code 1 when the endpoint cannot be reached; unreachable members are rows, not
 * failures.
 */
import type { Command } from 'commander'
import {
  apiError,
  ClientError,
  type ClientFlags,
  callApi,
  endpointOf,
  runClient,
  withClientFlags,
} from './endpoint.ts'
import { fetchMembers, type MemberJson } from './member-command.ts'
import { formatJson, formatTable, print } from './output.ts'

interface CairnStatus {
  name: string
  id: string
  clusterId: string
  role: string
  leader: string | null
  term: number
  applied: number
  revision: number
}

type StatusRow = { id: string; name: string; clientUrl: string | null } & (
  | { status: CairnStatus }
  | { error: string }
)

export function addStatusCommand(program: Command): void {
  withClientFlags(
    program.command('status').description("each member's Raft view (role, term, applied index, leader)"),
  ).action(async (flags: ClientFlags) => {
    process.exitCode = await runClient(() => clusterStatus(flags))
  })
}

async function memberStatus(clientUrl: string): Promise<CairnStatus> {
  const reply = await callApi(clientUrl.replace(/\/+$/, ''), { method: 'GET', path: '/_cairn/status' })
  if (reply.status !== 200) throw apiError(reply)
  return reply.body as CairnStatus
}

async function rowOf(member: MemberJson): Promise<StatusRow> {
  const clientUrl = member.clientURLs[0]
  const base = { id: member.id, name: member.name, clientUrl: clientUrl ?? null }
  if (clientUrl === undefined) return { ...base, error: 'no client URL published yet' }
  try {
    return { ...base, status: await memberStatus(clientUrl) }
  } catch (error) {
    if (!(error instanceof ClientError)) throw error
    return { ...base, error: error.message }
  }
}

async function clusterStatus(flags: ClientFlags): Promise<void> {
  const endpoint = endpointOf(flags)
  const members = await fetchMembers(endpoint)
  let rows: StatusRow[]
  if (members.some((m) => m.clientURLs.length > 0)) {
    rows = await Promise.all(members.map(rowOf))
  } else {
    const status = await memberStatus(endpoint)
    rows = [{ id: status.id, name: status.name, clientUrl: endpoint, status }]
  }
  const clusterId = rows.map((r) => ('status' in r ? r.status.clusterId : undefined)).find((c) => c)
  if (flags.output === 'json') return print(formatJson({ clusterId: clusterId ?? null, members: rows }))
  const table = rows.map((r) =>
    'status' in r
      ? [
          r.status.name,
          r.status.id,
          r.status.role,
          String(r.status.term),
          String(r.status.applied),
          String(r.status.revision),
          r.status.leader ?? '(none)',
        ]
      : [r.name === '' ? '(unstarted)' : r.name, r.id, `unreachable: ${r.error}`, '', '', '', ''],
  )
  print(formatTable(['NAME', 'ID', 'ROLE', 'TERM', 'APPLIED', 'REVISION', 'LEADER'], table))
  print(`cluster id: ${clusterId ?? 'unknown (no member answered)'}\n`)
}
