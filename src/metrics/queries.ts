/**
 * Query timing for the metrics, process-wide: postgres.js exposes no pool state (its connection
 * queues are private), so what is counted is every query from the moment it is handed to the
 * pool (queued or sent) to its answer. `instrumentQueries` hooks postgres.js's Query once per
 * process; each app's metrics subscribe to the completions.
 */

/** A small fixed label set: the statement's first keyword, never its text. */
export type QueryKind = 'select' | 'insert' | 'update' | 'delete' | 'with' | 'transaction' | 'other'
export type QueryDone = (kind: QueryKind, ok: boolean, seconds: number) => void

type QueryLike = {
  executed?: boolean
  cursorFn?: unknown
  forEachFn?: unknown
  strings?: unknown
  handle(): unknown
}

const KINDS: Record<string, QueryKind> = {
  select: 'select',
  insert: 'insert',
  update: 'update',
  delete: 'delete',
  with: 'with',
  begin: 'transaction',
  commit: 'transaction',
  rollback: 'transaction',
  savepoint: 'transaction',
  release: 'transaction',
}
const kinds = new WeakMap<object, QueryKind>()
const FIRST_WORD = /^[\s(]*([A-Za-z]+)/

function kindOf(strings: unknown): QueryKind {
  if (typeof strings === 'object' && strings !== null) {
    const known = kinds.get(strings)
    if (known) return known
    const first = Array.isArray(strings) ? strings[0] : undefined
    const kind = kindOfText(typeof first === 'string' ? first : '')
    kinds.set(strings, kind)
    return kind
  }
  // `unsafe` text (begin, commit and the like): the same few strings again and again.
  if (typeof strings !== 'string') return 'other'
  const known = textKinds.get(strings)
  if (known) return known
  const kind = kindOfText(strings)
  if (textKinds.size < 1_000) textKinds.set(strings, kind)
  return kind
}

const textKinds = new Map<string, QueryKind>()

const kindOfText = (text: string): QueryKind =>
  KINDS[FIRST_WORD.exec(text)?.[1]?.toLowerCase() ?? ''] ?? 'other'

const listeners = new Set<QueryDone>()
let inFlight = 0
let installed = false

/** Queries handed to a pool and not answered yet, in this process. */
export const queriesInFlight = () => inFlight

/** Calls `done` after each query; returns the unsubscribe. */
export function onQueryDone(done: QueryDone) {
  listeners.add(done)
  return () => void listeners.delete(done)
}

/**
 * Hooks `Query.prototype.handle` (postgres.js calls it once, when a query is first awaited) of
 * the Query class behind `sql`: a fragment (never awaited) is never counted.
 */
export function instrumentQueries(sql: (strings: TemplateStringsArray) => unknown) {
  if (installed) return
  const probe = sql(Object.assign(['select 1'], { raw: ['select 1'] }) as never) as object
  const proto = Object.getPrototypeOf(probe) as QueryLike
  const original = proto.handle
  if (typeof original !== 'function') return
  installed = true
  const settled = Promise.prototype.then
  proto.handle = function (this: QueryLike) {
    // Cursors and forEach settle their own way: not counted.
    if (!this.executed && !this.cursorFn && !this.forEachFn) {
      inFlight += 1
      const start = performance.now()
      const kind = kindOf(this.strings)
      const finish = (ok: boolean) => {
        inFlight -= 1
        if (listeners.size === 0) return
        const seconds = (performance.now() - start) / 1000
        for (const done of listeners) done(kind, ok, seconds)
      }
      // Promise's own then: Query's would start the query a second time.
      settled.call(
        this,
        () => finish(true),
        () => finish(false),
      )
    }
    return original.call(this)
  }
}
