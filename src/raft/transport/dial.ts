/**
 * Dialing a peer: connect, send the hello, wait for the reply, all within dialTimeoutMs.
 *
 * done() is called exactly once, unless cancel() came first: with the handshaken FramedSocket
 * (whose handler the caller must replace inside done()), or with the error that ended the attempt
 * (TRANSPORT_HANDSHAKE_REFUSED carries the peer's reason). No frame other than the reply is
 * accepted before the handshake completes.
 */
import { connect } from 'node:net'
import { FrameKind } from './frame.ts'
import { FramedSocket } from './framed-socket.ts'
import type { Hello } from './handshake.ts'
import { validateReply } from './handshake.ts'
import { decodeBody } from './message-codec.ts'
import { tcpKeepAliveInitialDelayMs } from './options.ts'
import { TransportError } from './transport-error.ts'

export type DialResult = { ok: true; link: FramedSocket } | { ok: false; error: TransportError }

export interface Dialing {
  cancel(): Promise<void>
}

export function dial(
  address: { host: string; port: number },
  hello: Hello,
  limits: { frameBytesMax: number; dialTimeoutMs: number },
  done: (result: DialResult) => void,
): Dialing {
  let finished = false
  const finish = (result: DialResult): void => {
    if (finished) return
    finished = true
    clearTimeout(timer)
    done(result)
  }
  const socket = connect({
    host: address.host,
    port: address.port,
    noDelay: true,
    keepAlive: true,
    keepAliveInitialDelay: tcpKeepAliveInitialDelayMs,
  })
  const link = new FramedSocket(socket, limits.frameBytesMax, {
    frame(kind, body) {
      if (kind !== FrameKind.helloReply) {
        link.fail(
          new TransportError('TRANSPORT_FRAME_INVALID', `frame kind ${kind} before the handshake reply`),
        )
        return
      }
      const reply = validateReply(decodeBody(body))
      if (reply === undefined) link.fail(new TransportError('TRANSPORT_HANDSHAKE_INVALID', 'malformed reply'))
      else if (!reply.ok) link.fail(new TransportError('TRANSPORT_HANDSHAKE_REFUSED', reply.reason))
      else finish({ ok: true, link })
    },
    closed(error) {
      finish({ ok: false, error })
    },
  })
  socket.once('connect', () => link.writeRecord(FrameKind.hello, hello))
  const timer = setTimeout(() => {
    link.fail(new TransportError('TRANSPORT_HANDSHAKE_TIMEOUT', `no handshake in ${limits.dialTimeoutMs} ms`))
  }, limits.dialTimeoutMs)
  return {
    cancel() {
      finished = true
      clearTimeout(timer)
      return link.destroy()
    },
  }
}
