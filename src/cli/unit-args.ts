/**
 * The unit arguments of `cairn unit`: names with brace expansion (`web@{1..6}.service`, see
 * expandUnitNames) or paths to unit files (`units/web.service`: the unit's name is the file's
 * basename). For the commands that submit (submit, load, start), a name is also looked up as a
 * file, as fleetctl did: `<dir>/<name>`, and for an instance with no file of its own its
 * template's, `<dir>/<prefix>@.service` (dir: the path given, else the working directory).
 *
 * A malformed name or pattern is bad arguments (exit 2); nothing is sent.
 */
import { readFileSync, statSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { UnitNameError } from '../scheduler/unit-error.ts'
import { expandUnitNames, parseUnitName, templateOf, type UnitName } from '../scheduler/unit-name.ts'
import { ClientError } from './endpoint.ts'

export interface UnitArg {
  name: UnitName
  /** The unit's own local file, when one is found. */
  file?: string
  /** For an instance without a file of its own: its template's local file, when one is found. */
  templateFile?: string
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile()
  } catch {
    return false
  }
}

/** Unit names (and where to look for their files) from the arguments, in order, without repeats. */
export function unitArgs(args: readonly string[], lookForFiles: boolean): UnitArg[] {
  const out: UnitArg[] = []
  const seen = new Set<string>()
  for (const arg of args) {
    const dir = arg.includes('/') ? dirname(arg) : '.'
    let names: string[]
    try {
      names = expandUnitNames(basename(arg))
    } catch (error) {
      if (error instanceof UnitNameError) throw new ClientError(`Error: ${error.message}`, 2)
      throw error
    }
    for (const text of names) {
      if (seen.has(text)) continue
      seen.add(text)
      const name = parseUnitName(text)
      const unit: UnitArg = { name }
      if (lookForFiles) {
        const own = join(dir, text)
        const template = templateOf(name)
        if (isFile(own)) unit.file = own
        else if (template !== undefined && isFile(join(dir, template)))
          unit.templateFile = join(dir, template)
      }
      out.push(unit)
    }
  }
  return out
}

/** A unit file's text; a file that cannot be read is a failure (exit 1). */
export function readUnitFile(path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (error) {
    throw new ClientError(`Error: cannot read ${path}: ${(error as Error).message}`)
  }
}
