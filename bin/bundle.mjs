/**
 * The bundle bin/cairn runs: every TypeScript source reachable from src/cli/main.ts compiled by
 * esbuild into one ES module, .build/cli/cairn.mjs (dependencies stay imports from node_modules).
 *
 * Why not run the sources through tsx, as Cairn did first: tsx's loader runs on a thread of its own
 * in every process (about 33 MiB of resident memory per member) and compiles each file at start-up.
 * A bundle is plain JavaScript: no loader thread, and start-up reads one file.
 *
 * The bundle is rebuilt when it is missing or older than any file under src/ or package.json, so a
 * checkout or an edit is picked up by the next start without a build command. It is written to a
 * temporary file and renamed into place, so processes starting at once never read half a bundle.
 * It sits two directories below the repository root, as src/cli/main.ts does, so the sources'
 * paths relative to import.meta.url (../../package.json, ../../bin/cairn) resolve the same.
 */
import { mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const entry = path.join(root, 'src', 'cli', 'main.ts')
export const bundlePath = path.join(root, '.build', 'cli', 'cairn.mjs')

/** Newest modification time (ms) of the files under dir. */
function newestUnder(dir) {
  let newest = 0
  for (const item of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, item.name)
    const mtime = item.isDirectory() ? newestUnder(full) : statSync(full).mtimeMs
    if (mtime > newest) newest = mtime
  }
  return newest
}

function bundleMtime() {
  try {
    return statSync(bundlePath).mtimeMs
  } catch {
    return -1
  }
}

/** Builds the bundle if it is stale; returns its path. */
export function ensureBundle() {
  const sources = Math.max(newestUnder(path.join(root, 'src')), statSync(path.join(root, 'package.json')).mtimeMs)
  if (bundleMtime() >= sources) return bundlePath
  const { buildSync } = createRequire(import.meta.url)('esbuild')
  const tmpDir = path.join(path.dirname(bundlePath), `.tmp-${process.pid}`)
  mkdirSync(tmpDir, { recursive: true })
  const name = path.basename(bundlePath)
  buildSync({
    entryPoints: [entry],
    outfile: path.join(tmpDir, name),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    sourcemap: 'linked',
    logLevel: 'error',
  })
  renameSync(path.join(tmpDir, `${name}.map`), `${bundlePath}.map`)
  renameSync(path.join(tmpDir, name), bundlePath)
  rmSync(tmpDir, { recursive: true, force: true })
  return bundlePath
}
