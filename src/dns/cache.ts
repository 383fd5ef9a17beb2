/**
 * The answer cache: encoded records per question, valid for one catalog revision.
 *
 * Invariants: every entry was built from the view at `#revision`; the first get or set at
 * another revision empties the cache before anything else (so no answer outlives the catalog
 * state it came from); at most `entriesMax` entries are held, the oldest inserted is evicted
 * first; `entriesMax` 0 disables caching. The key is the question's type, class and lower-cased
 * labels, so `WEB.service.cairn` and `web.service.cairn` share an entry (see cacheKey).
 */
import type { Answer } from './answer.ts'
import type { Question } from './query.ts'

export class AnswerCache {
  readonly #entriesMax: number
  readonly #entries = new Map<string, Answer>()
  #revision = -1
  hits = 0
  misses = 0
  /** Times the cache was emptied because the catalog revision moved. */
  invalidations = 0

  constructor(entriesMax: number) {
    this.#entriesMax = entriesMax
  }

  get size(): number {
    return this.#entries.size
  }

  get(question: Question, revision: number): Answer | undefined {
    this.#sync(revision)
    const answer = this.#entries.get(cacheKey(question))
    if (answer === undefined) this.misses++
    else this.hits++
    return answer
  }

  set(question: Question, revision: number, answer: Answer): void {
    this.#sync(revision)
    if (this.#entriesMax === 0) return
    if (this.#entries.size >= this.#entriesMax) {
      const oldest = this.#entries.keys().next().value as string
      this.#entries.delete(oldest)
    }
    this.#entries.set(cacheKey(question), answer)
  }

  #sync(revision: number): void {
    if (revision === this.#revision) return
    if (this.#entries.size > 0) this.invalidations++
    this.#entries.clear()
    this.#revision = revision
  }
}

/**
 * Labels are length-prefixed, not joined with dots: a label may hold any byte, a dot included, so
 * `["web.service", "cairn"]` and `["web", "service", "cairn"]` must not share an entry (a client
 * could otherwise park its odd question's NXDOMAIN under a real service's name).
 */
function cacheKey(question: Question): string {
  let key = `${question.type}/${question.class}/`
  for (const label of question.labels) key += `${label.length}:${label}`
  return key
}
