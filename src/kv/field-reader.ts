/**
 * Typed reads of untrusted decoded data (commands, member contexts, snapshots).
 *
 * Every read either returns a value of the declared type within its bounds or throws a KvError
 * with the reader's code (KV_COMMAND_INVALID, KV_SNAPSHOT_INVALID, or a more specific one) naming
 * the field; nothing here can crash on hostile input (no recursion on input depth, no prototype
 * access: only own properties of plain objects are read).
 */
import { KvError, type KvErrorCode } from './kv-error.ts'
import { utf8Bytes } from './limits.ts'
import { isPlainObject } from './msgpack.ts'

export class FieldReader {
  readonly #object: Record<string, unknown>
  readonly #where: string
  readonly #code: KvErrorCode
  readonly #index: number

  constructor(value: unknown, where: string, code: KvErrorCode, index: number) {
    if (!isPlainObject(value)) throw new KvError(code, `${where}: not a map`, index)
    this.#object = value
    this.#where = where
    this.#code = code
    this.#index = index
  }

  /** The store revision errors carry. */
  get index(): number {
    return this.#index
  }

  fail(detail: string, code: KvErrorCode = this.#code): never {
    throw new KvError(code, `${this.#where}: ${detail}`, this.#index)
  }

  has(name: string): boolean {
    return (
      Object.hasOwn(this.#object, name) && this.#object[name] !== undefined && this.#object[name] !== null
    )
  }

  raw(name: string): unknown {
    return Object.hasOwn(this.#object, name) ? this.#object[name] : undefined
  }

  string(name: string, bytesMax: number, code?: KvErrorCode): string {
    const value = this.raw(name)
    if (typeof value !== 'string') this.fail(`${name} must be a string`)
    if (value.length > bytesMax || utf8Bytes(value) > bytesMax)
      this.fail(`${name} longer than ${bytesMax} bytes`, code)
    return value
  }

  optionalString(name: string, bytesMax: number, code?: KvErrorCode): string | undefined {
    return this.has(name) ? this.string(name, bytesMax, code) : undefined
  }

  integer(name: string, min: number, max: number, code?: KvErrorCode): number {
    const value = this.raw(name)
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) this.fail(`${name} must be an integer`)
    if (value < min || value > max) this.fail(`${name} must be in [${min}, ${max}]`, code)
    return value
  }

  optionalInteger(name: string, min: number, max: number, code?: KvErrorCode): number | undefined {
    return this.has(name) ? this.integer(name, min, max, code) : undefined
  }

  boolean(name: string): boolean {
    if (!this.has(name)) return false
    const value = this.raw(name)
    if (typeof value !== 'boolean') this.fail(`${name} must be a boolean`)
    return value
  }

  array(name: string, lengthMax: number, code?: KvErrorCode): unknown[] {
    const value = this.raw(name)
    if (!Array.isArray(value)) this.fail(`${name} must be an array`)
    if (value.length > lengthMax) this.fail(`${name} has more than ${lengthMax} items`, code)
    return value
  }

  optionalArray(name: string, lengthMax: number, code?: KvErrorCode): unknown[] {
    return this.has(name) ? this.array(name, lengthMax, code) : []
  }

  /** A nested map, read with the same code and index. */
  object(name: string): FieldReader {
    return new FieldReader(this.raw(name), `${this.#where}.${name}`, this.#code, this.#index)
  }

  /** Reads an array item as a map. */
  item(value: unknown, position: number, name: string): FieldReader {
    return new FieldReader(value, `${this.#where}.${name}[${position}]`, this.#code, this.#index)
  }
}

/** An array of strings, each within bytesMax. */
export function stringList(reader: FieldReader, name: string, lengthMax: number, bytesMax: number): string[] {
  const list = reader.optionalArray(name, lengthMax)
  for (const item of list) {
    if (typeof item !== 'string' || utf8Bytes(item) > bytesMax)
      reader.fail(`${name} must hold strings of <= ${bytesMax} bytes`)
  }
  return list as string[]
}

/**
 * A short description of an untrusted value for an error message. Never calls the value's own
 * methods: String() of a decoded object can throw (a `toString` field that is not a function).
 */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.slice(0, 64))
    case 'number':
    case 'boolean':
    case 'bigint':
      return `${value}`
    case 'undefined':
      return 'undefined'
    default:
      if (value === null) return 'null'
      if (Array.isArray(value)) return 'an array'
      if (value instanceof Uint8Array) return 'bytes'
      return `a ${typeof value}`
  }
}
