import type { AppContext } from '../context'
import type { Database } from '../db'
import { describeError } from '../logger'
import { revocationSignal, type Signal } from './events'
import {
  CHANNEL,
  type EventRow,
  notify,
  notifyAfterProjectEvents,
  selectDatabaseNow,
  selectEvent,
  selectEventsSince,
  selectNotification,
} from './queries'
import type { Ended } from './session-cache'

// How far before the last event received a catch-up looks (commits trail their insert by ms).
const CATCH_UP_MARGIN_MS = 60_000
const CATCH_UP_PAGE = 1_000
// Each process NOTIFYs itself this often; hearing nothing for two periods means the LISTEN
// connection is lost without postgres.js re-listening (it swallows a failed re-listen): listen anew.
export const HEARTBEAT_MS = 30_000
const BARRIER_TIMEOUT_MS = 5_000

/** What the listener hands over, in commit order, one at a time. */
export type SignalHandlers = {
  event(event: EventRow): void
  notification(userId: string, data: Record<string, unknown>): void
  /** Sessions ended on another instance. */
  sessionsEnded(ended: Ended): void
}

/**
 * The process's one LISTEN connection: turns the NOTIFYs of every instance (committed events,
 * notifications, session ends) into calls of `handlers`, in the order they were committed; reads
 * back what committed while the connection was away.
 */
export class SignalListener {
  readonly origin = crypto.randomUUID()
  // Database time of the last event received (or of the start): where a catch-up begins.
  private lastAt: string | undefined
  // Signals waiting to be handled, and whether a drain is handling them.
  private readonly tasks: (() => Promise<void> | void)[] = []
  private draining = false
  private listens = 0
  private unlisten?: () => Promise<void>
  private timer?: Timer
  private lastHeard = Date.now()
  private readonly barriers = new Map<string, () => void>()

  constructor(
    private readonly ctx: Pick<AppContext, 'sql' | 'log'>,
    private readonly db: Pick<Database, 'listen' | 'mode'>,
    private readonly handlers: SignalHandlers,
    private readonly heartbeatMs = HEARTBEAT_MS,
  ) {}

  async start() {
    this.lastAt = await selectDatabaseNow(this.ctx.sql)
    await this.listen()
    if (this.db.mode === 'embedded') return
    this.timer = setInterval(() => void this.heartbeat(), this.heartbeatMs)
    this.timer.unref()
  }

  async stop() {
    clearInterval(this.timer)
    await this.unlisten?.().catch(() => {})
  }

  /** Tells the other instances that sessions ended here (one process alone needs no telling). */
  announceEnded(ended: Ended) {
    if (this.db.mode === 'embedded') return
    notify(this.ctx.sql, revocationSignal(this.origin, ended)).catch((error: unknown) =>
      this.ctx.log.warn('revocation broadcast failed', describeError(error)),
    )
  }

  /**
   * Runs `then` in signal order once every NOTIFY committed before now has been handled (NOTIFY
   * is delivered in commit order, so the process's own barrier comes after them all). If the
   * barrier does not come back within BARRIER_TIMEOUT_MS, `then` runs anyway.
   */
  afterBarrier(then: () => void, projectId?: string): Promise<void> {
    const barrier = crypto.randomUUID()
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.barriers.delete(barrier)
        then()
        resolve()
      }
      const timer = setTimeout(() => {
        this.ctx.log.warn('realtime barrier did not come back; subscribing anyway')
        done()
      }, BARRIER_TIMEOUT_MS)
      this.barriers.set(barrier, done)
      const signal = JSON.stringify({ k: 'b', b: barrier, o: this.origin } satisfies Signal)
      // Events that committed but are announced after their commit (recordEvent): the barrier
      // waits for the project's event lock, so it comes after their NOTIFY too.
      const sent = projectId
        ? notifyAfterProjectEvents(this.ctx.sql, projectId, signal)
        : notify(this.ctx.sql, signal)
      sent.catch(done)
    })
  }

  private async listen() {
    const listening = await this.db.listen(
      CHANNEL,
      (payload) => {
        this.lastHeard = Date.now()
        this.enqueue(() => this.receive(payload))
      },
      () => this.listening(),
    )
    this.unlisten = listening.unlisten
  }

  /** Proves the LISTEN connection alive with a NOTIFY to itself; listens anew when it is not. */
  private async heartbeat() {
    try {
      if (Date.now() - this.lastHeard > 2 * this.heartbeatMs) {
        this.ctx.log.warn('realtime listener silent; listening again')
        void this.unlisten?.().catch(() => {})
        this.lastHeard = Date.now()
        await this.listen()
      }
      await notify(this.ctx.sql, JSON.stringify({ k: 'h', o: this.origin } satisfies Signal))
    } catch (error) {
      this.ctx.log.warn('realtime heartbeat failed', describeError(error))
    }
  }

  /**
   * Signals are handled one at a time, in arrival (commit) order, read-backs included; a catch-up
   * goes `first`. A drain starts on the next turn of the event loop, not at once: postgres.js
   * hands over the NOTIFYs that came in with the answer to a new LISTEN before it tells us that
   * the connection is back (`onListen`, a few microtasks later), and the catch-up it triggers
   * must run before them, or their newer events would reach sockets before the older ones that
   * committed while the connection was away.
   */
  private enqueue(task: () => Promise<void> | void, first = false) {
    if (first) this.tasks.unshift(task)
    else this.tasks.push(task)
    if (this.draining) return
    this.draining = true
    setImmediate(() => void this.drain())
  }

  private async drain() {
    for (let task = this.tasks.shift(); task; task = this.tasks.shift()) {
      try {
        await task()
      } catch (error) {
        this.ctx.log.error('realtime signal failed', describeError(error))
      }
    }
    this.draining = false
  }

  private listening() {
    this.listens += 1
    // The first LISTEN starts from now; after a reconnect, whatever committed meanwhile is read.
    if (this.listens > 1) {
      this.ctx.log.warn('realtime listener reconnected; catching up', { since: this.lastAt })
      this.enqueue(() => this.catchUp(), true)
    }
  }

  private async receive(payload: string) {
    let signal: Signal
    try {
      signal = JSON.parse(payload) as Signal
    } catch {
      return
    }
    if (signal.k === 'e') {
      const event =
        signal.d === undefined
          ? await selectEvent(this.ctx.sql, signal.id)
          : ({
              id: signal.id,
              project_id: signal.p,
              event: signal.e,
              data: signal.d,
              at: signal.at,
            } as EventRow)
      if (event) this.handOver(event)
    } else if (signal.k === 'n') {
      const data = signal.d ?? (await this.readNotification(signal.id))
      if (data) this.handlers.notification(signal.u, data)
    } else if (signal.k === 'b') {
      if (signal.o === this.origin) this.barriers.get(signal.b)?.()
    } else if (signal.k !== 'h' && signal.o !== this.origin) {
      this.handlers.sessionsEnded(
        signal.k === 's'
          ? { sessionId: signal.s }
          : { userId: signal.u, keepSessionId: signal.keep ?? undefined },
      )
    }
  }

  private handOver(event: EventRow) {
    this.lastAt = event.at
    this.handlers.event(event)
  }

  private async readNotification(id: string) {
    const row = await selectNotification(this.ctx.sql, id)
    if (!row) return undefined
    const { user_id: _, ...data } = row
    return data
  }

  /** Reads what committed while the listener was away; the hub skips what it already sent. */
  private async catchUp() {
    const from = new Date(Date.parse(this.lastAt ?? new Date().toISOString()) - CATCH_UP_MARGIN_MS)
    let after = 0
    for (;;) {
      const rows = await selectEventsSince(this.ctx.sql, from.toISOString(), after, CATCH_UP_PAGE)
      for (const event of rows) this.handOver(event)
      if (rows.length < CATCH_UP_PAGE) return
      after = (rows.at(-1) as EventRow).id
    }
  }
}
