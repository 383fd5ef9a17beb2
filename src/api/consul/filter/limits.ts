/**
 * The limits of the `?filter=` expression language. Every one is checked while parsing, so an
 * expression that passes parseFilter costs a bounded amount of work per entry it is matched
 * against: at most termsMax terms, each walking its selector and comparing one value, and for
 * `matches` at most regexInstructionsMax steps per character of the string matched.
 *
 * Past a limit the caller gets a FilterError naming the limit, never a crash, a deep stack or a
 * hang. docs/consul-filter.md lists them with their reasons.
 */

/**
 * Bytes (UTF-8) of one expression. Consul sets no limit of its own, but a filter travels in a
 * query string and real ones are a few dozen bytes; 4 KiB leaves room for long generated lists.
 */
export const expressionBytesMax = 4096

/**
 * Parentheses and `not` nested inside each other. The parser recurses once per level, and so does
 * evaluation, so this bounds both stacks (`and`/`or` chains are flat lists and do not count).
 */
export const nestingDepthMax = 32

/**
 * Match terms (`Selector op value`) in one expression; go-bexpr's MaxMatches option plays the same
 * part. Evaluation cost per entry grows with it.
 */
export const termsMax = 64

/** Bytes (UTF-8) of one `matches` pattern. Also bounds the regex parser's recursion. */
export const regexPatternBytesMax = 512

/**
 * Instructions of one compiled pattern (counted repetition such as `a{1,100}` is unrolled). The
 * matcher steps every live instruction once per character, so a match costs at most this many
 * steps per character of the string: linear time, whatever the pattern.
 */
export const regexInstructionsMax = 1000

/** Repetition count in `{n}`, `{n,}`, `{n,m}`: RE2's own limit. */
export const regexRepeatMax = 1000
