/**
 * Proves the lazy request logger: a request that logs writes the same line the eager child would
 * (the parent's bindings, the request id, the message), a child of it carries both bindings, and a
 * request that never logs never builds a pino child.
 */
import { Writable } from 'node:stream'
import Fastify, { type FastifyBaseLogger, LogController } from 'fastify'
import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { lazyRequestLoggers } from './lazy-request-logger.ts'

const apps: { close(): Promise<unknown> }[] = []
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()))
})

function setUp() {
  const lines: Record<string, unknown>[] = []
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line))
      done()
    },
  })
  const base = pino({ level: 'info' }, sink).child({ component: 'http' })
  let children = 0
  // The logger each request's factory call receives, counting the children built from it.
  const counting = (logger: FastifyBaseLogger) =>
    new Proxy(logger, {
      get(target, name, receiver) {
        if (name !== 'child') return Reflect.get(target, name, receiver)
        return (...args: Parameters<FastifyBaseLogger['child']>) => {
          children++
          return target.child(...args)
        }
      },
    })
  const app = Fastify({
    loggerInstance: base as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: (logger, bindings, options) =>
      lazyRequestLoggers(counting(logger), bindings, options),
  })
  app.get('/quiet', async () => 'ok')
  app.get('/loud', async (request) => {
    request.log.info({ extra: 1 }, 'hello')
    request.log.child({ step: 'two' }).warn('again')
    return `level ${request.log.level}`
  })
  apps.push(app)
  return { app, lines, children: () => children }
}

describe('lazy request loggers', () => {
  it('a request that never logs builds no child', async () => {
    const { app, lines, children } = setUp()
    await app.ready()
    const before = children()
    for (let i = 0; i < 5; i++) expect((await app.inject({ url: '/quiet' })).body).toBe('ok')
    expect(children() - before).toBe(0)
    expect(lines).toEqual([])
  })

  it('a request that logs writes what the eager child would, with its bindings and level', async () => {
    const { app, lines, children } = setUp()
    await app.ready()
    const before = children()
    const res = await app.inject({ url: '/loud' })
    expect(res.body).toBe('level info')
    expect(children() - before).toBe(1)
    expect(lines).toHaveLength(2)
    expect(lines[0]).toMatchObject({ component: 'http', reqId: 'req-1', extra: 1, msg: 'hello', level: 30 })
    expect(lines[1]).toMatchObject({
      component: 'http',
      reqId: 'req-1',
      step: 'two',
      msg: 'again',
      level: 40,
    })
  })
})
