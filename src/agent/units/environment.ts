/**
 * A unit's environment and command lines, as systemd builds them (systemd.exec(5),
 * systemd.service(5)): pure functions, no IO.
 *
 * - The base is small, not the agent's own environment: PATH (the agent's), LANG when set, and
 *   HOME, USER, LOGNAME, SHELL of the user the unit runs as. Then Environment= in order, then each
 *   EnvironmentFile= in order (systemd: files override Environment=).
 * - EnvironmentFile syntax: `KEY=VALUE` lines; blank lines and lines starting with `#` or `;` are
 *   skipped; an optional `export ` before the key; whitespace around key and value is trimmed;
 *   a value in double quotes takes `\"`, `\\`, `\$`, `` \` `` and `\n` escapes and may span lines; a
 *   value in single quotes is literal and may span lines; an unquoted value ending in `\`
 *   continues on the next line. A line that is not an assignment is skipped (systemd warns and
 *   skips too); the skipped line numbers are returned for the runner to log.
 * - Substitution in argv: a word that is exactly `$NAME` becomes the value split at whitespace
 *   (zero or more words); `${NAME}` anywhere in a word becomes the value as one piece; `$$` is a
 *   literal `$`. Unset names are empty. `$NAME` inside a longer word is left as written (systemd).
 */
const nameRe = /^[A-Za-z_][A-Za-z0-9_]*$/

export interface EnvironmentFileResult {
  vars: Array<[string, string]>
  /** 1-based lines that were not assignments. */
  skipped: number[]
}

export function parseEnvironmentFile(text: string): EnvironmentFileResult {
  const lines = text.replace(/\r\n/g, '\n').split('\n')
  const vars: Array<[string, string]> = []
  const skipped: number[] = []
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trimStart()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const eq = line.indexOf('=')
    let key = eq < 0 ? '' : line.slice(0, eq).trim()
    if (key.startsWith('export ')) key = key.slice('export '.length).trim()
    if (!nameRe.test(key)) {
      skipped.push(i + 1)
      continue
    }
    const first = line.slice(eq + 1).trimStart()
    const { value, next } = readValue(first, lines, i)
    vars.push([key, value])
    i = next
  }
  return { vars, skipped }
}

/** The value starting at `first` (the rest of line `at`); returns it and the last line it used. */
function readValue(first: string, lines: string[], at: number): { value: string; next: number } {
  const quote = first[0]
  if (quote === '"' || quote === "'") {
    let text = first.slice(1)
    let next = at
    let out = ''
    for (;;) {
      for (let j = 0; j < text.length; j++) {
        const c = text[j] as string
        if (c === quote) return { value: out, next }
        if (quote === '"' && c === '\\' && j + 1 < text.length) {
          const e = text[++j] as string
          out += e === 'n' ? '\n' : e === '"' || e === '\\' || e === '$' || e === '`' ? e : `\\${e}`
          continue
        }
        out += c
      }
      if (next + 1 >= lines.length) return { value: out, next } // unterminated: up to the end
      next++
      out += '\n'
      text = lines[next] ?? ''
    }
  }
  let value = first
  let next = at
  while (value.endsWith('\\') && next + 1 < lines.length) {
    next++
    value = value.slice(0, -1) + (lines[next] ?? '').trimStart()
  }
  return { value: value.trimEnd(), next }
}

/** systemd's argv substitution (see the header). */
export function substituteArgv(argv: readonly string[], env: ReadonlyMap<string, string>): string[] {
  const out: string[] = []
  for (const word of argv) {
    const whole = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word)
    if (whole !== null) {
      const value = env.get(whole[1] as string) ?? ''
      for (const part of value.split(/\s+/)) if (part !== '') out.push(part)
      continue
    }
    out.push(
      word.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string | undefined) =>
        name === undefined ? '$' : (env.get(name) ?? ''),
      ),
    )
  }
  return out
}

export interface UserInfo {
  name: string
  home: string
  shell: string
}

/** The base environment of every unit (see the header). */
export function baseEnvironment(agentEnv: NodeJS.ProcessEnv, user: UserInfo): Map<string, string> {
  const env = new Map<string, string>()
  env.set('PATH', agentEnv.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')
  if (agentEnv.LANG !== undefined) env.set('LANG', agentEnv.LANG)
  env.set('HOME', user.home)
  env.set('USER', user.name)
  env.set('LOGNAME', user.name)
  env.set('SHELL', user.shell)
  return env
}
