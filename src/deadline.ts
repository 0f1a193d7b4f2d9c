import { AsyncLocalStorage } from 'node:async_hooks'
import { Elysia } from 'elysia'
import { ONE_SESSION } from './after-commit'
import type { Sql } from './db'
import { requestId } from './http'
import type { Logger } from './logger'
import { HttpProblem, problemResponse } from './problems'

// postgres.js's Query: `state` is set once it was sent on a connection, `active` while it runs.
type Cancellable = { cancel(): unknown; state?: unknown; active?: boolean }
type RequestScope = { queries: Set<Cancellable>; expired: boolean }

const scopes = new AsyncLocalStorage<RequestScope>()

const isQuery = (value: unknown): value is Cancellable =>
  typeof value === 'object' && value !== null && typeof (value as Cancellable).cancel === 'function'

const expired = () =>
  new HttpProblem(503, 'Service unavailable', 'The request passed its deadline', {
    headers: { 'retry-after': '1' },
  })

/**
 * The same postgres.js client, but every query made inside a request is remembered with that
 * request, so the deadline can cancel it; transactions (`begin`) hand out a tracked `tx` too.
 * A query made after its request's deadline throws instead, so a transaction still running then
 * rolls back rather than going on to commit after the client was told 503.
 */
export function trackQueries<T extends Sql>(sql: T): T {
  // Runs `fn` (a query, tagged or from text) and remembers the query with the current request.
  const run = (fn: unknown, self: unknown, args: unknown[]) => {
    const scope = scopes.getStore()
    if (scope?.expired) throw expired()
    const result = Reflect.apply(fn as (...a: unknown[]) => unknown, self, args)
    // Fragments are queries too (never sent); only a query that is running gets cancelled.
    if (scope && isQuery(result)) scope.queries.add(result)
    return result
  }
  const track = (target: object): object =>
    new Proxy(target, {
      apply: run,
      get(fn, key, receiver) {
        const value = Reflect.get(fn, key, receiver)
        if (typeof value !== 'function') return value
        if (key === 'unsafe') return (...args: unknown[]) => run(value, fn, args)
        // A transaction's or a session's statements run on a client handed to the callback.
        if (key !== 'begin' && key !== ONE_SESSION) return value
        return (...args: unknown[]) => {
          const last = args.length - 1
          const callback = args[last]
          if (typeof callback === 'function')
            args[last] = (tx: object) => (callback as (tx: object) => unknown)(track(tx))
          return (value as (...a: unknown[]) => unknown).apply(fn, args)
        }
      },
    })
  return track(sql) as T
}

/**
 * REQUEST_TIMEOUT_MS: a request still running at its deadline is answered 503 problem+json
 * (Retry-After: 1), and its running queries are cancelled on PostgreSQL, which rolls back its
 * transaction and frees its pool connection. The embedded database (PGlite, WebAssembly without
 * timers) can neither cancel a query nor enforce `statement_timeout`: there the request is still
 * answered at its deadline, but its query runs to its end. 0 turns the deadline off.
 */
export function requestDeadline(timeoutMs: number, log: Logger) {
  const plugin = new Elysia({ name: 'request-deadline' })
  if (timeoutMs === 0) return plugin
  return plugin.wrap(
    (handle) =>
      ((request: Request) => {
        const scope: RequestScope = { queries: new Set(), expired: false }
        const answer = Promise.resolve(
          scopes.run(scope, () => (handle as (r: Request) => unknown)(request)),
        )
        let timer: Timer | undefined
        const deadline = new Promise<Response>((resolve) => {
          timer = setTimeout(() => {
            scope.expired = true
            // Cancelling a query that never ran or already finished would reject a promise no
            // one awaits (or send nothing): only the running ones get a cancel request.
            const running = [...scope.queries].filter((query) => query.state && query.active)
            for (const query of running) query.cancel()
            const id = requestId(request)
            log.warn('request deadline exceeded', {
              request_id: id,
              method: request.method,
              timeout_ms: timeoutMs,
              cancelled_queries: running.length,
            })
            resolve(
              problemResponse(503, 'Service unavailable', id, {
                detail: `The request did not finish within ${timeoutMs} ms; retry shortly`,
                headers: {
                  'retry-after': '1',
                  'cache-control': 'no-store',
                  'x-content-type-options': 'nosniff',
                },
              }),
            )
          }, timeoutMs)
        })
        return Promise.race([answer, deadline]).finally(() => clearTimeout(timer))
      }) as never,
  )
}
