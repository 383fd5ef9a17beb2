/**
 * Real Cairn members for the API tests, in one process: RaftNode on the file WAL, the TCP peer
 * transport and the kv state machine (as test/raft-cluster.test.ts), each serving the etcd v2 API
 * with fastify on a random loopback port (never 4001), behind the agent's HttpFront (plain key
 * reads and writes answered before fastify). Members' client URLs are their API URLs,
 * so /v2/members, /v2/machines and `etcdctl cluster-health` see real addresses.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import {
  buildEtcdV2Api,
  type EtcdV2Api,
  type EtcdV2Limits,
  etcdV2FrameworkErrors,
  raftStatusOf,
} from '../src/api/etcd-v2/index.ts'
import { HttpFront } from '../src/api/http-front.ts'
import type { KvConfig } from '../src/kv/limits.ts'
import { ReplicatedStore } from '../src/kv/replicated-store.ts'
import { KvStateMachine } from '../src/kv/state-machine.ts'
import { bootstrapState } from '../src/raft/core/bootstrap.ts'
import type { NodeId } from '../src/raft/core/types.ts'
import { encodeMemberContext } from '../src/raft/member-context.ts'
import { RaftNode } from '../src/raft/node.ts'
import { FileStorage } from '../src/raft/storage/file-storage.ts'
import { createPeerTransport } from '../src/raft/transport/tcp-transport.ts'
import { freePorts } from './helpers/ports.ts'

const quiet = { warn() {}, info() {}, debug() {} }

export interface ApiMember {
  id: NodeId
  node: RaftNode
  sm: KvStateMachine
  store: ReplicatedStore
  app: FastifyInstance
  api: EtcdV2Api
  /** The server's front (plain reads and writes answered before fastify). */
  front: HttpFront
  url: string
}

export interface ApiCluster {
  members: ApiMember[]
  /** Member ids to use for POST /v2/members (a fresh one each call). */
  clusterId: string
  leader(): Promise<ApiMember>
  stop(): Promise<void>
}

export interface ApiClusterOptions {
  kv?: Partial<KvConfig>
  limits?: Partial<EtcdV2Limits>
}

export async function startApiCluster(size: number, options: ApiClusterOptions = {}): Promise<ApiCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-api-'))
  const ports = await freePorts(size * 2)
  const ids = Array.from({ length: size }, (_, i) => i + 1)
  const peerUrl = (id: NodeId) => `http://127.0.0.1:${ports[2 * (id - 1) + 1]}`
  const clientUrl = (id: NodeId) => `http://127.0.0.1:${ports[2 * (id - 1)]}`
  const clusterId = 'c0ffee'
  let nextId = 100
  const members = await Promise.all(
    ids.map(async (id): Promise<ApiMember> => {
      const sm = new KvStateMachine(options.kv)
      const node = await RaftNode.start({
        id,
        storage: new FileStorage(join(dir, `m${id}`)),
        stateMachine: sm,
        createTransport: (events) =>
          createPeerTransport({
            clusterId: 'api-test',
            memberId: id,
            listen: { host: '127.0.0.1', port: Number(new URL(peerUrl(id)).port) },
            events,
            log: quiet,
          }),
        bootstrap: {
          voters: ids.map((i) => ({ id: i, peerUrl: peerUrl(i) })),
          state: bootstrapState(ids, (i) =>
            encodeMemberContext({ name: `m${i}`, peerUrls: [peerUrl(i)], clientUrls: [clientUrl(i)] }),
          ),
        },
        tickMs: 20,
        requestTimeoutMs: 3_000,
        seed: id,
      })
      const store = new ReplicatedStore({ node, stateMachine: sm, expirySweepMs: 50 })
      const api = buildEtcdV2Api({
        store,
        clusterId,
        memberId: id,
        memberName: `m${id}`,
        peerUrls: [peerUrl(id)],
        clientUrls: [clientUrl(id)],
        version: { server: '2.3.8', cluster: '2.3.0' },
        raftStatus: raftStatusOf(node, store),
        newMemberId: () => nextId++,
        limits: options.limits,
      })
      // As in the agent: plain key reads and writes are answered before fastify (HttpFront).
      const front = new HttpFront()
      front.add(api.plainReads)
      front.add(api.plainWrites)
      const app = Fastify({
        logger: false,
        frameworkErrors: etcdV2FrameworkErrors,
        serverFactory: front.serverFactory,
      })
      app.addHook('preClose', async () => front.close())
      await app.register(api)
      await app.listen({ host: '127.0.0.1', port: Number(new URL(clientUrl(id)).port) })
      return { id, node, sm, store, app, api, front, url: clientUrl(id) }
    }),
  )
  return {
    members,
    clusterId,
    async leader() {
      const deadline = Date.now() + 10_000
      for (;;) {
        const leader = members.find((m) => m.node.isLeader)
        if (leader !== undefined) return leader
        if (Date.now() > deadline) throw new Error('no leader within 10 s')
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    },
    async stop() {
      await Promise.allSettled(members.map((m) => m.app.close()))
      for (const m of members) m.store.close()
      await Promise.allSettled(members.map((m) => m.node.stop()))
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** A v2 request with a form body (as etcdctl and node-etcd send), answered as status, headers, text. */
export async function v2(
  base: string,
  method: string,
  path: string,
  form?: Record<string, string>,
): Promise<{ status: number; headers: Headers; text: string; json: unknown }> {
  const init: RequestInit = { method }
  if (form !== undefined) {
    init.body = new URLSearchParams(form).toString()
    init.headers = { 'content-type': 'application/x-www-form-urlencoded' }
  }
  const response = await fetch(`${base}${path}`, init)
  const text = await response.text()
  let json: unknown
  try {
    json = text === '' ? undefined : JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: response.status, headers: response.headers, text, json }
}

/**
 * A second fastify server on `member`'s API (the same store) without the front: every request
 * goes to the routes. The fast-path tests send each request to both and compare the answers.
 */
export async function startRouteOnly(member: ApiMember): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify({ logger: false, frameworkErrors: etcdV2FrameworkErrors })
  await app.register(member.api)
  return { app, url: await app.listen({ host: '127.0.0.1', port: 0 }) }
}
