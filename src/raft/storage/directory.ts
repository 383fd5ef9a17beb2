/**
 * Directory operations with the durability steps POSIX leaves to the caller.
 *
 * A new, renamed or deleted file is durable only once its directory is fsynced: every create and
 * rename in storage is followed by syncDirectory. Temporary files (".tmp") are never read; the
 * ones a crash left behind are removed on open.
 */

import type { FileHandle } from 'node:fs/promises'
import { mkdir, open, readdir, rename, unlink } from 'node:fs/promises'
import path from 'node:path'

export const tmpSuffix = '.tmp'

export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/**
 * Replaces `file` with `text` atomically and durably: a temporary file beside it, fsynced, renamed
 * over it, then its directory fsynced. After a crash the file holds the old text or the new one,
 * never a part; a left-over temporary file is never read.
 */
export async function writeFileAtomic(file: string, text: string, mode = 0o666): Promise<void> {
  const tmp = `${file}${tmpSuffix}`
  const handle = await open(tmp, 'w', mode)
  try {
    await handle.writeFile(text)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(tmp, file)
  await syncDirectory(path.dirname(file))
}

/** Creates dir (and parents) if missing; when it was created, makes that durable in its parent. */
export async function ensureDirectory(dir: string): Promise<void> {
  const created = await mkdir(dir, { recursive: true })
  if (created === undefined) return
  // mkdir -p may have created several levels: sync each parent of a created directory.
  let child = path.resolve(dir)
  const top = path.resolve(created)
  for (;;) {
    const parent = path.dirname(child)
    await syncDirectory(parent)
    if (child === top || parent === child) return
    child = parent
  }
}

/** Removes leftovers of interrupted atomic writes; returns their names. */
export async function removeTmpFiles(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith(tmpSuffix))
  for (const name of names) await unlink(path.join(dir, name))
  if (names.length > 0) await syncDirectory(dir)
  return names
}

/** Writes all of buf at position (a positional write may be short). */
export async function writeFully(handle: FileHandle, buf: Uint8Array, position: number): Promise<void> {
  let done = 0
  while (done < buf.length) {
    const { bytesWritten } = await handle.write(buf, done, buf.length - done, position + done)
    done += bytesWritten
  }
}

/** Reads exactly length bytes at position, or fewer only at the end of the file. */
export async function readFully(handle: FileHandle, buf: Uint8Array, position: number): Promise<number> {
  let done = 0
  while (done < buf.length) {
    const { bytesRead } = await handle.read(buf, done, buf.length - done, position + done)
    if (bytesRead === 0) break
    done += bytesRead
  }
  return done
}
