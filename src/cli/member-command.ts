/**
 * `cairn member list|add|remove`: the etcd v2 members API (`/v2/members`) of a running agent.
 *
 *   list               id, name, peer URLs, client URLs, and which member leads (`/v2/members/leader`)
 *   add NAME PEER_URL  POST /v2/members {peerURLs:[PEER_URL]}; prints the new id and the flags that
 *                      start the new member (`--initial-cluster-state existing`, `--cluster-id` from
 *                      the answer's X-Etcd-Cluster-ID, `--initial-cluster` = the members and
 *                      itself; docs/agent.md "Adding a member"). An agent that
 *                      answers 501 does not support adding members yet, and the command says so.
 *   remove ID          DELETE /v2/members/<hex id>
 *   promote ID         POST /v2/members/<hex id>/promote on the leader (found with
 *                      /v2/members/leader): the learner becomes a voter now. The leader also
 *                      promotes a caught-up learner by itself (src/agent/promoter.ts); this is for
 *                      an operator who wants it at once, and it is refused (412) until caught up.
 */
import type { Command } from 'commander'
import { memberIdFromHex } from '../kv/members.ts'
import {
  apiError,
  ClientError,
  type ClientFlags,
  callApi,
  endpointOf,
  runClient,
  withClientFlags,
} from './endpoint.ts'
import { formatJson, formatTable, print } from './output.ts'

export interface MemberJson {
  id: string
  name: string
  peerURLs: string[]
  clientURLs: string[]
}

export function addMemberCommand(program: Command): void {
  const member = program.command('member').description('list, add, remove and promote cluster members')

  withClientFlags(member.command('list').description('list the members and mark the leader')).action(
    async (flags: ClientFlags) => {
      process.exitCode = await runClient(() => memberList(flags))
    },
  )

  withClientFlags(
    member
      .command('add')
      .description('add a member; prints the flags to start it with')
      .argument('<name>', "the new member's --name")
      .argument('<peer-url>', 'where the other members reach it, http://host:port'),
  ).action(async (name: string, peerUrl: string, flags: ClientFlags) => {
    process.exitCode = await runClient(() => memberAdd(name, peerUrl, flags))
  })

  withClientFlags(
    member
      .command('remove')
      .description('remove a member')
      .argument('<id>', 'member id (hex, as member list shows)'),
  ).action(async (id: string, flags: ClientFlags) => {
    process.exitCode = await runClient(() => memberRemove(id, flags))
  })

  withClientFlags(
    member
      .command('promote')
      .description('make a caught-up learner a voter now (the leader also does it by itself)')
      .argument('<id>', 'member id (hex, as member list shows)'),
  ).action(async (id: string, flags: ClientFlags) => {
    process.exitCode = await runClient(() => memberPromote(id, flags))
  })
}

/** The members, sorted by id as the API answers them. */
export async function fetchMembers(endpoint: string): Promise<MemberJson[]> {
  const reply = await callApi(endpoint, { method: 'GET', path: '/v2/members' })
  if (reply.status !== 200) throw apiError(reply)
  return (reply.body as { members: MemberJson[] }).members
}

/** The leader's id, or undefined during an election. */
export async function fetchLeaderId(endpoint: string): Promise<string | undefined> {
  const reply = await callApi(endpoint, { method: 'GET', path: '/v2/members/leader' })
  if (reply.status === 503) return undefined
  if (reply.status !== 200) throw apiError(reply)
  return (reply.body as MemberJson).id
}

async function memberList(flags: ClientFlags): Promise<void> {
  const endpoint = endpointOf(flags)
  const members = await fetchMembers(endpoint)
  const leader = await fetchLeaderId(endpoint)
  if (flags.output === 'json') return print(formatJson({ members, leader: leader ?? null }))
  const rows = members.map((m) => [
    m.id,
    m.name === '' ? '(unstarted)' : m.name,
    m.peerURLs.join(','),
    m.clientURLs.join(','),
    m.id === leader ? '*' : '',
  ])
  print(formatTable(['ID', 'NAME', 'PEER URLS', 'CLIENT URLS', 'LEADER'], rows))
}

async function memberAdd(name: string, peerUrl: string, flags: ClientFlags): Promise<void> {
  const endpoint = endpointOf(flags)
  const peer = peerHostPort(peerUrl)
  const before = await fetchMembers(endpoint)
  const reply = await callApi(endpoint, {
    method: 'POST',
    path: '/v2/members',
    json: { peerURLs: [peerUrl] },
  })
  if (reply.status === 501)
    throw new ClientError(
      `Error: the server at ${endpoint} does not support adding members yet (POST /v2/members answered 501)`,
    )
  if (reply.status !== 201) throw apiError(reply)
  const added = reply.body as MemberJson
  const clusterId = reply.headers['x-etcd-cluster-id']
  const initialCluster = [
    ...before.filter((m) => m.name !== '').map((m) => `${m.name}=${m.peerURLs[0] ?? ''}`),
    `${name}=${peerUrl}`,
  ].join(',')
  const startFlags = [
    'cairn agent --server',
    `--name ${name}`,
    `--data-dir <dir>`,
    `--peer-addr ${peer}`,
    '--initial-cluster-state existing',
    ...(typeof clusterId === 'string' ? [`--cluster-id ${clusterId}`] : []),
    `--initial-cluster ${initialCluster}`,
  ].join(' ')
  if (flags.output === 'json') return print(formatJson({ member: added, start: startFlags }))
  print(
    [
      `added member ${added.id} (${name}, ${peerUrl})`,
      'start it with (plus --initial-cluster-token T if the cluster was started with one):',
      `  ${startFlags}`,
      '',
    ].join('\n'),
  )
}

function peerHostPort(peerUrl: string): string {
  try {
    const url = new URL(peerUrl)
    if (url.protocol === 'http:' && url.port !== '') return url.host
  } catch {}
  throw new ClientError(`member add: "${peerUrl}" is not a peer URL (want http://host:port)`, 2)
}

async function memberRemove(id: string, flags: ClientFlags): Promise<void> {
  if (memberIdFromHex(id) === undefined)
    throw new ClientError(`member remove: "${id}" is not a member id (hex, as member list shows)`, 2)
  const reply = await callApi(endpointOf(flags), { method: 'DELETE', path: `/v2/members/${id}` })
  if (reply.status !== 204) throw apiError(reply)
  print(flags.output === 'json' ? formatJson({ removed: id }) : `removed member ${id}\n`)
}

async function memberPromote(id: string, flags: ClientFlags): Promise<void> {
  if (memberIdFromHex(id) === undefined)
    throw new ClientError(`member promote: "${id}" is not a member id (hex, as member list shows)`, 2)
  const endpoint = endpointOf(flags)
  // Membership changes are decided by the leader: ask it directly, so a refusal comes back at once.
  const leaderReply = await callApi(endpoint, { method: 'GET', path: '/v2/members/leader' })
  if (leaderReply.status === 503)
    throw new ClientError('member promote: no leader right now (an election); retry')
  if (leaderReply.status !== 200) throw apiError(leaderReply)
  const leaderUrl = (leaderReply.body as MemberJson).clientURLs[0] ?? endpoint
  const reply = await callApi(leaderUrl, { method: 'POST', path: `/v2/members/${id}/promote` })
  if (reply.status !== 200) throw apiError(reply)
  const promoted = reply.body as MemberJson
  print(flags.output === 'json' ? formatJson({ promoted }) : `promoted member ${promoted.id} to voter\n`)
}
