/**
 * Proves systemd's environment rules as the runner applies them: EnvironmentFile syntax (comments,
 * quotes, escapes, continuations, export, bad lines skipped) and argv substitution ($VAR as whole
 * words split at whitespace, ${VAR} inside words, $$, unset names empty, $VAR inside a word kept).
 */
import { describe, expect, it } from 'vitest'
import { parseEnvironmentFile, substituteArgv } from './environment.ts'

describe('parseEnvironmentFile', () => {
  it.each([
    [
      'plain pairs, trimmed',
      'A=1\n  B = two words  \n',
      [
        ['A', '1'],
        ['B', 'two words'],
      ],
      [],
    ],
    ['comments and blank lines', '# c\n; c\n\nA=1\n', [['A', '1']], []],
    ['export prefix', 'export A=1\n', [['A', '1']], []],
    ['double quotes with escapes', 'A="x \\"y\\" \\$z\\\\"\n', [['A', 'x "y" $z\\']], []],
    ['single quotes are literal', "A='x \\n $y'\n", [['A', 'x \\n $y']], []],
    [
      'a quoted value spans lines',
      'A="one\ntwo"\nB=3\n',
      [
        ['A', 'one\ntwo'],
        ['B', '3'],
      ],
      [],
    ],
    [
      'an unquoted continuation',
      'A=one \\\n  two\nB=3\n',
      [
        ['A', 'one two'],
        ['B', '3'],
      ],
      [],
    ],
    ['bad lines are skipped with their numbers', 'junk\n1A=x\nA=ok\n', [['A', 'ok']], [1, 2]],
    [
      'CRLF line ends',
      'A=1\r\nB=2\r\n',
      [
        ['A', '1'],
        ['B', '2'],
      ],
      [],
    ],
  ])('%s', (_what, text, vars, skipped) => {
    expect(parseEnvironmentFile(text)).toEqual({ vars, skipped })
  })
})

describe('substituteArgv', () => {
  const env = new Map([
    ['A', 'one  two'],
    ['B', 'x y'],
    ['EMPTY', ''],
  ])
  it.each([
    ['$A as a word splits at whitespace', ['/bin/e', '$A'], ['/bin/e', 'one', 'two']],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: systemd's ${NAME}, not a template
    ['${B} in a word stays one word', ['/bin/e', '--b=${B}'], ['/bin/e', '--b=x y']],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: systemd's ${NAME}, not a template
    ['${B} alone stays one word', ['/bin/e', '${B}'], ['/bin/e', 'x y']],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: systemd's ${NAME}, not a template
    ['unset and empty names', ['/bin/e', '$NOPE', '$EMPTY', 'a${NOPE}b'], ['/bin/e', 'ab']],
    ['$$ is a dollar', ['/bin/e', '$$A', 'c$$'], ['/bin/e', '$A', 'c$']],
    ['$A inside a word is kept', ['/bin/e', 'x$A'], ['/bin/e', 'x$A']],
  ])('%s', (_what, argv, out) => {
    expect(substituteArgv(argv, env)).toEqual(out)
  })
})
