/**
 * A compiled `matches` pattern and its matcher: Thompson's construction run as a Pike VM, the
 * technique of RE2 and Go's regexp. All live threads advance together over the string, one code
 * point at a time, and a thread is added at most once per position, so a test costs at most
 * (instructions x code points) steps whatever the pattern: no backtracking, no blow-up.
 *
 * Program invariants: instruction 0 is the entry; `next` of a consuming instruction is pc + 1;
 * split and jump targets are inside the program; the last instruction is `match`. The program has
 * at most regexInstructionsMax instructions (counted repetition is unrolled, and compiling stops
 * with an error as soon as it would pass the limit).
 *
 * `test` answers whether the pattern matches anywhere in the string (Go's regexp.MatchString):
 * unanchored unless the pattern says `^` or `\A`.
 */
import { regexInstructionsMax } from './limits.ts'
import {
  type Assertion,
  type CharClass,
  parseRegex,
  type RegexNode,
  RegexSyntaxError,
} from './regex-syntax.ts'

const opClass = 0
const opAny = 1
const opAnyNotNewline = 2
const opSplit = 3
const opJump = 4
const opAssert = 5
const opMatch = 6

interface Instruction {
  readonly op: number
  /** Jump target, or the first branch of a split. */
  x: number
  /** The second branch of a split. */
  y: number
  readonly cls: CharClass | null
  readonly assertion: Assertion | null
}

export class RegexProgram {
  readonly #program: readonly Instruction[]
  /** The pattern begins with `^`/`\A`: once no thread is live, nothing later can match. */
  readonly #anchoredAtStart: boolean
  // Scratch space reused by every test (test is synchronous and never re-entered).
  readonly #current: Int32Array
  readonly #next: Int32Array
  readonly #addedAt: Int32Array
  readonly #stack: Int32Array

  constructor(program: readonly Instruction[]) {
    this.#program = program
    const first = program[0]!
    this.#anchoredAtStart = first.op === opAssert && first.assertion === 'textStart'
    this.#current = new Int32Array(program.length)
    this.#next = new Int32Array(program.length)
    this.#addedAt = new Int32Array(program.length)
    this.#stack = new Int32Array(program.length)
  }

  get instructions(): number {
    return this.#program.length
  }

  test(input: string): boolean {
    const codes = codePointsOf(input)
    this.#addedAt.fill(-1)
    let current = this.#current
    let next = this.#next
    let live = 0
    for (let at = 0; ; at++) {
      const added = this.#addThread(current, live, 0, at, codes)
      if (added < 0) return true
      live = added
      if (at === codes.length || (live === 0 && this.#anchoredAtStart && at > 0)) return false
      const code = codes[at]!
      let nextLive = 0
      for (let i = 0; i < live; i++) {
        const pc = current[i]!
        if (!consumes(this.#program[pc]!, code)) continue
        nextLive = this.#addThread(next, nextLive, pc + 1, at + 1, codes)
        if (nextLive < 0) return true
      }
      const swap = current
      current = next
      next = swap
      live = nextLive
    }
  }

  /**
   * Adds the thread at `pc` and everything reachable from it without consuming input to `list`
   * (holding `count` threads) at position `at`. Returns the new count, or -1 if `match` is reached.
   */
  #addThread(list: Int32Array, count: number, pc: number, at: number, codes: Int32Array): number {
    const stack = this.#stack
    let depth = 0
    if (this.#addedAt[pc] === at) return count
    this.#addedAt[pc] = at
    stack[depth++] = pc
    while (depth > 0) {
      const here = stack[--depth]!
      const instruction = this.#program[here]!
      let follow = -1
      let also = -1
      switch (instruction.op) {
        case opMatch:
          return -1
        case opJump:
          follow = instruction.x
          break
        case opSplit:
          follow = instruction.x
          also = instruction.y
          break
        case opAssert:
          if (holds(instruction.assertion!, at, codes)) follow = here + 1
          break
        default:
          list[count++] = here
      }
      if (also >= 0 && this.#addedAt[also] !== at) {
        this.#addedAt[also] = at
        stack[depth++] = also
      }
      if (follow >= 0 && this.#addedAt[follow] !== at) {
        this.#addedAt[follow] = at
        stack[depth++] = follow
      }
    }
    return count
  }
}

/** Parses and compiles `pattern`; throws RegexSyntaxError (with the pattern index) if it is not valid. */
export function compileRegex(pattern: string): RegexProgram {
  const compiler = new Compiler()
  compiler.node(parseRegex(pattern))
  compiler.emit(opMatch)
  return new RegexProgram(compiler.program)
}

class Compiler {
  readonly program: Instruction[] = []

  emit(op: number, x = -1, y = -1, cls: CharClass | null = null, assertion: Assertion | null = null): number {
    if (this.program.length >= regexInstructionsMax) {
      throw new RegexSyntaxError(`expression too large (more than ${regexInstructionsMax} instructions)`, 0)
    }
    this.program.push({ op, x, y, cls, assertion })
    return this.program.length - 1
  }

  get pc(): number {
    return this.program.length
  }

  node(node: RegexNode): void {
    switch (node.kind) {
      case 'empty':
        return
      case 'class':
        this.emit(opClass, -1, -1, node.cls)
        return
      case 'any':
        this.emit(node.newline ? opAny : opAnyNotNewline)
        return
      case 'assert':
        this.emit(opAssert, -1, -1, null, node.assertion)
        return
      case 'concat':
        for (const item of node.items) this.node(item)
        return
      case 'alternate':
        this.#alternate(node.items)
        return
      case 'repeat':
        this.#repeat(node.item, node.min, node.max)
        return
    }
  }

  #alternate(items: readonly RegexNode[]): void {
    const jumps: number[] = []
    for (let i = 0; i < items.length - 1; i++) {
      const split = this.emit(opSplit, this.pc + 1)
      this.node(items[i]!)
      jumps.push(this.emit(opJump))
      this.program[split]!.y = this.pc
    }
    this.node(items[items.length - 1]!)
    for (const jump of jumps) this.program[jump]!.x = this.pc
  }

  /** x{min,max}: min copies, then max-min optional ones (or a loop when max is -1). */
  #repeat(item: RegexNode, min: number, max: number): void {
    const copies = max === -1 && min > 0 ? min - 1 : min
    for (let i = 0; i < copies; i++) this.node(item)
    if (max === -1 && min > 0) {
      // x+ : x, then back to x or on.
      const start = this.pc
      this.node(item)
      this.emit(opSplit, start, this.pc + 1)
      return
    }
    if (max === -1) {
      // x* : on to x or past the loop; after x, back to the split.
      const split = this.emit(opSplit, this.pc + 1)
      this.node(item)
      this.emit(opJump, split)
      this.program[split]!.y = this.pc
      return
    }
    const splits: number[] = []
    for (let i = min; i < max; i++) {
      splits.push(this.emit(opSplit, this.pc + 1))
      this.node(item)
    }
    for (const split of splits) this.program[split]!.y = this.pc
  }
}

function consumes(instruction: Instruction, code: number): boolean {
  switch (instruction.op) {
    case opAny:
      return true
    case opAnyNotNewline:
      return code !== 0x0a
    default:
      return classHas(instruction.cls!, code)
  }
}

export function classHas(cls: CharClass, code: number): boolean {
  let hit = inRanges(cls.ranges, code)
  if (!hit && cls.fold) {
    const lower = simpleCase(code, 'lower')
    const upper = simpleCase(code, 'upper')
    hit = (lower !== code && inRanges(cls.ranges, lower)) || (upper !== code && inRanges(cls.ranges, upper))
  }
  return hit !== cls.negated
}

function inRanges(ranges: readonly number[], code: number): boolean {
  for (let i = 0; i < ranges.length; i += 2) {
    if (code < ranges[i]!) return false
    if (code <= ranges[i + 1]!) return true
  }
  return false
}

/** The simple (one code point to one code point) case mapping, or `code` itself. */
function simpleCase(code: number, to: 'lower' | 'upper'): number {
  if (code < 0x80) {
    if (to === 'lower') return code >= 0x41 && code <= 0x5a ? code + 0x20 : code
    return code >= 0x61 && code <= 0x7a ? code - 0x20 : code
  }
  const char = String.fromCodePoint(code)
  const mapped = to === 'lower' ? char.toLowerCase() : char.toUpperCase()
  const first = mapped.codePointAt(0)!
  return mapped.length === (first > 0xffff ? 2 : 1) ? first : code
}

function holds(assertion: Assertion, at: number, codes: Int32Array): boolean {
  const before = at > 0 ? codes[at - 1]! : -1
  const after = at < codes.length ? codes[at]! : -1
  switch (assertion) {
    case 'textStart':
      return at === 0
    case 'textEnd':
      return at === codes.length
    case 'lineStart':
      return at === 0 || before === 0x0a
    case 'lineEnd':
      return at === codes.length || after === 0x0a
    case 'wordBoundary':
      return isWordChar(before) !== isWordChar(after)
    case 'notWordBoundary':
      return isWordChar(before) === isWordChar(after)
  }
}

/** RE2's \b is ASCII: [0-9A-Za-z_]. */
function isWordChar(code: number): boolean {
  return (
    (code >= 0x30 && code <= 0x39) ||
    (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x61 && code <= 0x7a) ||
    code === 0x5f
  )
}

function codePointsOf(input: string): Int32Array {
  const codes = new Int32Array(input.length)
  let count = 0
  for (let i = 0; i < input.length; ) {
    const code = input.codePointAt(i)!
    codes[count++] = code
    i += code > 0xffff ? 2 : 1
  }
  return codes.subarray(0, count)
}
