/**
 * `cairn kv get|put|rm|ls|watch`: the etcd v2 keys API (`/v2/keys`) of a running agent.
 *
 *   get KEY                            the value (`-o json`: the node)
 *   put KEY VALUE [--ttl SECONDS]      sets the key, prints the value (`-o json`: the answer)
 *   rm KEY [--recursive] [--dir]       deletes a key or directory
 *   ls [KEY] [--recursive]             the keys under KEY (default /), directories with a trailing /
 *   watch KEY [--recursive] [--forever]
 *       long polls `wait=true`, each next poll from the last event's modifiedIndex + 1, so no event
 *       is missed between polls; prints `ACTION KEY VALUE` per event (`-o json`: one answer per
 *       line); exits after the first event unless --forever (then until Ctrl-C).
 */
import type { Command } from 'commander'
import {
  type ApiReply,
  apiError,
  ClientError,
  type ClientFlags,
  callApi,
  endpointOf,
  runClient,
  withClientFlags,
} from './endpoint.ts'
import { formatJson, print } from './output.ts'

interface V2Node {
  key?: string
  value?: string
  dir?: boolean
  nodes?: V2Node[]
  modifiedIndex?: number
}

interface V2Answer {
  action: string
  node?: V2Node
  prevNode?: V2Node
}

/** `/v2/keys/<key>` with each segment escaped; leading and repeated slashes dropped. */
export function keyPath(key: string): string {
  const segments = key.split('/').filter((s) => s !== '')
  return `/v2/keys/${segments.map(encodeURIComponent).join('/')}`
}

function query(params: Record<string, boolean | string | undefined>): string {
  const q = new URLSearchParams()
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === false) continue
    q.set(name, value === true ? 'true' : value)
  }
  const text = q.toString()
  return text === '' ? '' : `?${text}`
}

async function keysCall(flags: ClientFlags, call: Parameters<typeof callApi>[1]): Promise<V2Answer> {
  const reply: ApiReply = await callApi(endpointOf(flags), call)
  if (reply.status >= 300) throw apiError(reply)
  return reply.body as V2Answer
}

export function addKvCommand(program: Command): void {
  const kv = program.command('kv').description('read, write and watch keys (etcd v2 keys API)')

  withClientFlags(kv.command('get').description('print the value of KEY').argument('<key>')).action(
    async (key: string, flags: ClientFlags) => {
      process.exitCode = await runClient(() => kvGet(key, flags))
    },
  )

  withClientFlags(
    kv
      .command('put')
      .description('set KEY to VALUE')
      .argument('<key>')
      .argument('<value>')
      .option('--ttl <seconds>', 'expire the key after this many seconds'),
  ).action(async (key: string, value: string, flags: ClientFlags & { ttl?: string }) => {
    process.exitCode = await runClient(() => kvPut(key, value, flags))
  })

  withClientFlags(
    kv
      .command('rm')
      .description('delete KEY')
      .argument('<key>')
      .option('--recursive', 'delete a directory and everything under it')
      .option('--dir', 'delete an empty directory'),
  ).action(async (key: string, flags: ClientFlags & { recursive?: boolean; dir?: boolean }) => {
    process.exitCode = await runClient(() => kvRm(key, flags))
  })

  withClientFlags(
    kv
      .command('ls')
      .description('list the keys under KEY (default /)')
      .argument('[key]', 'directory', '/')
      .option('--recursive', 'list every key below, not only the direct children'),
  ).action(async (key: string, flags: ClientFlags & { recursive?: boolean }) => {
    process.exitCode = await runClient(() => kvLs(key, flags))
  })

  withClientFlags(
    kv
      .command('watch')
      .description('wait for a change of KEY and print it as ACTION KEY VALUE')
      .argument('<key>')
      .option('--recursive', 'also watch every key below KEY')
      .option('--forever', 'keep watching until Ctrl-C (default: exit after the first event)'),
  ).action(async (key: string, flags: ClientFlags & { recursive?: boolean; forever?: boolean }) => {
    process.exitCode = await runClient(() => kvWatch(key, flags))
  })
}

async function kvGet(key: string, flags: ClientFlags): Promise<void> {
  const answer = await keysCall(flags, { method: 'GET', path: keyPath(key) })
  if (flags.output === 'json') return print(formatJson(answer.node))
  if (answer.node?.dir === true) throw new ClientError(`Error: ${answer.node.key ?? key} is a directory`)
  print(`${answer.node?.value ?? ''}\n`)
}

async function kvPut(key: string, value: string, flags: ClientFlags & { ttl?: string }): Promise<void> {
  if (flags.ttl !== undefined && !/^\d+$/.test(flags.ttl))
    throw new ClientError(`--ttl: "${flags.ttl}" is not a whole number of seconds`, 2)
  const form: Record<string, string> = { value }
  if (flags.ttl !== undefined) form['ttl'] = flags.ttl
  const answer = await keysCall(flags, { method: 'PUT', path: keyPath(key), form })
  print(flags.output === 'json' ? formatJson(answer) : `${answer.node?.value ?? value}\n`)
}

async function kvRm(key: string, flags: ClientFlags & { recursive?: boolean; dir?: boolean }): Promise<void> {
  const path = keyPath(key) + query({ recursive: flags.recursive, dir: flags.dir })
  const answer = await keysCall(flags, { method: 'DELETE', path })
  print(flags.output === 'json' ? formatJson(answer) : `deleted ${answer.node?.key ?? key}\n`)
}

async function kvLs(key: string, flags: ClientFlags & { recursive?: boolean }): Promise<void> {
  const path = keyPath(key) + query({ recursive: flags.recursive, sorted: true })
  const answer = await keysCall(flags, { method: 'GET', path })
  if (flags.output === 'json') return print(formatJson(answer.node))
  const lines: string[] = []
  const walk = (nodes: V2Node[] | undefined) => {
    for (const n of nodes ?? []) {
      lines.push(n.dir === true ? `${n.key}/` : `${n.key}`)
      walk(n.nodes)
    }
  }
  if (answer.node?.dir === true) walk(answer.node.nodes)
  else lines.push(`${answer.node?.key ?? key}`)
  print(lines.map((l) => `${l}\n`).join(''))
}

/** Events a watch prints before it stops; --forever lifts it. */
const watchEventsDefault = 1

async function kvWatch(key: string, flags: ClientFlags & { recursive?: boolean; forever?: boolean }) {
  let waitIndex: number | undefined
  for (let printed = 0; flags.forever === true || printed < watchEventsDefault; ) {
    const path =
      keyPath(key) + query({ wait: true, recursive: flags.recursive, waitIndex: waitIndex?.toString() })
    const answer = await keysCall(flags, { method: 'GET', path, noTimeout: true })
    // An empty answer: the member is shutting down its watches; poll again (or fail to connect).
    if (answer === undefined || answer.node === undefined) continue
    print(flags.output === 'json' ? `${JSON.stringify(answer)}\n` : `${eventLine(answer)}\n`)
    printed++
    waitIndex = (answer.node.modifiedIndex ?? 0) + 1
  }
}

export function eventLine(answer: V2Answer): string {
  const value = answer.node?.value ?? ''
  return `${answer.action} ${answer.node?.key ?? ''} ${value}`.trimEnd()
}
