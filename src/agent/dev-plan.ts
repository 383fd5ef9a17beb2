/**
 * The plan of `cairn dev`: which `cairn agent --server` processes a local cluster of N members runs,
 * with which flags. Pure, so it is tested without processes.
 *
 * Member i (1-based) is named n<i>, serves clients on 127.0.0.1:<base-port + i - 1> (so member 1
 * is on the usual 127.0.0.1:4001) and peers on 127.0.0.1:<base-port + peerPortOffset + i - 1>
 * (7001, 7002, ... by default) and DNS on 127.0.0.1:<base-port + dnsPortOffset + i - 1> (8600, ...). Data lives in <data-dir>/<N>-members/n<i>: a 1-member and a
 * 3-member dev cluster never share a member directory, so switching --nodes never mixes clusters,
 * and re-running the same command restarts the same cluster with its data.
 */
import path from 'node:path'
import { CairnError } from '../errors.ts'

export const devNodeCounts = [1, 3, 5] as const
export const devDefaults = { nodes: 1, basePort: 4001, token: 'cairn-dev' } as const
/** Peer ports sit this far above client ports (4001 → 7001). */
export const peerPortOffset = 3000
/** DNS ports sit this far above client ports (4001 → 8600, Consul's DNS port). */
export const dnsPortOffset = 4599

export interface DevMember {
  name: string
  clientUrl: string
  args: string[]
}

export function devPlan(nodes: number, dataDir: string, basePort: number): DevMember[] {
  if (!(devNodeCounts as readonly number[]).includes(nodes)) {
    throw new CairnError('CONFIG_INVALID', `--nodes: ${nodes} (want ${devNodeCounts.join(', ')})`)
  }
  if (!Number.isSafeInteger(basePort) || basePort < 1 || basePort + dnsPortOffset + nodes - 1 > 65535) {
    throw new CairnError(
      'CONFIG_INVALID',
      `--base-port: ${basePort} (want 1..${65535 - dnsPortOffset - nodes + 1} so every peer and DNS port fits)`,
    )
  }
  const names = Array.from({ length: nodes }, (_, i) => `n${i + 1}`)
  const peerPort = (i: number) => basePort + peerPortOffset + i
  const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${peerPort(i)}`).join(',')
  return names.map((name, i) => ({
    name,
    clientUrl: `http://127.0.0.1:${basePort + i}`,
    args: [
      'agent',
      '--server',
      '--name',
      name,
      '--data-dir',
      path.join(dataDir, `${nodes}-members`, name),
      '--client-addr',
      `127.0.0.1:${basePort + i}`,
      '--peer-addr',
      `127.0.0.1:${peerPort(i)}`,
      '--initial-cluster',
      initialCluster,
      '--initial-cluster-token',
      devDefaults.token,
      '--dns-addr',
      `127.0.0.1:${basePort + dnsPortOffset + i}`,
    ],
  }))
}
