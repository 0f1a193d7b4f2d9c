import { Value } from '@sinclair/typebox/value'
import { Elysia, t } from 'elysia'
import type { AppContext } from '../context'
import { describeError } from '../logger'
import { authenticate } from '../modules/auth/service'
import { authorizeProject } from '../modules/authz/service'
import { requireTokenRoute } from '../modules/authz/token-scopes'
import { chargeFailedUpgrade } from '../modules/ratelimit/plugin'
import { HttpProblem, Problem } from '../problems'
import { problems } from '../shared/docs'
import {
  type PendingSubscription,
  type RealtimeHub,
  type Socket,
  type SocketData,
  send,
} from './hub'
import { ClientMessage, PROJECT_TOPIC } from './model'
import { selectEventsAfter, selectPrunedThrough } from './queries'

const REPLAY_PAGE = 500
const MESSAGES_PER_SECOND = 20

const tooManySockets = (max: number) =>
  new HttpProblem(429, 'Too many requests', `At most ${max} open WebSockets per user`, {
    headers: { 'retry-after': '30' },
  })
const upgradeRequired = () =>
  new HttpProblem(426, 'Upgrade required', 'Connect to /ws with a WebSocket client', {
    headers: { upgrade: 'websocket' },
  })

/** The access token of an upgrade: the Authorization header, or `access_token` for browsers. */
function bearerOf(request: Request): string | null {
  const header = request.headers.get('authorization')
  if (header) return header
  const token = new URL(request.url).searchParams.get('access_token')
  return token ? `Bearer ${token}` : null
}

/** The `exp` of a token whose signature was already verified, as epoch milliseconds. */
function expiryOf(bearer: string): number {
  const payload = bearer.slice(7).split('.')[1] ?? ''
  try {
    const exp = (
      JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown }
    ).exp
    return typeof exp === 'number' ? exp * 1000 : Date.now()
  } catch {
    return Date.now()
  }
}

/** `/ws`: authenticated at the upgrade (401 before any 101), then JSON frames both ways. */
export function realtimeSocket(ctx: AppContext, hub: RealtimeHub) {
  const limits = ctx.config.realtime
  const handlers: Pick<SocketData, 'open' | 'message' | 'drain' | 'close'> = {
    open: (ws) => hub.opened(ws),
    message: (ws, raw) => {
      hub.messagesReceived += 1
      if (overRate(ws)) return
      received(ws, raw).catch((error: unknown) =>
        ctx.log.error('websocket message failed', describeError(error)),
      )
    },
    drain: (ws) => hub.drained(ws),
    close: (ws) => hub.closed(ws),
  }

  /** At most MESSAGES_PER_SECOND messages a second: past it an error, far past it a close. */
  function overRate(ws: Socket) {
    const now = Date.now()
    const rate = ws.data.rate
    if (now - rate.since >= 1_000) {
      rate.since = now
      rate.count = 0
    }
    rate.count += 1
    if (rate.count > MESSAGES_PER_SECOND * 5) ws.close(1008, 'too_many_messages')
    else if (rate.count === MESSAGES_PER_SECOND + 1)
      send(ws, {
        type: 'error',
        code: 'rate_limited',
        message: `At most ${MESSAGES_PER_SECOND} messages a second; the others are dropped`,
      })
    return rate.count > MESSAGES_PER_SECOND
  }

  async function received(ws: Socket, raw: string | Buffer) {
    let message: unknown
    try {
      message = typeof raw === 'string' ? JSON.parse(raw) : undefined
    } catch {
      message = undefined
    }
    if (!Value.Check(ClientMessage, message)) {
      send(ws, {
        type: 'error',
        code: 'invalid_message',
        message:
          'Send a JSON text frame: {type:"subscribe", topic:"project:<id>", since?}, {type:"unsubscribe", topic} or {type:"ping"}',
      })
      return
    }
    if (message.type === 'ping') {
      send(ws, { type: 'pong' })
      return
    }
    // Topics are published with lower-case ids, as PostgreSQL prints them.
    const topic = message.topic.toLowerCase()
    if (message.type === 'subscribe') {
      const since = message.since
      await inOrder(ws, topic, () => subscribe(ws, topic, since))
      return
    }
    // An unsubscribe gives up the subscription in progress at once, and leaves again after any
    // subscribe of the topic that came before it.
    hub.unsubscribe(ws, topic)
    if (ws.data.queued?.has(topic)) await inOrder(ws, topic, async () => hub.unsubscribe(ws, topic))
  }

  /**
   * Runs a socket's subscribes and unsubscribes of one topic one after the other, in the order
   * they came: a second subscribe sent while the first is still checked gets its answer after
   * the first's, with the same checks (`subscribed` at once only once the first succeeded).
   */
  function inOrder(ws: Socket, topic: string, task: () => Promise<void>): Promise<void> {
    ws.data.queued ??= new Map()
    const queued = ws.data.queued
    const previous = queued.get(topic)
    const done = (previous ? previous.then(task) : task()).catch((error: unknown) =>
      ctx.log.error('websocket message failed', describeError(error)),
    )
    queued.set(topic, done)
    void done.then(() => {
      if (queued.get(topic) === done) queued.delete(topic)
    })
    return done
  }

  async function subscribe(ws: Socket, topic: string, since: number | undefined) {
    if (ws.data.topics.has(topic)) {
      send(ws, { type: 'subscribed', topic })
      return
    }
    if (ws.data.topics.size >= limits.maxSubscriptions) {
      send(ws, {
        type: 'error',
        code: 'subscription_limit',
        message: `At most ${limits.maxSubscriptions} subscriptions per socket`,
      })
      return
    }
    const projectId = (PROJECT_TOPIC.exec(topic) as RegExpExecArray)[1] as string
    ws.data.topics.add(topic)
    // Registered before anything is read, so live events from here on wait for the replay.
    const entry = hub.beginSubscription(ws, topic)
    try {
      await authorizeProject(ctx.sql, ws.data.principal, projectId, 'project.read')
      const replayed = await replay(ws, entry, topic, projectId, since)
      let completed = false
      const complete = () => {
        completed = hub.completeSubscription(entry, topic, replayed)
      }
      // A replayed event may still have its NOTIFY on the way: the socket joins the topic only
      // once the hub has handled every NOTIFY committed before now, so none comes twice.
      if (replayed > 0) await hub.afterBarrier(complete, projectId)
      else complete()
      if (entry.revoked)
        throw new HttpProblem(403, 'Forbidden', 'You were removed from the project')
      if (!completed) forget(ws, entry, topic)
    } catch (error) {
      hub.cancelSubscription(entry, topic)
      forget(ws, entry, topic)
      refuse(ws, topic, error)
    }
  }

  /**
   * Drops a subscription that did not complete from the socket's topics. One given up by an
   * unsubscribe is already out of them, and the topic may since belong to a later subscribe,
   * which must stay listed: the member's removal finds the sockets to cut by these topics.
   */
  function forget(ws: Socket, entry: PendingSubscription, topic: string) {
    if (!entry.cancelled) ws.data.topics.delete(topic)
  }

  /** Sends `subscribed`, then the kept events after `since`, paced by the socket's drain. */
  async function replay(
    ws: Socket,
    entry: PendingSubscription,
    topic: string,
    projectId: string,
    since: number | undefined,
  ): Promise<number> {
    const prunedThrough = since === undefined ? 0 : await selectPrunedThrough(ctx.sql, projectId)
    send(ws, { type: 'subscribed', topic })
    // Without `since`, every live event that arrived since the subscribe began is sent.
    if (since === undefined) return 0
    if (since < prunedThrough) {
      send(ws, {
        type: 'error',
        code: 'replay_gap',
        message: `Events after ${since} are no longer kept; refetch the project, then subscribe without since`,
      })
      return 0
    }
    let last = since
    for (;;) {
      const rows = await selectEventsAfter(ctx.sql, projectId, last, REPLAY_PAGE)
      for (const event of rows) {
        if (entry.revoked || entry.cancelled || ws.data.closed) return last
        ws.send(
          JSON.stringify({
            type: 'event',
            topic,
            id: event.id,
            event: event.event,
            data: event.data,
            at: event.at,
          }),
        )
        last = event.id
        if (ws.getBufferedAmount() > limits.backpressureLimitBytes / 2) await hub.waitForDrain(ws)
      }
      if (rows.length < REPLAY_PAGE) return last
    }
  }

  function refuse(ws: Socket, topic: string, error: unknown) {
    if (error instanceof HttpProblem && (error.status === 403 || error.status === 404)) {
      send(ws, {
        type: 'error',
        code: error.status === 403 ? 'forbidden' : 'not_found',
        message: `${error.detail ?? error.title} (${topic})`,
      })
      return
    }
    ctx.log.error('subscribe failed', { topic, error: String(error) })
    send(ws, { type: 'error', code: 'internal', message: 'The subscription failed; try again' })
  }

  return new Elysia({ name: 'realtime-socket' }).get(
    '/ws',
    async ({ request, server }) => {
      const bearer = bearerOf(request)
      const principal = await authenticate(ctx, bearer).catch((error: unknown) => {
        chargeFailedUpgrade(request)
        throw error
      })
      requireTokenRoute(principal, 'GET', '/ws')
      if (hub.socketCount(principal.userId) >= limits.maxSocketsPerUser)
        throw tooManySockets(limits.maxSocketsPerUser)
      const data: SocketData = {
        ...handlers,
        userId: principal.userId,
        sessionId: principal.sessionId,
        principal,
        // An API token has no JWT expiry: its own, or none (revocation closes it as session_ended).
        expiresAt: principal.token
          ? (principal.token.expiresAt ?? Number.POSITIVE_INFINITY)
          : expiryOf(bearer as string),
        topics: new Set(),
        closed: false,
        rate: { since: 0, count: 0 },
      }
      hub.server ??= server as NonNullable<typeof hub.server>
      if (!server?.upgrade(request, { data })) throw upgradeRequired()
    },
    {
      // 101 Switching Protocols has no body; what follows is described at /docs/asyncapi.json.
      response: {
        101: t.Void({ description: 'Switching Protocols: the WebSocket is open' }),
        ...problems(401, 429),
        426: t.Composite([Problem], { description: 'Not a WebSocket upgrade' }),
      },
      detail: {
        tags: ['Events'],
        operationId: 'openWebSocket',
        // The token may also come as `?access_token=`, which OpenAPI cannot pair with bearer.
        security: [{ bearerAuth: [] }],
        summary: 'WebSocket: live events and notifications',
        description:
          'Upgrade to a WebSocket (101). Authenticate with `Authorization: Bearer` or, from browsers, `?access_token=`; a bad, expired or revoked token answers 401 before any upgrade. The protocol is described in AsyncAPI 3 at `/docs/asyncapi.json`.',
      },
    },
  )
}
