import type { Database, Executor, Sql } from './db'

/**
 * Work that runs on a transaction's own connection as the transaction ends: its statements are
 * sent right behind the COMMIT (`committed` true: it may still fail) or the ROLLBACK, before the
 * connection goes back to the pool, so it can release what the session still holds (a
 * session-level advisory lock).
 */
export type AfterEnd = (connection: Executor, committed: boolean) => Promise<unknown>

const AFTER_END = Symbol('taskapi.afterEnd')

/** The property of a `reservedTransactions` client that runs work on one session (`onOneSession`). */
export const ONE_SESSION = 'taskapiOneSession'

type OneSession = <T>(work: (connection: Executor) => Promise<T>) => Promise<T>

/**
 * On a client from `reservedTransactions` (the server on PostgreSQL): a function that runs `work`
 * on one reserved connection, each of its statements autocommitted, and then releases the
 * connection; when `work` fails, whatever session lock it left is released first. Undefined
 * elsewhere (the embedded database, PgBouncer in transaction mode): the caller uses a
 * transaction. For a write that is one statement followed by its NOTIFY and lock release.
 */
export function onOneSession(sql: Executor): OneSession | undefined {
  return (sql as unknown as Record<string, OneSession | undefined>)[ONE_SESSION]
}

/**
 * Registers `work` to run after the transaction `tx` ends; false when `tx` does not come from
 * `reservedTransactions` (the caller then does its work inside the transaction instead).
 */
export function afterEnd(tx: Executor, work: AfterEnd): boolean {
  const list = (tx as unknown as Record<symbol, AfterEnd[] | undefined>)[AFTER_END]
  if (!list) return false
  list.push(work)
  return true
}

/**
 * The same client, whose `begin(fn)` runs the transaction on a reserved connection and, after
 * COMMIT or ROLLBACK, the work registered with `afterEnd`, on that connection, before releasing
 * it. Used on PostgreSQL only: a NOTIFY queued inside a transaction makes PostgreSQL hold a
 * cluster-wide lock until that transaction's commit is flushed, so every notifying commit waits
 * for the one before it (bench/notify-ceiling.ts); sent after the commit it does not. The
 * embedded database is one session and keeps postgres.js's own `begin`, and so does a pool
 * behind PgBouncer in transaction mode (`sessionsKept` false), where NOTIFY stays in the
 * transaction.
 *
 * Like postgres.js's `begin`, a failing callback rolls back and rethrows, and a callback's array
 * of queries is awaited as a whole; no savepoints (nothing here uses them). BEGIN and the
 * callback's first statement share one write, as do COMMIT and the after-end work: a statement
 * costs the server a socket write and a wake-up more than anything else on this path.
 */
export function reservedTransactions(
  db: Pick<Database, 'sql' | 'mode'>,
  { sessionsKept }: { sessionsKept: boolean },
): Sql {
  // Behind PgBouncer in transaction mode (DATABASE_PREPARE=false) the statements after a COMMIT
  // may reach another server session, which could not release this one's lock.
  if (db.mode !== 'postgres' || !sessionsKept) return db.sql
  const sql = db.sql
  const begin = async (...args: unknown[]) => {
    const fn = args.at(-1) as (tx: Executor) => unknown
    const options = args.length > 1 ? String(args[0]).replace(/[^a-z ]/gi, '') : ''
    const connection = await sql.reserve()
    const tx = connection as unknown as Executor
    const works: AfterEnd[] = []
    Object.defineProperty(connection, AFTER_END, { value: works })
    // Each work's statements queue behind the COMMIT (or ROLLBACK) on this connection: one round
    // trip. A work that must not act on a failed commit checks what the commit made visible.
    const end = async (statement: 'commit' | 'rollback') => {
      // Sent now (postgres.js sends a query when it is first awaited): before the works' own.
      const ending = connection.unsafe(statement).execute()
      const after = works.map((work) => work(tx, statement === 'commit'))
      try {
        await ending
      } finally {
        const failed = (await Promise.allSettled(after)).some((r) => r.status === 'rejected')
        // What a work did not release, the session must not keep in the pool.
        if (failed) await connection`select pg_advisory_unlock_all()`.catch(() => {})
      }
    }
    try {
      // Not awaited before the callback starts: its first statement goes out in the same write.
      const begun = connection.unsafe(`begin ${options}`).execute()
      begun.catch(() => {})
      let result: unknown
      try {
        const value = fn(tx)
        result = await (Array.isArray(value) ? Promise.all(value) : value)
        await begun
      } catch (error) {
        await end('rollback').catch(() => {})
        throw error
      }
      await end('commit')
      return result
    } finally {
      connection.release()
    }
  }
  const oneSession: OneSession = async (work) => {
    const connection = await sql.reserve()
    try {
      return await work(connection as unknown as Executor)
    } catch (error) {
      await connection`select pg_advisory_unlock_all()`.catch(() => {})
      throw error
    } finally {
      connection.release()
    }
  }
  return new Proxy(sql, {
    get(target, key, receiver) {
      if (key === 'begin') return begin
      if (key === ONE_SESSION) return oneSession
      return Reflect.get(target, key, receiver)
    },
  })
}
