/**
 * Everything a unit's commands are started with, resolved from its file at start: the user, the
 * environment (base, Environment=, EnvironmentFile=, MAINPID for ExecStop), the working directory
 * and argv substitution. Reads files (EnvironmentFile, /etc/passwd) but spawns nothing.
 *
 * Rules:
 * - User= is honoured only when the agent runs as root; otherwise it must name the agent's own
 *   user (by name or id), else the start fails with a message saying so.
 * - A missing EnvironmentFile= or WorkingDirectory= without the `-` prefix fails the start; with
 *   it, the file is skipped and the directory is the default (`/`, as systemd's system manager).
 * - An EnvironmentFile larger than environmentFileBytesMax fails the start (it is read whole).
 */
import { readFileSync } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { userInfo } from 'node:os'
import type { UnitFile } from '../../scheduler/unit-file.ts'
import type { UnitCommand } from '../../scheduler/unit-values.ts'
import { baseEnvironment, parseEnvironmentFile, substituteArgv, type UserInfo } from './environment.ts'

export interface UnixUser extends UserInfo {
  uid: number
  gid: number
}

export interface UnitEnvironmentSource {
  agentEnv: NodeJS.ProcessEnv
  /** The user the agent runs as. */
  currentUser: UnixUser
  lookupUser(nameOrId: string): UnixUser | undefined
  /** The working directory without WorkingDirectory=. */
  defaultCwd: string
  environmentFileBytesMax: number
}

export interface Launch {
  env: ReadonlyMap<string, string>
  cwd: string
  /** Set only when switching user. */
  uid: number | undefined
  gid: number | undefined
  argv(command: UnitCommand): string[]
}

export async function resolveLaunch(
  file: UnitFile,
  source: UnitEnvironmentSource,
  mainPid?: number,
): Promise<Launch> {
  const service = file.service
  const user = resolveUser(service.user, source)
  const env = baseEnvironment(source.agentEnv, user)
  for (const [name, value] of service.environment) env.set(name, value)
  for (const envFile of service.environmentFiles) {
    const text = await readEnvironmentFile(envFile.path, envFile.optional, source.environmentFileBytesMax)
    if (text === undefined) continue
    for (const [name, value] of parseEnvironmentFile(text).vars) env.set(name, value)
  }
  if (mainPid !== undefined) env.set('MAINPID', String(mainPid))
  let cwd = source.defaultCwd
  const wd = service.workingDirectory
  if (wd !== undefined) {
    const isDir = await stat(wd.path).then(
      (s) => s.isDirectory(),
      () => false,
    )
    if (isDir) cwd = wd.path
    else if (!wd.optional) throw new Error(`WorkingDirectory ${wd.path}: not a directory`)
  }
  const switching = user.uid !== source.currentUser.uid
  return {
    env,
    cwd,
    uid: switching ? user.uid : undefined,
    gid: switching ? user.gid : undefined,
    argv: (command) => {
      const argv = substituteArgv(command.argv, env)
      if (argv[0] === undefined || argv[0] === '')
        throw new Error(`${command.argv[0]}: substitutes to no command`)
      return argv
    },
  }
}

function resolveUser(name: string | undefined, source: UnitEnvironmentSource): UnixUser {
  const current = source.currentUser
  if (name === undefined || name === current.name || name === String(current.uid)) return current
  if (current.uid !== 0) {
    throw new Error(
      `User=${name}: the agent runs as ${current.name}, not root, so it can only run units as ${current.name}`,
    )
  }
  const user = source.lookupUser(name)
  if (user === undefined) throw new Error(`User=${name}: no such user`)
  return user
}

async function readEnvironmentFile(
  path: string,
  optional: boolean,
  bytesMax: number,
): Promise<string | undefined> {
  const size = await stat(path).then(
    (s) => s.size,
    () => undefined,
  )
  if (size === undefined) {
    if (optional) return undefined
    throw new Error(`EnvironmentFile ${path}: not found`)
  }
  if (size > bytesMax)
    throw new Error(`EnvironmentFile ${path}: larger than environmentFileBytesMax (${bytesMax})`)
  return readFile(path, 'utf8')
}

/** The agent's own user. */
export function currentUnixUser(): UnixUser {
  const info = userInfo()
  return {
    uid: info.uid,
    gid: info.gid,
    name: info.username,
    home: info.homedir,
    shell: info.shell ?? '/bin/sh',
  }
}

/** Looks a user up in /etc/passwd by name or numeric id (no NSS: a plain file read). */
export function lookupPasswdUser(nameOrId: string, passwdPath = '/etc/passwd'): UnixUser | undefined {
  let text: string
  try {
    text = readFileSync(passwdPath, 'utf8')
  } catch {
    return undefined
  }
  for (const line of text.split('\n')) {
    const [name, , uid, gid, , home, shell] = line.split(':')
    if (name === undefined || uid === undefined || gid === undefined) continue
    if (name === nameOrId || uid === nameOrId) {
      return { name, uid: Number(uid), gid: Number(gid), home: home ?? '/', shell: shell ?? '/bin/sh' }
    }
  }
  if (/^\d+$/.test(nameOrId)) {
    const id = Number(nameOrId)
    return { name: nameOrId, uid: id, gid: id, home: '/', shell: '/bin/sh' }
  }
  return undefined
}
