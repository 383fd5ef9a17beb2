/**
 * Proves the unit file model key by key: every key of [Unit], [Service], [X-Fleet] and [X-Cairn] with
 * its default, list resets, last-wins, specifier expansion for instances, templates checked as a
 * sample instance, kept-as-metadata keys and sections, fleet's combination rules, the spread
 * defaults; and that every refusal names file, line and key.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { UnitFileError, UnitNameError } from './unit-error.ts'
import { checkUnitTemplate, parseUnitFile } from './unit-file.ts'
import { expandUnitNames } from './unit-name.ts'

const minimal = '[Service]\nExecStart=/usr/bin/web\n'

function parse(text: string, name = 'web.service') {
  return parseUnitFile(text, { name })
}

function refusal(text: string, name = 'web@1.service'): UnitFileError {
  try {
    parseUnitFile(text, { name, file: 'units/web' })
  } catch (error) {
    expect(error).toBeInstanceOf(UnitFileError)
    return error as UnitFileError
  }
  throw new Error('expected a refusal')
}

describe('unit file defaults', () => {
  it('a minimal service has systemd and fleet defaults and no spread', () => {
    const unit = parse(minimal)
    expect(unit.name.name).toBe('web.service')
    expect(unit.file).toBe('web.service')
    expect(unit.unit).toEqual({
      description: '',
      documentation: [],
      after: [],
      before: [],
      requires: [],
      wants: [],
    })
    expect(unit.service).toEqual({
      type: 'simple',
      execStart: { argv: ['/usr/bin/web'], ignoreFailure: false, line: 2 },
      execStartPre: [],
      execStop: [],
      environment: [],
      environmentFiles: [],
      workingDirectory: undefined,
      user: undefined,
      restart: 'no',
      restartMs: 100,
      timeoutStopMs: 90_000,
    })
    expect(unit.fleet).toEqual({
      machineId: undefined,
      machineOf: [],
      machineMetadata: [],
      conflicts: [],
      global: false,
      replaces: [],
    })
    expect(unit.spread).toBeUndefined()
    expect(unit.options).toEqual([{ section: 'Service', name: 'ExecStart', value: '/usr/bin/web', line: 2 }])
  })

  it('an instance gets the default spread: region > zone > machine, skew 1, soft', () => {
    const unit = parse(minimal, 'web@1.service')
    expect(unit.spread).toEqual({
      topology: ['region', 'zone', 'machine'],
      maxSkew: [
        { level: 'region', count: 1, mode: 'soft', line: 0 },
        { level: 'zone', count: 1, mode: 'soft', line: 0 },
        { level: 'machine', count: 1, mode: 'soft', line: 0 },
      ],
      caps: [],
    })
  })
})

describe('[Unit]', () => {
  it('keeps Description (last wins) and the ordering lists as metadata', () => {
    const unit = parse(`[Unit]
Description=first
Description=Web server %n
Documentation=https://example.com/a man:web(8)
After=network-online.target docker.service
After=etcd.service
Before=late.target
Requires=docker.socket
Wants=a.service
Wants=
Wants=b.service
${minimal}`)
    expect(unit.unit).toEqual({
      description: 'Web server web.service',
      documentation: ['https://example.com/a', 'man:web(8)'],
      after: ['network-online.target', 'docker.service', 'etcd.service'],
      before: ['late.target'],
      requires: ['docker.socket'],
      wants: ['b.service'],
    })
  })

  it('keeps unknown [Unit] and [Service] keys, [Install] and X-* sections as ignored metadata', () => {
    const unit = parse(
      `[Unit]\nBindsTo=x.service\n${minimal}KillMode=process\n[Install]\nWantedBy=multi-user.target\n[X-Other]\nAnything=goes\n`,
    )
    expect(unit.ignored.map((o) => `${o.section}.${o.name}=${o.value}@${o.line}`)).toEqual([
      'Unit.BindsTo=x.service@2',
      'Service.KillMode=process@5',
      'Install.WantedBy=multi-user.target@7',
      'X-Other.Anything=goes@9',
    ])
  })
})

describe('[Service]', () => {
  it('parses commands with quoting and the - prefix; ExecStartPre and ExecStop repeat', () => {
    const unit = parse(`[Service]
ExecStartPre=-/bin/rm -f /tmp/%p.sock
ExecStartPre=/bin/echo "hello world" $HOME
ExecStart=node server.js --port=\${PORT}
ExecStop=/bin/kill -TERM $MAINPID
ExecStop=/bin/sleep 1
`)
    expect(unit.service.execStartPre).toEqual([
      { argv: ['/bin/rm', '-f', '/tmp/web.sock'], ignoreFailure: true, line: 2 },
      { argv: ['/bin/echo', 'hello world', '$HOME'], ignoreFailure: false, line: 3 },
    ])
    expect(unit.service.execStart).toEqual({
      argv: ['node', 'server.js', '--port=$' + '{PORT}'],
      ignoreFailure: false,
      line: 4,
    })
    expect(unit.service.execStop.map((c) => c.argv[0])).toEqual(['/bin/kill', '/bin/sleep'])
  })

  it('an empty ExecStart resets, so a drop-in style override leaves one', () => {
    const unit = parse(
      '[Service]\nExecStart=/bin/a\nExecStart=\nExecStart=/bin/b\nExecStartPre=/bin/x\nExecStartPre=\n',
    )
    expect(unit.service.execStart.argv).toEqual(['/bin/b'])
    expect(unit.service.execStartPre).toEqual([])
  })

  it('Environment: quoted forms as systemd, later names replace earlier ones, empty resets', () => {
    const quoted = parse(`${minimal}Environment="A=1 B=2" "C=x y" D=3 'E=it''s'\n`)
    // As systemd: a quoted word is one assignment, so A is "1 B=2".
    expect(quoted.service.environment).toEqual([
      ['A', '1 B=2'],
      ['C', 'x y'],
      ['D', '3'],
      ['E', 'its'],
    ])
    const unit = parse(`${minimal}Environment=OLD=1
Environment=
Environment="A=1" "B=2" C=3
Environment='D=x y' A=9
Environment=E=
`)
    expect(unit.service.environment).toEqual([
      ['B', '2'],
      ['C', '3'],
      ['D', 'x y'],
      ['A', '9'],
      ['E', ''],
    ])
  })

  it('EnvironmentFile repeats with an optional - prefix; WorkingDirectory, User, Type', () => {
    const unit = parse(`[Service]
EnvironmentFile=/etc/web.env
EnvironmentFile=-/etc/web.%i.env
WorkingDirectory=-/srv/web
User=www-data
Type=exec
${minimal.slice(10)}`)
    expect(unit.service.environmentFiles).toEqual([
      { path: '/etc/web.env', optional: false },
      { path: '/etc/web..env', optional: true },
    ])
    expect(unit.service.workingDirectory).toEqual({ path: '/srv/web', optional: true })
    expect(unit.service.user).toBe('www-data')
    expect(unit.service.type).toBe('exec')
  })

  it.each([
    ['Restart=on-failure', { restart: 'on-failure' }],
    ['Restart=always', { restart: 'always' }],
    ['Restart=always\nRestart=', { restart: 'no' }],
    ['RestartSec=5s', { restartMs: 5_000 }],
    ['RestartSec=1min 30s', { restartMs: 90_000 }],
    ['RestartSec=500ms', { restartMs: 500 }],
    ['RestartSec=2', { restartMs: 2_000 }],
    ['TimeoutStopSec=30', { timeoutStopMs: 30_000 }],
    ['TimeoutStopSec=infinity', { timeoutStopMs: null }],
    ['TimeoutStopSec=0', { timeoutStopMs: null }],
    ['TimeoutStopSec=5s\nTimeoutStopSec=', { timeoutStopMs: 90_000 }],
    ['User=1000\nUser=', { user: undefined }],
  ])('%s', (lines, expected) => {
    expect(parse(`${minimal}${lines}\n`).service).toMatchObject(expected)
  })
})

describe('[X-Fleet]', () => {
  it('parses every key; MachineMetadata follows fleet (AND across keys, OR within a key)', () => {
    const unit = parse(`${minimal}[X-Fleet]
MachineID=n1
MachineMetadata="region=eu" "disk=ssd"
MachineMetadata=region=us
Conflicts=web@*.service "api-?.service"
Conflicts=db.service
`)
    expect(unit.fleet).toEqual({
      machineId: 'n1',
      machineOf: [],
      machineMetadata: [
        { key: 'region', values: ['eu', 'us'] },
        { key: 'disk', values: ['ssd'] },
      ],
      conflicts: ['web@*.service', 'api-?.service', 'db.service'],
      global: false,
      replaces: [],
    })
  })

  it('expands specifiers in [X-Fleet] for instances (fleet does)', () => {
    const unit = parse(
      `${minimal}[X-Fleet]\nMachineOf=db@%i.service\nMachineMetadata=slot=%i\nConflicts=%p@*.service\n`,
      'web@4.service',
    )
    expect(unit.fleet.machineOf).toEqual(['db@4.service'])
    expect(unit.fleet.machineMetadata).toEqual([{ key: 'slot', values: ['4'] }])
    expect(unit.fleet.conflicts).toEqual(['web@*.service'])
  })

  it('Global units, Replaces, and systemd booleans', () => {
    expect(
      parse(`${minimal}[X-Fleet]\nGlobal=true\nMachineMetadata=role=edge\nConflicts=x.service\n`).fleet
        .global,
    ).toBe(true)
    expect(parse(`${minimal}[X-Fleet]\nGlobal=yes\nGlobal=off\n`).fleet.global).toBe(false)
    expect(parse(`${minimal}[X-Fleet]\nReplaces=old.service\n`).fleet.replaces).toEqual(['old.service'])
  })

  it('a Global instance takes no spread', () => {
    expect(parse(`${minimal}[X-Fleet]\nGlobal=true\n`, 'agent@1.service').spread).toBeUndefined()
  })
})

describe('[X-Cairn]', () => {
  it('Topology, MaxSkew and Cap, repeatable, with modes; levels without a rule get skew 1 soft', () => {
    const unit = parse(
      `${minimal}[X-Cairn]
Topology=region, zone, rack, machine
MaxSkew=zone:1
MaxSkew=rack:2:soft machine:1:hard
Cap=machine:2
Cap=zone:10:soft
`,
      'web@1.service',
    )
    expect(unit.spread).toEqual({
      topology: ['region', 'zone', 'rack', 'machine'],
      maxSkew: [
        { level: 'region', count: 1, mode: 'soft', line: 0 },
        { level: 'zone', count: 1, mode: 'hard', line: 5 },
        { level: 'rack', count: 2, mode: 'soft', line: 6 },
        { level: 'machine', count: 1, mode: 'hard', line: 6 },
      ],
      caps: [
        { level: 'machine', count: 2, mode: 'hard', line: 7 },
        { level: 'zone', count: 10, mode: 'soft', line: 8 },
      ],
    })
  })

  it('empty assignments reset Topology to the default and rule lists to empty', () => {
    const unit = parse(`${minimal}[X-Cairn]\nTopology=dc\nTopology=\nCap=zone:1\nCap=\n`, 'web@1.service')
    expect(unit.spread?.topology).toEqual(['region', 'zone', 'machine'])
    expect(unit.spread?.caps).toEqual([])
  })
})

describe('[X-Cairn] registration', () => {
  it.each([
    ['a plain unit', 'web.service', ''],
    ['an instance', 'web@3.service', ''],
    ['a Global unit', 'web.service', '[X-Fleet]\nGlobal=true\n'],
  ])('is allowed in %s, with specifiers, repeatable tags and check defaults', (_what, name, extra) => {
    const unit = parse(
      `${minimal}${extra}[X-Cairn]\nServiceName=%p\nServicePort=808%i\nServiceTags=a "b c"\nServiceTags=d\nCheckTCP=127.0.0.1:808%i\n`,
      name,
    )
    const instance = name === 'web@3.service' ? '3' : ''
    expect(unit.registration).toEqual({
      name: 'web',
      port: Number(`808${instance}`),
      tags: ['a', 'b c', 'd'],
      check: { tcp: `127.0.0.1:808${instance}`, intervalMs: 10_000, timeoutMs: 5_000 },
    })
  })

  it.each([
    ['no [X-Cairn] at all', '', undefined],
    [
      'a name alone: port 0, no tags, no check',
      'ServiceName=web\n',
      { name: 'web', port: 0, tags: [], check: undefined },
    ],
    [
      'an HTTP check with its interval and timeout',
      'ServiceName=web\nServicePort=80\nCheckHTTP=https://[::1]:80/health?x=1\nCheckInterval=2s\nCheckTimeout=500ms\n',
      {
        name: 'web',
        port: 80,
        tags: [],
        check: { http: 'https://[::1]:80/health?x=1', intervalMs: 2000, timeoutMs: 500 },
      },
    ],
    [
      'resets: an empty CheckHTTP drops the check, so CheckTCP is the one',
      'ServiceName=web\nCheckHTTP=http://h/\nCheckHTTP=\nCheckTCP=[::1]:9\nServiceTags=x\nServiceTags=\n',
      { name: 'web', port: 0, tags: [], check: { tcp: '[::1]:9', intervalMs: 10_000, timeoutMs: 5_000 } },
    ],
  ])('%s', (_what, section, registration) => {
    const unit = parse(section === '' ? minimal : `${minimal}[X-Cairn]\n${section}`)
    expect(unit.registration).toEqual(registration)
  })
})

describe('[X-Cairn] rolling updates', () => {
  it.each([
    ['a plain unit gets the defaults', 'web.service', '', { parallelism: 1, timeoutMs: 60_000 }],
    ['an instance gets the defaults', 'web@1.service', '', { parallelism: 1, timeoutMs: 60_000 }],
    [
      'an instance takes UpdateParallelism and UpdateTimeoutSec',
      'web@1.service',
      '[X-Cairn]\nUpdateParallelism=3\nUpdateTimeoutSec=2min\n',
      { parallelism: 3, timeoutMs: 120_000 },
    ],
    [
      'empty assignments reset to the defaults',
      'web@1.service',
      '[X-Cairn]\nUpdateParallelism=3\nUpdateParallelism=\nUpdateTimeoutSec=5\nUpdateTimeoutSec=\n',
      { parallelism: 1, timeoutMs: 60_000 },
    ],
  ])('%s', (_what, name, section, update) => {
    expect(parse(`${minimal}${section}`, name).update).toEqual(update)
  })
})

describe('templates', () => {
  it('a template is checked as its instance @1 and its instances expand their own name', () => {
    const text = `[Unit]\nDescription=web %i\n${minimal}[X-Fleet]\nMachineMetadata=slot=%i\n`
    const sample = checkUnitTemplate(text, { name: 'web@.service' })
    expect(sample.name.name).toBe('web@1.service')
    expect(sample.file).toBe('web@.service')
    expect(parseUnitFile(text, { name: 'web@7.service' }).unit.description).toBe('web 7')
  })

  it('names are checked: a template is not parsed as a unit, checkUnitTemplate takes only templates', () => {
    expect(() => parseUnitFile(minimal, { name: 'web@.service' })).toThrow(UnitNameError)
    expect(() => checkUnitTemplate(minimal, { name: 'web.service' })).toThrow('not a template')
    expect(() => parseUnitFile(minimal, { name: 'web.timer' })).toThrow(UnitNameError)
  })
})

describe('refusals name file, line and key', () => {
  it.each([
    // [Service]
    ['[Unit]\nDescription=x\n', 0, 'ExecStart', 'missing'],
    ['[Service]\nUser=x\n', 1, 'ExecStart', 'missing'],
    [`${minimal}ExecStart=/bin/other\n`, 3, 'ExecStart', 'more than one ExecStart'],
    ['[Service]\nExecStart=\n', 1, 'ExecStart', 'missing'],
    ['[Service]\nExecStart=bin/web\n', 2, 'ExecStart', 'absolute path or a bare name'],
    ['[Service]\nExecStart=-\n', 2, 'ExecStart', 'no command'],
    ['[Service]\nExecStart=@/bin/a a\n', 2, 'ExecStart', 'the @ prefix'],
    ['[Service]\nExecStart=+/bin/a\n', 2, 'ExecStart', 'the + prefix'],
    ['[Service]\nExecStart=/bin/a "open\n', 2, 'ExecStart', 'unterminated'],
    [`${minimal}ExecStartPre=!!/bin/a\n`, 3, 'ExecStartPre', 'the ! and !! prefixes'],
    [`${minimal}Environment=1A=x\n`, 3, 'Environment', 'not NAME=value'],
    [`${minimal}Environment=NOEQUALS\n`, 3, 'Environment', 'not NAME=value'],
    [`${minimal}EnvironmentFile=relative.env\n`, 3, 'EnvironmentFile', 'not an absolute path'],
    [`${minimal}WorkingDirectory=~\n`, 3, 'WorkingDirectory', 'not an absolute path'],
    [`${minimal}User=root;rm\n`, 3, 'User', 'not a user name'],
    [`${minimal}Restart=on-abort\n`, 3, 'Restart', 'not one of no, on-failure, always'],
    [`${minimal}RestartSec=fast\n`, 3, 'RestartSec', 'not a time span'],
    [`${minimal}TimeoutStopSec=8d\n`, 3, 'TimeoutStopSec', 'timeSpanMsMax'],
    [`${minimal}Type=forking\n`, 3, 'Type', 'not one of simple, exec'],
    [`${minimal}ExecStop=/bin/x %H\n`, 3, 'ExecStop', 'unsupported specifier %H'],
    // [Unit]
    [`[Unit]\nAfter=not a unit\n${minimal}`, 2, 'After', '"not" is not a unit name'],
    // sections
    [`${minimal}[Socket]\nListenStream=80\n`, 3, '[Socket]', 'unknown section'],
    [`${minimal}[Servce]\n`, 3, '[Servce]', 'unknown section'],
    // [X-Fleet]
    [`${minimal}[X-Fleet]\nMachineID=\nMachineId=n1\n`, 5, 'MachineId', 'unknown key in [X-Fleet]'],
    [`${minimal}[X-Fleet]\nX-ConditionMachineID=n1\n`, 4, 'X-ConditionMachineID', 'use MachineID'],
    [`${minimal}[X-Fleet]\nMachineID=a b\n`, 4, 'MachineID', 'exactly one machine id'],
    [`${minimal}[X-Fleet]\nMachineMetadata=region!=eu\n`, 4, 'MachineMetadata', 'not key=value'],
    [`${minimal}[X-Fleet]\nMachineMetadata=region=\n`, 4, 'MachineMetadata', 'not key=value'],
    [`${minimal}[X-Fleet]\nMachineOf=db@.service\n`, 4, 'MachineOf', 'is a template'],
    [`${minimal}[X-Fleet]\nMachineOf=db.socket\n`, 4, 'MachineOf', 'only .service'],
    [`${minimal}[X-Fleet]\nMachineOf=%n\n`, 4, 'MachineOf', 'cannot follow itself'],
    [`${minimal}[X-Fleet]\nReplaces=%n\n`, 4, 'Replaces', 'cannot replace itself'],
    [`${minimal}[X-Fleet]\nConflicts=web[\n`, 4, 'Conflicts', 'not closed'],
    [`${minimal}[X-Fleet]\nGlobal=maybe\n`, 4, 'Global', 'not a boolean'],
    [`${minimal}[X-Fleet]\nGlobal=true\nMachineID=n1\n`, 5, 'MachineID', 'a Global unit takes only'],
    [`${minimal}[X-Fleet]\nMachineOf=db.service\nGlobal=true\n`, 4, 'MachineOf', 'a Global unit takes only'],
    [`${minimal}[X-Fleet]\nReplaces=old.service\nGlobal=1\n`, 4, 'Replaces', 'a Global unit takes only'],
    [
      `${minimal}[X-Fleet]\nConflicts=a.service\nReplaces=old.service\n`,
      5,
      'Replaces',
      'cannot be combined with Conflicts',
    ],
    // [X-Cairn]
    [`${minimal}[X-Cairn]\nSpread=zone\n`, 4, 'Spread', 'unknown key in [X-Cairn]'],
    [`${minimal}[X-Cairn]\nTopology=machine,zone\n`, 4, 'Topology', 'put it last'],
    [`${minimal}[X-Cairn]\nTopology=zone,zone\n`, 4, 'Topology', 'given twice'],
    [`${minimal}[X-Cairn]\nTopology=zone,,machine\n`, 4, 'Topology', 'not a metadata key'],
    [`${minimal}[X-Cairn]\nTopology=a,b,c,d,e,f,g,h,i\n`, 4, 'Topology', 'topologyLevelsMax'],
    [`${minimal}[X-Cairn]\nMaxSkew=rack:1\n`, 4, 'MaxSkew', 'not a Topology level'],
    [`${minimal}[X-Cairn]\nMaxSkew=zone:0\n`, 4, 'MaxSkew', 'at least 1'],
    [`${minimal}[X-Cairn]\nMaxSkew=zone:1:firm\n`, 4, 'MaxSkew', 'not one of hard, soft'],
    [`${minimal}[X-Cairn]\nMaxSkew=zone:1:hard:x\n`, 4, 'MaxSkew', 'not <level>:<count>'],
    [`${minimal}[X-Cairn]\nCap=zone\n`, 4, 'Cap', 'not <level>:<count>'],
    [`${minimal}[X-Cairn]\nCap=zone:1000000\n`, 4, 'Cap', 'spreadCountMax'],
    [`${minimal}[X-Cairn]\nCap=zone:1\nCap=zone:2\n`, 5, 'Cap', 'a second rule for "zone"'],
    [`${minimal}[X-Cairn]\nCap=machine:1\n[X-Fleet]\nGlobal=true\n`, 4, 'Cap', 'takes no spread'],
    // [X-Cairn] registration
    [`${minimal}[X-Cairn]\nServiceName=web.api\n`, 4, 'ServiceName', 'not a service name'],
    [`${minimal}[X-Cairn]\nServiceName=${'a'.repeat(64)}\n`, 4, 'ServiceName', 'serviceNameCharsMax'],
    [`${minimal}[X-Cairn]\nServiceName=web\nServicePort=0\n`, 5, 'ServicePort', 'not a port'],
    [`${minimal}[X-Cairn]\nServiceName=web\nServicePort=65536\n`, 5, 'ServicePort', 'not a port'],
    [`${minimal}[X-Cairn]\nServiceName=web\nServicePort=9999%i\n`, 5, 'ServicePort', 'not a port'],
    [
      `${minimal}[X-Cairn]\nServiceName=web\nServiceTags=${'t'.repeat(257)}\n`,
      5,
      'ServiceTags',
      'serviceTagBytesMax',
    ],
    [`${minimal}[X-Cairn]\nServicePort=80\n`, 4, 'ServicePort', 'without a ServiceName'],
    [`${minimal}[X-Cairn]\nCheckHTTP=http://h/\n`, 4, 'CheckHTTP', 'without a ServiceName'],
    [
      `${minimal}[X-Cairn]\nServiceName=web\nServiceName=\nCheckTCP=h:1\n`,
      6,
      'CheckTCP',
      'without a ServiceName',
    ],
    [`${minimal}[X-Cairn]\nServiceName=w\nCheckTCP=h:1\nCheckHTTP=http://h/\n`, 6, 'CheckHTTP', 'one check'],
    [`${minimal}[X-Cairn]\nServiceName=w\nCheckHTTP=http://h/\nCheckTCP=h:1\n`, 6, 'CheckTCP', 'one check'],
    [`${minimal}[X-Cairn]\nServiceName=w\nCheckInterval=5s\n`, 5, 'CheckInterval', 'without a check'],
    [
      `${minimal}[X-Cairn]\nServiceName=w\nCheckHTTP=ftp://h/\n`,
      5,
      'CheckHTTP',
      'not an http:// or https:// URL',
    ],
    [`${minimal}[X-Cairn]\nServiceName=w\nCheckHTTP=/health\n`, 5, 'CheckHTTP', 'not a URL'],
    [`${minimal}[X-Cairn]\nServiceName=w\nCheckTCP=h\n`, 5, 'CheckTCP', 'not host:port'],
    [`${minimal}[X-Cairn]\nServiceName=w\nCheckTCP=::1:80\n`, 5, 'CheckTCP', 'not host:port'],
    [`${minimal}[X-Cairn]\nServiceName=w\nCheckTCP=h:70000\n`, 5, 'CheckTCP', 'not host:port'],
    [
      `${minimal}[X-Cairn]\nServiceName=w\nCheckTCP=h:1\nCheckInterval=500ms\n`,
      6,
      'CheckInterval',
      'minimum',
    ],
    [`${minimal}[X-Cairn]\nServiceName=w\nCheckTCP=h:1\nCheckTimeout=0\n`, 6, 'CheckTimeout', 'minimum'],
    [
      `${minimal}[X-Cairn]\nServiceName=w\nServiceTags=${Array.from({ length: 65 }, (_, i) => `t${i}`).join(' ')}\n`,
      5,
      'ServiceTags',
      'serviceTagsMax',
    ],
    // [X-Cairn] rolling updates
    [`${minimal}[X-Cairn]\nUpdateParallelism=0\n`, 4, 'UpdateParallelism', 'at least 1'],
    [`${minimal}[X-Cairn]\nUpdateParallelism=two\n`, 4, 'UpdateParallelism', 'at least 1'],
    [`${minimal}[X-Cairn]\nUpdateParallelism=1001\n`, 4, 'UpdateParallelism', 'updateParallelismMax'],
    [`${minimal}[X-Cairn]\nUpdateTimeoutSec=0\n`, 4, 'UpdateTimeoutSec', 'minimum'],
    [`${minimal}[X-Cairn]\nUpdateTimeoutSec=1x\n`, 4, 'UpdateTimeoutSec', 'unknown time unit'],
    [
      `${minimal}[X-Fleet]\nGlobal=true\n[X-Cairn]\nUpdateParallelism=2\n`,
      6,
      'UpdateParallelism',
      'takes no rolling updates',
    ],
  ])('%j → line %i, key %s', (text, line, key, reason) => {
    const error = refusal(text)
    expect(error.code).toBe('UNIT_INVALID')
    expect({ file: error.file, line: error.line, key: error.key }).toEqual({ file: 'units/web', line, key })
    expect(error.reason).toContain(reason)
    expect(error.message).toContain(`units/web:${line}: ${key}: `)
  })

  it('[X-Cairn] in a plain unit is refused: spread is per template', () => {
    expect(refusal(`${minimal}[X-Cairn]\nCap=machine:1\n`, 'web.service')).toMatchObject({
      line: 4,
      key: 'Cap',
      reason: expect.stringContaining('instances of a template'),
    })
  })

  it('rolling update keys in a plain unit are refused: only template instances are rolled', () => {
    expect(
      refusal(`${minimal}[X-Cairn]\nServiceName=web\nUpdateTimeoutSec=30s\n`, 'web.service'),
    ).toMatchObject({
      line: 5,
      key: 'UpdateTimeoutSec',
      reason: expect.stringContaining('rolling updates applies to the instances of a template'),
    })
  })

  it('too many values in one list key is refused at the line that overflows', () => {
    const lines = Array.from({ length: 300 }, (_, i) => `Environment=V${i}=x`).join('\n')
    expect(refusal(`${minimal}${lines}\n`)).toMatchObject({ key: 'Environment', line: 259 })
  })
})

describe('docs/units.md', () => {
  it('the example at the top of the page parses as described', () => {
    const page = readFileSync(new URL('../../docs/units.md', import.meta.url), 'utf8')
    const example = /```ini\n([\s\S]*?)```/.exec(page)?.[1] ?? ''
    checkUnitTemplate(example, { name: 'web@.service' })
    const names = expandUnitNames('web@{1..6}.service')
    expect(names).toHaveLength(6)
    const unit = parseUnitFile(example, { name: names[2]!, file: 'web@.service' })
    expect(unit.unit.description).toBe('Web frontend 3')
    expect(unit.service.environment).toEqual([
      ['GREETING', 'hello world'],
      ['PORT', '8083'],
    ])
    expect(unit.service.execStartPre[0]).toMatchObject({
      argv: ['/bin/rm', '-f', '/run/web-3.sock'],
      ignoreFailure: true,
    })
    expect(unit.service).toMatchObject({ restart: 'on-failure', restartMs: 2_000, timeoutStopMs: 90_000 })
    expect(unit.fleet.conflicts).toEqual(['db@*.service'])
    expect(unit.spread?.maxSkew.find((r) => r.level === 'zone')).toMatchObject({ count: 1, mode: 'hard' })
    expect(unit.spread?.caps).toEqual([{ level: 'machine', count: 2, mode: 'hard', line: 21 }])
    expect(unit.registration).toEqual({
      name: 'web',
      port: 8083,
      tags: [],
      check: { http: 'http://127.0.0.1:8083/health', intervalMs: 10_000, timeoutMs: 5_000 },
    })
    expect(unit.update).toEqual({ parallelism: 2, timeoutMs: 60_000 })
  })
})
