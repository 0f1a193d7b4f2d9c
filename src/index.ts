import pkg from '../package.json'
import { createApp } from './app'
import { ConfigError, loadConfig, resolveJwtSecret } from './config'
import { migrate, openDatabase } from './db'
import { createLogger, describeError } from './logger'
import { serveMetrics } from './metrics'
import { scheduleSessionPurge } from './modules/auth/service'

async function main() {
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
  const { secret, generated } = await resolveJwtSecret(config)
  if (generated)
    log.warn('JWT_SECRET is not set; using a generated secret kept in DATA_DIR/jwt-secret', {
      data_dir: config.dataDir,
    })
  const db = await openDatabase(config, log)
  let app: Awaited<ReturnType<typeof createApp>>
  let metricsServer: ReturnType<typeof serveMetrics> | undefined
  try {
    const applied = await migrate(db.sql)
    if (applied.length > 0) log.info('migrations applied', { migrations: applied })
    // The embedded database's first start (initdb, then every migration) leaves ~0.5 GB of
    // garbage; free it before serving. Later starts have none and skip the ~50 ms this takes.
    if (db.mode === 'embedded' && applied.length > 0) Bun.gc(true)
    app = await createApp({ config, db, log, jwtSecret: secret })
    // Elysia turns reusePort on, which lets a second server share a busy port without a word.
    app.listen({
      hostname: config.host,
      port: config.port,
      maxRequestBodySize: config.maxBodyBytes,
      reusePort: false,
    })
    // Prometheus metrics on a listener of their own; a taken port stops the server like PORT.
    if (config.metricsPort !== 0)
      metricsServer = serveMetrics(app.decorator.metrics.registry, {
        hostname: config.host,
        port: config.metricsPort,
      })
  } catch (error) {
    // Closing releases the embedded database's lock for the next start.
    await db.close().catch(() => {})
    throw error
  }
  const stopPurge = scheduleSessionPurge(db.sql, log)
  log.info('listening', {
    url: listenUrl(config.host, app.server?.port),
    metrics_url: metricsServer ? `${listenUrl(config.host, metricsServer.port)}/metrics` : null,
    database: db.mode,
    version: pkg.version,
  })

  let stopping = false
  const shutdown = async (signal: string) => {
    if (stopping) return
    stopping = true
    log.info('shutting down', { signal })
    // Bun's graceful stop waits for open WebSockets forever: close them first (1001, going away).
    await app.decorator.realtime.stop()
    // Stop accepting; in-flight requests get SHUTDOWN_TIMEOUT_MS to finish, then are cut.
    const drained = app.server?.stop(false)
    const timedOut = await Promise.race([
      Promise.resolve(drained).then(() => false),
      Bun.sleep(config.shutdownTimeoutMs).then(() => true),
    ])
    if (timedOut) await app.server?.stop(true)
    metricsServer?.stop(true)
    stopPurge()
    await db.close()
    log.info('stopped', { forced: timedOut })
    process.exit(0)
  }
  const onSignal = (signal: string) =>
    shutdown(signal).catch((error: unknown) => {
      log.error('shutdown failed', describeError(error))
      process.exit(1)
    })
  process.on('SIGTERM', () => void onSignal('SIGTERM'))
  process.on('SIGINT', () => void onSignal('SIGINT'))
}

function listenUrl(host: string, port: number | undefined): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) console.error(error.message)
  else
    console.error(
      JSON.stringify({ level: 'error', msg: 'startup failed', ...describeError(error) }),
    )
  process.exit(1)
})
