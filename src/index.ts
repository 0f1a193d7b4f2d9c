import pkg from '../package.json'
import { createApp } from './app'
import { type Config, ConfigError, loadConfig, resolveJwtSecret } from './config'
import { type Database, migrate, openDatabase } from './db'
import { DataDirError, DataDirLockedError } from './embedded'
import { createLogger, describeError } from './logger'
import { serveMetrics } from './metrics'
import { answeredRequests } from './modules/admin/request-stats'
import { scheduleSessionPurge } from './modules/auth/service'

/** A signal arrived before the server listened: startup stops at the next step. */
class StartupAborted extends Error {}

async function main() {
  // Everything this process writes (database, secret, uploads) is private to its user.
  process.umask(0o077)
  // Written out statically so the binary's build-time NODE_ENV=production wins over the runtime one.
  const config = loadConfig({ ...process.env, NODE_ENV: process.env.NODE_ENV })
  const log = createLogger(config.logLevel)
  // A stray error still ends the process as Bun would, but as a JSON line the log pipeline can read.
  const crash = (kind: string) => (error: unknown) => {
    log.error(kind, describeError(error))
    process.exit(1)
  }
  process.on('uncaughtException', crash('uncaught exception'))
  process.on('unhandledRejection', crash('unhandled rejection'))

  // Signal handlers come first: as PID 1 (a container) a signal without a handler is ignored,
  // so a SIGTERM during startup would be lost and `docker stop` would end in SIGKILL.
  let stopSignal: string | undefined
  let shutdown: ((signal: string) => Promise<void>) | undefined
  const onSignal = (signal: string) => {
    if (shutdown)
      return void shutdown(signal).catch((error: unknown) => {
        log.error('shutdown failed', describeError(error))
        process.exit(1)
      })
    if (stopSignal) return
    stopSignal = signal
    log.info('shutting down', { signal, during: 'startup' })
  }
  process.on('SIGTERM', () => onSignal('SIGTERM'))
  process.on('SIGINT', () => onSignal('SIGINT'))
  const checkpoint = () => {
    if (stopSignal) throw new StartupAborted(stopSignal)
  }

  const { secret, generated } = await resolveJwtSecret(config).catch((error: unknown) => {
    throw dataDirProblem(config, error) ?? error
  })
  if (generated)
    log.warn('JWT_SECRET is not set; using a generated secret kept in DATA_DIR/jwt-secret', {
      data_dir: config.dataDir,
    })
  checkpoint()
  let db: Database | undefined
  let app: Awaited<ReturnType<typeof createApp>>
  let metricsServer: ReturnType<typeof serveMetrics> | undefined
  try {
    db = await openDatabase(config, log, {
      dataDir: config.dataDir,
      fsync: config.embeddedFsync,
    }).catch((error: unknown) => {
      throw dataDirProblem(config, error) ?? error
    })
    checkpoint()
    const applied = await migrate(db.sql).catch((error: unknown) => {
      throw unreachableDatabase(config, db, error) ?? error
    })
    if (applied.length > 0) log.info('migrations applied', { migrations: applied })
    checkpoint()
    // The embedded database's first start (initdb, then every migration) leaves ~0.5 GB of
    // garbage; free it before serving. Later starts have none and skip the ~50 ms this takes.
    if (db.mode === 'embedded' && applied.length > 0) Bun.gc(true)
    app = await createApp({ config, db, log, jwtSecret: secret })
    checkpoint()
    try {
      // Elysia turns reusePort on, which lets a second server share a busy port without a word.
      app.listen({
        hostname: config.host,
        port: config.port,
        maxRequestBodySize: config.maxBodyBytes,
        reusePort: config.reusePort,
      })
    } catch (error) {
      throw listenProblem(config, error) ?? error
    }
    // Prometheus metrics on a listener of their own; a taken port stops the server like PORT.
    if (config.metricsPort !== 0)
      try {
        metricsServer = serveMetrics(app.decorator.metrics.registry, {
          hostname: config.host,
          port: config.metricsPort,
        })
      } catch (error) {
        if (codeOf(error) !== 'EADDRINUSE') throw error
        throw new ConfigError([
          `METRICS_PORT: ${config.metricsPort} is already in use on ${config.host} (EADDRINUSE); choose another METRICS_PORT, or 0 for none`,
        ])
      }
  } catch (error) {
    // Closing releases the embedded database's lock for the next start.
    await db?.close().catch(() => {})
    if (error instanceof StartupAborted) {
      log.info('stopped', { signal: error.message, during: 'startup' })
      process.exit(0)
    }
    throw error
  }
  const opened = db
  const stopPurge = scheduleSessionPurge(opened.sql, log)
  const stopIdleShrink = shrinkWhenIdle(() => app.server?.pendingRequests ?? 0)
  log.info('listening', {
    url: listenUrl(config.host, app.server?.port),
    metrics_url: metricsServer ? `${listenUrl(config.host, metricsServer.port)}/metrics` : null,
    database: opened.mode,
    version: pkg.version,
  })

  let stopping = false
  shutdown = async (signal: string) => {
    if (stopping) return
    stopping = true
    log.info('shutting down', { signal })
    // Bun's graceful stop waits for open WebSockets forever: close them first (1001, going away);
    // this also stops the hub's timers (the event pruner among them) and its LISTEN connection.
    await app.decorator.realtime.stop()
    // Stop accepting; in-flight requests and webhook attempts get SHUTDOWN_TIMEOUT_MS to
    // finish (and be recorded), then are cut.
    const drained = Promise.all([app.server?.stop(false), app.decorator.webhookWorker.stop()])
    const timedOut = await Promise.race([
      drained.then(() => false),
      Bun.sleep(config.shutdownTimeoutMs).then(() => true),
    ])
    if (timedOut) await app.server?.stop(true)
    metricsServer?.stop(true)
    stopPurge()
    stopIdleShrink()
    await opened.close()
    log.info('stopped', { forced: timedOut })
    process.exit(0)
  }
  // A signal that came while the last step ran.
  if (stopSignal) onSignal(stopSignal)
}

/** How long the server must be quiet (no request answered, none running) before it shrinks. */
const IDLE_SHRINK_MS = 10_000
/** Requests answered since the last shrink for the next one to be worth it (not /health alone). */
const IDLE_SHRINK_AFTER = 200

/**
 * Memory after load (issue 9): once the server has been quiet for IDLE_SHRINK_MS to 2×
 * IDLE_SHRINK_MS (no request answered, none running) after at least IDLE_SHRINK_AFTER requests
 * since the last time, `Bun.shrink()`: when JavaScriptCore is next idle it drops all compiled code
 * (bytecode and JIT code, made again on the next call), runs a full collection and hands free
 * malloc pages back. A full `Bun.gc(true)` alone frees only the JS heap's garbage (2 to 5 MB
 * here); most of what load leaves is compiled code. It never runs under load: the check is a timer
 * comparing the answered-request count, nothing on the request path. The first requests after it
 * pay for compiling again. Health checks alone (Docker's, every 30 s) take over an hour and a half
 * to reach IDLE_SHRINK_AFTER. Measured figures: README, Memory.
 */
function shrinkWhenIdle(pendingRequests: () => number) {
  let seen = answeredRequests()
  let shrunkAt = seen
  const timer = setInterval(() => {
    const answered = answeredRequests()
    if (answered === seen && answered - shrunkAt >= IDLE_SHRINK_AFTER && pendingRequests() === 0) {
      shrunkAt = answered
      Bun.shrink()
    }
    seen = answered
  }, IDLE_SHRINK_MS)
  timer.unref()
  return () => clearInterval(timer)
}

function listenUrl(host: string, port: number | undefined): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`
}

const FOLDER_CODES = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'ENOTDIR', 'ELOOP'])

/** The data folder's problems (locked, open to others, not writable) name DATA_DIR. */
function dataDirProblem(config: Config, error: unknown): ConfigError | undefined {
  if (error instanceof DataDirError) return new ConfigError([error.message])
  if (error instanceof DataDirLockedError) return new ConfigError([`DATA_DIR: ${error.message}`])
  const code = codeOf(error)
  if (!FOLDER_CODES.has(code)) return undefined
  return new ConfigError([
    `DATA_DIR: cannot use ${JSON.stringify(config.dataDir)}: ${(error as Error).message}; it must be a folder this user can write`,
  ])
}

const codeOf = (error: unknown) =>
  typeof (error as { code?: unknown })?.code === 'string' ? (error as { code: string }).code : ''

/** Bun's listen errors name neither the setting nor the value: say which one to change. */
function listenProblem(config: Config, error: unknown): ConfigError | undefined {
  const code = codeOf(error)
  const where = `${config.host}:${config.port}`
  if (code === 'EADDRINUSE')
    return new ConfigError([
      `PORT: ${config.port} is already in use on ${config.host} (EADDRINUSE); stop the other server or choose another PORT (REUSE_PORT=true shares it on purpose)`,
    ])
  if (code === 'EACCES')
    return new ConfigError([
      `PORT: not allowed to listen on ${where} (EACCES); use a PORT above 1023`,
    ])
  // A host name that does not resolve comes back as ENOTFOUND, EAI_*, or (Bun with some
  // resolvers) EINPROGRESS from the listen call itself.
  if (
    code === 'EINVAL' ||
    code === 'EADDRNOTAVAIL' ||
    code === 'ENOTFOUND' ||
    code === 'EINPROGRESS' ||
    code?.startsWith('EAI_')
  )
    return new ConfigError([
      `HOST: cannot listen on ${JSON.stringify(config.host)} (${code}); use an IP address of this machine, 0.0.0.0 or ::`,
    ])
  return undefined
}

// Connection failures, and server answers that mean the URL is wrong (class 08 connection,
// 28 authorization, 3D000 unknown database).
const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  '3D000',
])

/** A DATABASE_URL that cannot be reached is named, without its password. */
function unreachableDatabase(
  config: Config,
  db: Database | undefined,
  error: unknown,
): ConfigError | undefined {
  const code = codeOf(error)
  if (db?.mode !== 'postgres' || !config.databaseUrl) return undefined
  if (!CONNECT_CODES.has(code) && !code.startsWith('08') && !code.startsWith('28')) return undefined
  let target = 'the server'
  try {
    const url = new URL(config.databaseUrl)
    target = `${url.hostname}:${url.port || 5432}${url.pathname}`
  } catch {}
  const reason = error instanceof Error ? error.message.replace(config.databaseUrl, '…') : code
  return new ConfigError([`DATABASE_URL: cannot use ${target}: ${reason} (${code})`])
}

main().catch((error: unknown) => {
  // One JSON line like every other log line (level, time, msg first), whatever failed.
  const head = { level: 'error', time: new Date().toISOString(), msg: 'startup failed' }
  const fields =
    error instanceof ConfigError
      ? { error: error.problems.join('; '), problems: error.problems }
      : describeError(error)
  console.error(JSON.stringify({ ...head, ...fields, ...head }))
  process.exit(1)
})
