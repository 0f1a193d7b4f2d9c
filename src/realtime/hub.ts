import type { Server, ServerWebSocket } from 'bun'
import type { AppContext, Principal } from '../context'
import type { Database } from '../db'
import { describeError } from '../logger'
import { selectSessionPrincipal } from '../modules/auth/queries'
import { authorizeProject } from '../modules/authz/service'
import { tokenAllowsProject } from '../modules/authz/token-scopes'
import { selectNotificationProject } from '../modules/notifications/queries'
import { HttpProblem } from '../problems'
import { HEARTBEAT_MS, SignalListener } from './listener'
import type { EventRow } from './queries'
import { scheduleEventPrune } from './retention'
import type { AnnouncingSessionCache, Ended } from './session-cache'

/** Per-socket state; Elysia's websocket handler calls the four functions (shared by all sockets). */
export type SocketData = {
  open(ws: Socket): void
  message(ws: Socket, message: string | Buffer): void
  drain(ws: Socket): void
  close(ws: Socket, code: number, reason: string): void
  userId: string
  sessionId: string
  principal: Principal
  /** When the access token that opened the socket expires (epoch ms). */
  expiresAt: number
  /** Project topics subscribed or being subscribed. */
  topics: Set<string>
  /** Per topic, the end of the last subscribe or unsubscribe taken in: the next one waits for it. */
  queued?: Map<string, Promise<void>>
  closed: boolean
  drainWaiters?: (() => void)[]
  /** Messages received in the current one-second window. */
  rate: { since: number; count: number }
}
export type Socket = ServerWebSocket<SocketData>

/** A subscribe in progress: live events of its topic wait here until its replay has been sent. */
export type PendingSubscription = {
  ws: Socket
  buffer: EventRow[]
  /** The member was removed, or the client unsubscribed, while this was in progress. */
  revoked?: boolean
  cancelled?: boolean
}

const MAX_PENDING_BUFFER = 10_000
// Recently delivered event ids, to skip them when catching up after the listener reconnects.
const REMEMBERED_EVENTS = 20_000
const REMEMBERED_PROJECTS = 50_000

export const projectTopic = (projectId: string) => `project:${projectId}`
export const userTopic = (userId: string) => `user:${userId}`

/**
 * The process's side of real time: local sockets, their topics and subscriptions in progress,
 * fed by the LISTEN connection (listener.ts) with committed events, notifications and session
 * ends from every instance.
 */
export class RealtimeHub {
  server: Server<SocketData> | undefined
  private readonly sockets = new Set<Socket>()
  private readonly byUser = new Map<string, Set<Socket>>()
  private readonly bySession = new Map<string, Set<Socket>>()
  private readonly pending = new Map<string, Set<PendingSubscription>>()
  private readonly delivered = new Set<number>()
  private readonly lastSeen = new Map<string, number>()
  private readonly listener: SignalListener
  private sweep?: Timer
  private stopPrune?: () => void

  constructor(
    private readonly ctx: AppContext,
    db: Pick<Database, 'listen' | 'mode'>,
    private readonly sessions: AnnouncingSessionCache,
    heartbeatMs = HEARTBEAT_MS,
  ) {
    sessions.onEnded = (ended) => this.sessionsEnded(ended)
    const handlers = {
      event: (event: EventRow) => this.deliver(event),
      notification: (userId: string, data: Record<string, unknown>) => {
        this.messagesPublished += 1
        const topic = userTopic(userId)
        if (this.server && this.server.subscriberCount(topic) > 0)
          this.server.publish(topic, JSON.stringify({ type: 'notification', data }))
        this.notifyLimitedTokens(userId, data)
      },
      sessionsEnded: (ended: Ended) => {
        this.sessions.applyRemote(ended)
        this.closeEndedSockets(ended)
      },
    }
    this.listener = new SignalListener(ctx, db, handlers, heartbeatMs)
  }

  async start() {
    await this.listener.start()
    this.sweep = setInterval(() => this.closeExpired(), 1_000)
    this.sweep.unref()
    this.stopPrune = scheduleEventPrune(this.ctx.sql, this.ctx.config, this.ctx.log)
  }

  /** What shutdown calls first: closes every socket and stops the hub's timers and listener. */
  async stop() {
    clearInterval(this.sweep)
    this.stopPrune?.()
    this.closeAll(1001, 'server shutting down')
    await this.listener.stop()
  }

  /**
   * See SignalListener.afterBarrier: `then` runs once every earlier NOTIFY was handled, and with
   * `projectId` also those of the project's events committed before now.
   */
  afterBarrier(then: () => void, projectId?: string) {
    return this.listener.afterBarrier(then, projectId)
  }

  closeAll(code: number, reason: string) {
    for (const ws of this.sockets) ws.close(code, reason)
  }

  /** Messages received from clients since start, dropped ones included (the metrics read it). */
  messagesReceived = 0

  /** Messages published to topics since start, one per publish (the metrics read it). */
  messagesPublished = 0

  /** Open sockets of every user (the metrics read it). */
  get openSockets() {
    return this.sockets.size
  }

  socketCount(userId: string) {
    return this.byUser.get(userId)?.size ?? 0
  }

  // Sockets

  opened(ws: Socket) {
    this.sockets.add(ws)
    addTo(this.byUser, ws.data.userId, ws)
    addTo(this.bySession, ws.data.sessionId, ws)
    // The session may have ended between the upgrade's check and now.
    if (this.sessions.get(ws.data.sessionId) === null) {
      ws.close(4401, 'session_ended')
      return
    }
    // An API token gets its owner's notifications only with notifications:read, and one limited
    // to some projects only theirs (notifyLimitedTokens), as over HTTP.
    const token = ws.data.principal.token
    if (!token || (token.scopes.has('notifications:read') && !token.projectIds))
      ws.subscribe(userTopic(ws.data.userId))
    send(ws, { type: 'welcome', user_id: ws.data.userId })
  }

  closed(ws: Socket) {
    ws.data.closed = true
    this.sockets.delete(ws)
    removeFrom(this.byUser, ws.data.userId, ws)
    removeFrom(this.bySession, ws.data.sessionId, ws)
    for (const topic of ws.data.topics)
      for (const entry of this.pending.get(topic) ?? []) if (entry.ws === ws) entry.cancelled = true
    this.drained(ws)
  }

  drained(ws: Socket) {
    const waiters = ws.data.drainWaiters ?? []
    ws.data.drainWaiters = undefined
    for (const wake of waiters) wake()
  }

  /** Resolves once the socket's send buffer has drained (or the socket closed). */
  waitForDrain(ws: Socket): Promise<void> {
    if (ws.data.closed) return Promise.resolve()
    return new Promise((wake) => {
      ws.data.drainWaiters ??= []
      ws.data.drainWaiters.push(wake)
    })
  }

  /** Live events of `topic` are kept for this subscription until `completeSubscription`. */
  beginSubscription(ws: Socket, topic: string): PendingSubscription {
    const entry: PendingSubscription = { ws, buffer: [] }
    addTo(this.pending, topic, entry)
    return entry
  }

  /**
   * Sends the live events that arrived during the replay (after `replayedThrough`), then
   * subscribes the socket, in one synchronous step so nothing falls between the two.
   */
  completeSubscription(entry: PendingSubscription, topic: string, replayedThrough: number) {
    removeFrom(this.pending, topic, entry)
    if (entry.cancelled || entry.revoked || entry.ws.data.closed) return false
    for (const event of entry.buffer)
      if (event.id > replayedThrough) entry.ws.send(eventFrame(event))
    entry.ws.subscribe(topic)
    return true
  }

  /** Leaves a topic, or gives up a subscription still in progress. */
  unsubscribe(ws: Socket, topic: string) {
    ws.data.topics.delete(topic)
    ws.unsubscribe(topic)
    for (const entry of this.pending.get(topic) ?? []) if (entry.ws === ws) entry.cancelled = true
  }

  cancelSubscription(entry: PendingSubscription, topic: string) {
    removeFrom(this.pending, topic, entry)
  }

  // Notifications are sent in the order they came, to the limited tokens too.
  private limitedTokenQueue = Promise.resolve()

  /** Sends a notification to the user's project-limited tokens allowed to see its project. */
  private notifyLimitedTokens(userId: string, data: Record<string, unknown>) {
    const limited = [...(this.byUser.get(userId) ?? [])].filter((ws) => {
      const token = ws.data.principal.token
      return token?.projectIds && token.scopes.has('notifications:read')
    })
    if (limited.length === 0 || typeof data.id !== 'string') return
    const id = data.id
    this.limitedTokenQueue = this.limitedTokenQueue.then(async () => {
      try {
        const projectId = await selectNotificationProject(this.ctx.sql, id)
        if (!projectId) return
        for (const ws of limited)
          if (!ws.data.closed && tokenAllowsProject(ws.data.principal, projectId))
            send(ws, { type: 'notification', data })
      } catch (error) {
        this.ctx.log.warn('notification for a limited token not sent', describeError(error))
      }
    })
  }

  // Sessions

  /** A session (or every session of a user but one) ended here: tell the others, close sockets. */
  sessionsEnded(ended: Ended) {
    this.closeEndedSockets(ended)
    this.listener.announceEnded(ended)
  }

  private closeEndedSockets(ended: Ended) {
    if ('sessionId' in ended) {
      for (const ws of this.bySession.get(ended.sessionId) ?? []) ws.close(4401, 'session_ended')
      return
    }
    const sessions = new Set<string>()
    for (const ws of this.byUser.get(ended.userId) ?? [])
      if (ws.data.sessionId !== ended.keepSessionId) sessions.add(ws.data.sessionId)
    for (const sessionId of sessions) void this.recheckSession(sessionId)
  }

  /** Closes the session's sockets if it ended; otherwise refreshes their roles and permissions. */
  private async recheckSession(sessionId: string) {
    try {
      const row = await selectSessionPrincipal(this.ctx.sql, sessionId)
      const rechecks: Promise<void>[] = []
      for (const ws of this.bySession.get(sessionId) ?? []) {
        if (!row?.live) ws.close(4401, 'session_ended')
        else {
          ws.data.principal = {
            ...ws.data.principal,
            roles: row.roles,
            permissions: new Set(row.permissions),
          }
          // A demoted admin, or a user who lost projects.read, must not go on following.
          for (const topic of ws.data.topics) rechecks.push(this.recheckTopic(ws, topic))
        }
      }
      await Promise.all(rechecks)
    } catch (error) {
      this.ctx.log.warn('session recheck failed; closing its sockets', describeError(error))
      for (const ws of this.bySession.get(sessionId) ?? []) ws.close(1011, 'session_check_failed')
    }
  }

  /** Drops the socket's topic (live or being subscribed) when its new rights no longer read it. */
  private async recheckTopic(ws: Socket, topic: string) {
    const projectId = topic.slice('project:'.length)
    try {
      await authorizeProject(this.ctx.sql, ws.data.principal, projectId, 'project.read')
      return
    } catch (error) {
      if (!(error instanceof HttpProblem) || (error.status !== 403 && error.status !== 404))
        throw error
    }
    if (!ws.data.topics.has(topic)) return
    for (const entry of this.pending.get(topic) ?? []) if (entry.ws === ws) entry.revoked = true
    ws.unsubscribe(topic)
    ws.data.topics.delete(topic)
    send(ws, {
      type: 'error',
      code: 'forbidden',
      message: `Your roles no longer allow reading this project; unsubscribed from ${topic}`,
    })
  }

  private closeExpired() {
    const now = Date.now()
    for (const ws of this.sockets) if (ws.data.expiresAt <= now) ws.close(4401, 'token_expired')
  }

  /** Publishes a committed event to its topic once, in the project's id order. */
  deliver(event: EventRow) {
    if (this.delivered.has(event.id)) return
    remember(this.delivered, event.id, REMEMBERED_EVENTS)
    const topic = projectTopic(event.project_id)
    const last = this.lastSeen.get(event.project_id) ?? 0
    if (event.id < last) {
      // Only a listener reconnect can bring an older event of the project late: its sockets
      // must not see ids go backwards, so they are closed and come back with `since`.
      this.ctx.log.warn('late event after a listener reconnect; resyncing subscribers', {
        project_id: event.project_id,
      })
      this.resync(topic)
      return
    }
    this.lastSeen.delete(event.project_id)
    this.lastSeen.set(event.project_id, event.id)
    if (this.lastSeen.size > REMEMBERED_PROJECTS) {
      const oldest = this.lastSeen.keys().next()
      if (!oldest.done) this.lastSeen.delete(oldest.value)
    }
    this.messagesPublished += 1
    // Nobody on this instance follows the project: no frame to build.
    if (this.server && this.server.subscriberCount(topic) > 0)
      this.server.publish(topic, eventFrame(event))
    for (const entry of this.pending.get(topic) ?? []) {
      if (entry.buffer.length >= MAX_PENDING_BUFFER) entry.ws.close(1013, 'try_again_later')
      else entry.buffer.push(event)
    }
    if (event.event === 'member.removed') this.removeMember(event)
  }

  private resync(topic: string) {
    for (const ws of this.sockets)
      if (ws.data.topics.has(topic)) ws.close(1012, 'resync: reconnect with since')
  }

  /** A removed member stops receiving the project's events at once, here and on other instances. */
  private removeMember(event: EventRow) {
    const userId = (event.data as { user_id?: string }).user_id
    if (!userId) return
    const topic = projectTopic(event.project_id)
    for (const entry of this.pending.get(topic) ?? [])
      if (entry.ws.data.userId === userId) entry.revoked = true
    for (const ws of this.byUser.get(userId) ?? []) {
      if (!ws.data.topics.has(topic) || ws.data.principal.permissions.has('admin.access')) continue
      ws.unsubscribe(topic)
      ws.data.topics.delete(topic)
      send(ws, {
        type: 'error',
        code: 'forbidden',
        message: `You are no longer a member of this project; unsubscribed from ${topic}`,
      })
    }
  }
}

export function eventFrame(event: EventRow) {
  return JSON.stringify({
    type: 'event',
    topic: projectTopic(event.project_id),
    id: event.id,
    event: event.event,
    data: event.data,
    at: event.at,
  })
}

export function send(ws: Socket, message: Record<string, unknown>) {
  return ws.send(JSON.stringify(message))
}

function addTo<K, V>(map: Map<K, Set<V>>, key: K, value: V) {
  const set = map.get(key)
  if (set) set.add(value)
  else map.set(key, new Set([value]))
}

function removeFrom<K, V>(map: Map<K, Set<V>>, key: K, value: V) {
  const set = map.get(key)
  if (!set) return
  set.delete(value)
  if (set.size === 0) map.delete(key)
}

function remember(set: Set<number>, id: number, max: number) {
  set.add(id)
  if (set.size > max) {
    const oldest = set.values().next()
    if (!oldest.done) set.delete(oldest.value)
  }
}
