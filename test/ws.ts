import type { TestServer } from './helpers'

// biome-ignore lint/suspicious/noExplicitAny: frames are inspected freely in assertions
export type Frame = any

export type WsClient = {
  ws: WebSocket
  /** Every frame received so far, parsed. */
  frames: Frame[]
  send(message: unknown): void
  /** The next frame (after those already taken) that matches, waiting up to `ms`. */
  next(match?: (frame: Frame) => boolean, ms?: number): Promise<Frame>
  /** Resolves with the close code and reason. */
  closed: Promise<{ code: number; reason: string }>
  close(): void
}

/**
 * Opens a WebSocket to the server's /ws with the token as a bearer header (or, with
 * `via: 'query'`, as `access_token`), resolving once it is open; rejects if it never opens.
 */
export function connectWs(
  server: { url: string } | TestServer,
  token: string | undefined,
  via: 'header' | 'query' = 'header',
): Promise<WsClient> {
  const base = server.url.replace(/^http/, 'ws')
  const url = via === 'query' && token ? `${base}/ws?access_token=${token}` : `${base}/ws`
  const headers: Record<string, string> =
    via === 'header' && token ? { authorization: `Bearer ${token}` } : {}
  // Bun's WebSocket accepts headers for the upgrade request.
  const ws = new WebSocket(url, { headers } as unknown as string[])
  const frames: Frame[] = []
  let taken = 0
  const waiters = new Set<() => void>()
  ws.onmessage = (event) => {
    frames.push(JSON.parse(String(event.data)))
    for (const wake of waiters) wake()
  }
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.addEventListener('close', (event) => {
      resolve({ code: event.code, reason: event.reason })
      for (const wake of waiters) wake()
    })
  })
  const client: WsClient = {
    ws,
    frames,
    send: (message) => ws.send(typeof message === 'string' ? message : JSON.stringify(message)),
    async next(match = () => true, ms = 5_000) {
      const until = Date.now() + ms
      for (;;) {
        while (taken < frames.length) {
          const frame = frames[taken]
          taken += 1
          if (match(frame)) return frame
        }
        const left = until - Date.now()
        if (left <= 0 || ws.readyState === WebSocket.CLOSED)
          throw new Error(
            `no matching frame within ${ms} ms; last frames: ${JSON.stringify(frames.slice(-3)).slice(0, 600)}`,
          )
        await new Promise<void>((wake) => {
          const timer = setTimeout(done, left)
          function done() {
            clearTimeout(timer)
            waiters.delete(done)
            wake()
          }
          waiters.add(done)
        })
      }
    },
    closed,
    close: () => ws.close(),
  }
  return new Promise((resolve, reject) => {
    ws.addEventListener('open', () => resolve(client), { once: true })
    ws.addEventListener('error', () => reject(new Error('WebSocket did not open')), { once: true })
  })
}

/** Connects, waits for `welcome`, and subscribes to the project (replaying after `since`). */
export async function subscribedClient(
  server: { url: string },
  token: string,
  projectId: string,
  since?: number,
) {
  const client = await connectWs(server, token)
  await client.next((f) => f.type === 'welcome')
  client.send({ type: 'subscribe', topic: `project:${projectId}`, since })
  await client.next((f) => f.type === 'subscribed')
  return client
}

/**
 * Sends a ping and waits for its pong without taking any frame: every frame the server sent
 * before the pong has then arrived.
 */
export async function roundTrip(client: WsClient, ms = 5_000) {
  const start = client.frames.length
  client.send({ type: 'ping' })
  const until = Date.now() + ms
  while (!client.frames.slice(start).some((f) => f.type === 'pong')) {
    if (Date.now() > until) throw new Error('no pong')
    await Bun.sleep(5)
  }
}
