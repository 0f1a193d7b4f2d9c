import type { PGlite } from '@electric-sql/pglite'
import postgres from 'postgres'
import init from '../sql/0001_init.sql' with { type: 'text' }
import projects from '../sql/0002_projects.sql' with { type: 'text' }
import tasks from '../sql/0003_tasks.sql' with { type: 'text' }
import events from '../sql/0005_events.sql' with { type: 'text' }
import apiTokens from '../sql/0011_api_tokens.sql' with { type: 'text' }
import idempotency from '../sql/0012_idempotency.sql' with { type: 'text' }
import webhooks from '../sql/0013_webhooks.sql' with { type: 'text' }
import taskListing from '../sql/0014_task_listing.sql' with { type: 'text' }
import idempotencyBodyDigest from '../sql/0015_idempotency_body_digest.sql' with { type: 'text' }
import tasksAutovacuum from '../sql/0016_tasks_autovacuum.sql' with { type: 'text' }
import type { Config } from './config'
import { type EmbeddedOptions, startEmbeddedPostgres } from './embedded'
import type { Logger } from './logger'
import { instrumentQueries } from './metrics/queries'

export type Sql = postgres.Sql
/** A pool or a transaction: the first parameter of every query function. */
export type Executor = postgres.Sql | postgres.TransactionSql

export type Database = {
  sql: Sql
  mode: 'embedded' | 'postgres'
  /** The embedded engine itself, when there is one (tests dump it as a template). */
  pglite?: PGlite
  /** True when the database answers `select 1` within the timeout. */
  ping(timeoutMs?: number): Promise<boolean>
  /** LISTEN on `channel`; `onListen` runs each time the listening connection is (re)established. */
  listen: Listen
  close(): Promise<void>
}

export type Listen = (
  channel: string,
  onNotify: (payload: string) => void,
  onListen?: () => void,
) => Promise<{ unlisten(): Promise<void> }>

type DatabaseConfig = Pick<Config, 'databaseUrl' | 'dataDir' | 'db'>

/** Opens the pool: to DATABASE_URL, or to an embedded PGlite in DATA_DIR when it is unset. */
export async function openDatabase(
  config: DatabaseConfig,
  log: Logger,
  embedded: EmbeddedOptions = { dataDir: config.dataDir },
): Promise<Database> {
  // Settings of every session. PostgreSQL takes them from the startup message; PGlite ignores
  // those, so on the embedded database they are set on its one session (below).
  const session: Record<string, string> = {
    application_name: 'taskapi',
    // Timestamps are parsed from text: pin its format whatever the database's defaults say.
    DateStyle: 'ISO, MDY',
    TimeZone: 'UTC',
    IntervalStyle: 'postgres',
    statement_timeout: String(config.db.statementTimeoutMs),
    idle_in_transaction_session_timeout: String(config.db.idleInTransactionTimeoutMs),
    // PostgreSQL's default of 4 prices an index probe as a disk seek, so a read joining a few
    // hundred users or projects by primary key is planned as hash joins over whole-table scans
    // (README, Databases).
    ...(config.db.randomPageCost > 0 ? { random_page_cost: String(config.db.randomPageCost) } : {}),
  }
  const options: postgres.Options<Record<string, postgres.PostgresType>> = {
    max: config.db.poolMax,
    idle_timeout: 60,
    max_lifetime: 60 * 30,
    // A connection whose backend dies during the handshake waits this long (seconds).
    connect_timeout: 5,
    // Reconnect attempts back off up to 1 s, not postgres.js's 20 s: queries wait for the next
    // attempt, so while the database is away they fail (503) within about a second of asking, and
    // the pool is back within a second of the database.
    backoff: (retries: number) => (0.5 + Math.random() / 2) * Math.min(3 ** retries / 100, 1),
    // Off behind PgBouncer in transaction mode, where named prepared statements break.
    prepare: config.db.prepare,
    connection: session,
    // Rows map to JSON as they are: timestamps as RFC 3339 UTC strings, calendar dates as
    // 'YYYY-MM-DD' instead of midnight timestamps.
    types: {
      date: { to: 1082, from: [1082], serialize: (v: string) => v, parse: (v: string) => v },
      timestamptz: {
        to: 1184,
        from: [1184],
        serialize: (v: Date | string) => (v instanceof Date ? v.toISOString() : v),
        parse: (v: string) => new Date(v).toISOString(),
      },
    },
    onnotice: (notice) => log.debug('postgres notice', { notice: notice.message }),
  }
  if (config.databaseUrl) {
    const sql = postgres(config.databaseUrl, options)
    // One dedicated connection per process, reconnected (and `onListen` run again) by postgres.js.
    const listen: Listen = (channel, onNotify, onListen) => sql.listen(channel, onNotify, onListen)
    return wrap(sql, 'postgres', async () => {}, listen)
  }
  const server = await startEmbeddedPostgres(embedded)
  // The session outlives postgres.js reconnecting to the socket. (PGlite has no timers: it keeps
  // the two timeouts as settings but never enforces them.)
  for (const [name, value] of Object.entries(session))
    await server.pglite.query(`select set_config($1, $2, false)`, [name, value])
  const listeners = new Map<string, Set<(payload: string) => void>>()
  // PGlite is one session: a single connection avoids the socket server's multiplexing faults.
  const sql = postgres({
    ...options,
    host: server.socketDir,
    port: 5432,
    database: 'postgres',
    username: 'postgres',
    max: 1,
    // PGlite is one session, so a NOTIFY comes back on this very connection after its commit
    // (postgres.js reads `onnotify`, though its types leave it out).
    ...({
      onnotify: (channel: string, payload: string) => {
        for (const fn of listeners.get(channel) ?? []) fn(payload)
      },
    } as object),
  })
  const listen: Listen = async (channel, onNotify, onListen) => {
    const fns = listeners.get(channel) ?? new Set()
    listeners.set(channel, fns.add(onNotify))
    // The session, and with it the LISTEN, outlives postgres.js reconnecting to the socket.
    await sql`listen ${sql(channel)}`
    onListen?.()
    return { unlisten: async () => void fns.delete(onNotify) }
  }
  return { ...wrap(sql, 'embedded', () => server.stop(), listen), pglite: server.pglite }
}

function wrap(
  sql: Sql,
  mode: Database['mode'],
  stopServer: () => Promise<void>,
  listen: Listen,
): Database {
  // Query latency and queries in flight for the metrics (postgres.js has no pool gauges).
  instrumentQueries(sql)
  return {
    sql,
    mode,
    listen,
    async ping(timeoutMs = 2_000) {
      let timer: Timer | undefined
      const timeout = new Promise<false>((done) => {
        timer = setTimeout(() => done(false), timeoutMs)
      })
      const query = sql`select 1 as ok`.then(
        () => true,
        () => false,
      )
      try {
        return await Promise.race([query, timeout])
      } finally {
        clearTimeout(timer)
      }
    },
    async close() {
      await sql.end({ timeout: 5 })
      await stopServer()
    },
  }
}

/** Forward-only migrations, in order; each file of sql/ is imported here so the binary carries it. */
export const migrations = [
  { version: 1, name: '0001_init', text: init },
  { version: 2, name: '0002_projects', text: projects },
  { version: 3, name: '0003_tasks', text: tasks },
  { version: 5, name: '0005_events', text: events },
  { version: 11, name: '0011_api_tokens', text: apiTokens },
  { version: 12, name: '0012_idempotency', text: idempotency },
  { version: 13, name: '0013_webhooks', text: webhooks },
  { version: 14, name: '0014_task_listing', text: taskListing },
  { version: 15, name: '0015_idempotency_body_digest', text: idempotencyBodyDigest },
  { version: 16, name: '0016_tasks_autovacuum', text: tasksAutovacuum },
]

// Any fixed 64-bit key shared by every instance; it serialises concurrent migrators.
const MIGRATION_LOCK_KEY = 7_306_517_114_921_345n

/** Applies the pending migrations in one transaction under an advisory lock; returns their names. */
export async function migrate(sql: Sql): Promise<string[]> {
  return sql.begin(async (tx) => {
    await tx`set local statement_timeout = 0`
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY.toString()}::bigint)`
    await tx`
      create table if not exists schema_migrations (
        version integer primary key,
        name text not null,
        applied_at timestamptz not null default now()
      )
    `
    const rows = await tx<{ version: number }[]>`select version from schema_migrations`
    const applied = new Set(rows.map((r) => r.version))
    const done: string[] = []
    for (const migration of migrations) {
      if (applied.has(migration.version)) continue
      await tx.unsafe(migration.text)
      await tx`
        insert into schema_migrations (version, name)
        values (${migration.version}, ${migration.name})
      `
      done.push(migration.name)
    }
    return done
  })
}
