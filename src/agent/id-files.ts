/**
 * A member's identity is fixed at its first start and stored in its data directory: `member-id`
 * (derived from its peer URL, which may change later) and `cluster-id` (derived from the founding
 * list, or given with --cluster-id to a member joining an existing cluster). Each is written as
 * tmp + fsync + rename + directory fsync, so a crash leaves either no file or the whole one.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { CairnError } from '../errors.ts'
import type { NodeId } from '../raft/core/types.ts'
import { writeFileAtomic } from '../raft/storage/directory.ts'

export const memberIdFileName = 'member-id'
export const clusterIdFileName = 'cluster-id'
const hexIdRe = /^[0-9a-f]{1,14}$/

/** The stored hex id, or the derived one (then stored). A stored id always wins. */
async function readOrCreateHexId(dataDir: string, fileName: string, derive: () => string): Promise<string> {
  const file = path.join(dataDir, fileName)
  let text: string | undefined
  try {
    text = (await readFile(file, 'utf8')).trim()
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  if (text !== undefined) {
    if (!hexIdRe.test(text)) throw new CairnError('CONFIG_INVALID', `${file} does not hold an id`)
    return text
  }
  const id = derive()
  if (!hexIdRe.test(id)) throw new CairnError('CONFIG_INVALID', `bad ${fileName} ${JSON.stringify(id)}`)
  await writeFileAtomic(file, `${id}\n`)
  return id
}

export async function readOrCreateMemberId(dataDir: string, derive: () => NodeId): Promise<NodeId> {
  const hex = await readOrCreateHexId(dataDir, memberIdFileName, () => derive().toString(16))
  return Number.parseInt(hex, 16)
}

/**
 * The cluster id: stored, else `given` (--cluster-id), else derived from the founders. A given id
 * that differs from the stored one is refused: this data directory belongs to another cluster.
 */
export async function readOrCreateClusterId(
  dataDir: string,
  given: string | undefined,
  derive: (() => string) | undefined,
): Promise<string> {
  const id = await readOrCreateHexId(dataDir, clusterIdFileName, () => {
    if (given !== undefined) return given
    if (derive !== undefined) return derive()
    throw new CairnError('CONFIG_INVALID', '--cluster-id is required to join an existing cluster')
  })
  if (given !== undefined && given !== id) {
    throw new CairnError(
      'CONFIG_INVALID',
      `--cluster-id ${given}: this data directory belongs to cluster ${id}`,
    )
  }
  return id
}
