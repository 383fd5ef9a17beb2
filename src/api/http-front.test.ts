/**
 * HttpFront over real sockets: fast paths answer what they take, fastify the rest; a path that
 * throws, now or later, never takes the server down (the request goes to fastify when nothing was
 * written, else its connection is closed) and is logged; after close() fastify answers everything;
 * the server gets fastify's own keep-alive timeout.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { type FastPath, HttpFront } from './http-front.ts'

let app: FastifyInstance | undefined

afterEach(async () => {
  await app?.close()
  app = undefined
})

async function serve(paths: FastPath[]): Promise<{ url: string; front: HttpFront; logged: string[] }> {
  const logged: string[] = []
  const front = new HttpFront({
    error: (obj, msg) => logged.push(`${msg}: ${String((obj as { err: unknown }).err)}`),
  })
  for (const path of paths) front.add(path)
  app = Fastify({ logger: false, serverFactory: front.serverFactory })
  app.get('/*', async (request) => `fastify ${request.url}`)
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  return { url, front, logged }
}

const fast: FastPath = (req, res) => {
  if (req.url !== '/fast') return false
  res.end('front')
  return true
}

describe('HttpFront', () => {
  it('answers what a fast path takes, and hands the rest to fastify', async () => {
    const { url, front } = await serve([fast])
    expect(await (await fetch(`${url}/fast`)).text()).toBe('front')
    expect(await (await fetch(`${url}/other`)).text()).toBe('fastify /other')
    expect(front.answered).toBe(1)
  })

  it('a path that throws before writing: fastify answers, the error is logged', async () => {
    const { url, logged } = await serve([
      () => {
        throw new Error('bug')
      },
    ])
    expect(await (await fetch(`${url}/x`)).text()).toBe('fastify /x')
    expect(logged).toEqual(['http front: a fast path failed; the request goes to fastify: Error: bug'])
  })

  it('a path that throws after writing its head: that connection is closed, the server goes on', async () => {
    const { url } = await serve([
      (req, res) => {
        if (req.url !== '/half') return false
        res.writeHead(200, { 'content-length': '10' })
        res.write('12345')
        throw new Error('bug after the head')
      },
      fast,
    ])
    await expect(fetch(`${url}/half`).then((r) => r.text())).rejects.toThrow()
    expect(await (await fetch(`${url}/fast`)).text()).toBe('front')
  })

  it('a path that took a request may hand it to fastify later, or fail later', async () => {
    const { url, logged } = await serve([
      (req, _res, exits) => {
        if (req.url === '/later') setTimeout(() => exits.fallback(), 5)
        else if (req.url === '/fails') setTimeout(() => exits.failed(new Error('late bug')), 5)
        else return false
        return true
      },
    ])
    expect(await (await fetch(`${url}/later`)).text()).toBe('fastify /later')
    expect(await (await fetch(`${url}/fails`)).text()).toBe('fastify /fails')
    expect(logged).toEqual(['http front: a fast path failed; the request goes to fastify: Error: late bug'])
  })

  it('after close() every request goes to fastify', async () => {
    const { url, front } = await serve([fast])
    front.close()
    expect(await (await fetch(`${url}/fast`)).text()).toBe('fastify /fast')
    expect(front.answered).toBe(0)
  })

  it("the server keeps fastify's own settings", async () => {
    await serve([fast])
    expect(app?.server.keepAliveTimeout).toBe(72_000)
  })
})
