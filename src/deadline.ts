import { AsyncLocalStorage } from 'node:async_hooks'
import { Elysia } from 'elysia'
import type { Sql } from './db'
import { requestId } from './http'
import type { Logger } from './logger'
import { HttpProblem, problemResponse } from './problems'

// postgres.js's Query: `state` is set once it was sent on a connection, `active` while it runs.
type Cancellable = { cancel(): unknown; state?: unknown; active?: boolean }
type TrackedQuery = Cancellable & { executed?: boolean; strings?: unknown }
type QueryProto = { handle(this: TrackedQuery): unknown }

// postgres.js's own statements around a transaction (`sql.unsafe('rollback')` ...): a rollback
// after the deadline must still reach the database, so that the connection goes back clean.
const TRANSACTION_CONTROL = /^\s*(begin|commit|rollback|savepoint|release)\b/i
const isTransactionControl = (strings: unknown) => {
  const text = Array.isArray(strings) ? strings[0] : strings
  return typeof text === 'string' && TRANSACTION_CONTROL.test(text)
}

/** One request in flight under a deadline. */
type RequestScope = {
  /** The queries it started (awaited), for the cancel at the deadline. */
  queries: Cancellable[]
  expired: boolean
  /** Answered in time: work it left running (a timer's, a stream's) is not tracked any more. */
  answered: boolean
  /** performance.now() when it started. */
  start: number
  request: Request
  /** Answers the request: its handler's answer, or the deadline's 503, whichever comes first. */
  settle: (answer: Response) => void
}

const scopes = new AsyncLocalStorage<RequestScope>()

const expired = () =>
  new HttpProblem(503, 'Service unavailable', 'The request passed its deadline', {
    headers: { 'retry-after': '1' },
  })

let tracking = false

/**
 * Every postgres.js query started inside a request (its transactions' included) is remembered
 * with that request, so the deadline can cancel it. A query started after its request's deadline
 * throws instead, so a transaction still running then rolls back rather than going on to commit
 * after the client was told 503. Hooks `Query.prototype.handle` of the client's Query class once
 * per process (postgres.js calls it when a query is first awaited or executed; a fragment never
 * is): no wrapper object per query, and nothing to do outside a request.
 */
export function trackQueries<T extends Sql>(sql: T): T {
  if (tracking) return sql
  const probe = sql(Object.assign(['select 1'], { raw: ['select 1'] }) as never) as object
  const proto = Object.getPrototypeOf(probe) as QueryProto
  const original = proto.handle
  if (typeof original !== 'function') throw new Error('postgres.js Query has no handle()')
  tracking = true
  proto.handle = function (this: TrackedQuery) {
    // Called on every then/catch/finally: only the first call starts the query.
    const scope = this.executed ? undefined : scopes.getStore()
    if (scope?.expired) {
      if (!isTransactionControl(this.strings)) throw expired()
    } else if (scope && !scope.answered) scope.queries.push(this)
    return original.call(this)
  }
  return sql
}

/**
 * REQUEST_TIMEOUT_MS: a request still running at its deadline is answered 503 problem+json
 * (Retry-After: 1), and its running queries are cancelled on PostgreSQL, which rolls back its
 * transaction and frees its pool connection. The embedded database ignores cancel requests; there
 * `statement_timeout` bounds a query. 0 turns the deadline off.
 *
 * No timer per request: the requests in flight are kept in start order (every one has the same
 * deadline), and one interval, running only while some are in flight, expires those at the front
 * that passed it. The answer is at most one tick (a tenth of the deadline, at most 100 ms) late,
 * never early.
 */
export function requestDeadline(timeoutMs: number, log: Logger) {
  const plugin = new Elysia({ name: 'request-deadline' })
  if (timeoutMs === 0) return plugin
  const tickMs = Math.max(5, Math.min(100, Math.floor(timeoutMs / 10)))
  // Insertion ordered, hence start ordered; a finished request leaves it at once.
  const inFlight = new Set<RequestScope>()
  let ticker: Timer | undefined

  const expire = (scope: RequestScope) => {
    inFlight.delete(scope)
    scope.expired = true
    // Cancelling a query that never ran or already finished would reject a promise no one
    // awaits (or send nothing): only the running ones get a cancel request.
    const running = scope.queries.filter((query) => query.state && query.active)
    for (const query of running) query.cancel()
    const id = requestId(scope.request)
    log.warn('request deadline exceeded', {
      request_id: id,
      method: scope.request.method,
      timeout_ms: timeoutMs,
      cancelled_queries: running.length,
    })
    scope.settle(
      problemResponse(503, 'Service unavailable', id, {
        detail: `The request did not finish within ${timeoutMs} ms; retry shortly`,
        headers: {
          'retry-after': '1',
          'cache-control': 'no-store',
          'x-content-type-options': 'nosniff',
        },
      }),
    )
  }

  const tick = () => {
    const now = performance.now()
    for (const scope of inFlight) {
      if (now - scope.start < timeoutMs) break
      expire(scope)
    }
    if (inFlight.size === 0) {
      clearInterval(ticker)
      ticker = undefined
    }
  }

  return plugin
    .onStop(() => {
      clearInterval(ticker)
      ticker = undefined
    })
    .wrap(
      (handle) =>
        ((request: Request) =>
          new Promise<Response>((resolve, reject) => {
            let done = false
            const scope: RequestScope = {
              queries: [],
              expired: false,
              answered: false,
              start: performance.now(),
              request,
              settle: (answer) => {
                if (done) return
                done = true
                resolve(answer)
              },
            }
            inFlight.add(scope)
            if (ticker === undefined) {
              ticker = setInterval(tick, tickMs)
              ticker.unref()
            }
            let answer: unknown
            try {
              answer = scopes.run(scope, () => (handle as (r: Request) => unknown)(request))
            } catch (error) {
              inFlight.delete(scope)
              done = true
              reject(error)
              return
            }
            const finish = (value: unknown) => {
              inFlight.delete(scope)
              scope.answered = !scope.expired
              scope.settle(value as Response)
            }
            if (answer instanceof Promise)
              answer.then(finish, (error: unknown) => {
                inFlight.delete(scope)
                scope.answered = !scope.expired
                if (done) return
                done = true
                reject(error)
              })
            else finish(answer)
          })) as never,
    )
}
