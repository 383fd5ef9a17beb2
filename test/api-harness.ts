/**
 * Real Cairn members for the API tests, in one process: RaftNode on the file WAL, the TCP peer
 * transport and the kv state machine (as test/raft-cluster.test.ts), each serving the etcd v2 API
 * with fastify on a random loopback port (never 4001), behind the agent's HttpFront (plain key
 * reads and writes answered before fastify). Members' client URLs are their API URLs,
 * so /v2/members, /v2/machines and `etcdctl cluster-health` see real addresses.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
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

/** An answer as it came over the wire: status, raw headers as `Name: value` in order, body text. */
export interface RawAnswer {
  status: number
  headers: string[]
  body: string
}

/** A request body: form-encoded unless `type` says otherwise, with a Content-Length unless `chunked`. */
export interface RawBody {
  text: string
  type?: string
  chunked?: boolean
}

/**
 * One request on a connection of its own, answered as it came over the wire, for the fast-path
 * tests that compare a server with its front and one without, byte for byte. `Date` is left out;
 * the value of each header named in `counted` (lower case) is replaced by `N`.
 */
export async function rawRequest(
  base: string,
  method: string,
  path: string,
  body?: RawBody,
  counted: ReadonlySet<string> = new Set(),
): Promise<RawAnswer> {
  const url = new URL(base)
  return await new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method, path, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const headers: string[] = []
        for (let i = 0; i < res.rawHeaders.length; i += 2) {
          const name = res.rawHeaders[i] ?? ''
          const lower = name.toLowerCase()
          if (lower === 'date') continue
          headers.push(`${name}: ${counted.has(lower) ? 'N' : res.rawHeaders[i + 1]}`)
        }
        resolve({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks).toString('utf8') })
      })
    })
    req.on('error', reject)
    if (body === undefined) {
      req.end()
      return
    }
    // Node sends a GET's body without framing unless told its length.
    req.setHeader('content-type', body.type ?? 'application/x-www-form-urlencoded')
    if (body.chunked === true) req.setHeader('transfer-encoding', 'chunked')
    else req.setHeader('content-length', Buffer.byteLength(body.text))
    req.end(body.text)
  })
}
