import { createApp } from './app'
import { ConfigError, loadConfig, resolveJwtSecret } from './config'
import { migrate, openDatabase } from './db'
import { createLogger, describeError } from './logger'
import { scheduleSessionPurge } from './modules/auth/service'

async function main() {
  // Written out statically so the binary's build-time NODE_ENV=production wins over the runtime one.
  const config = loadConfig({ ...process.env, NODE_ENV: process.env.NODE_ENV })
  const log = createLogger(config.logLevel)
  const { secret, generated } = await resolveJwtSecret(config)
  if (generated)
    log.warn('JWT_SECRET is not set; using a generated secret kept in DATA_DIR/jwt-secret', {
      data_dir: config.dataDir,
    })
  const db = await openDatabase(config, log)
  const applied = await migrate(db.sql)
  if (applied.length > 0) log.info('migrations applied', { migrations: applied })
  // The embedded database's first start (initdb) leaves ~0.5 GB of garbage; free it before serving.
  if (db.mode === 'embedded') Bun.gc(true)
  const stopPurge = scheduleSessionPurge(db.sql, log)
  const app = await createApp({ config, db, log, jwtSecret: secret })
  app.listen({ hostname: config.host, port: config.port, maxRequestBodySize: config.maxBodyBytes })
  log.info('listening', { url: `http://${config.host}:${app.server?.port}`, database: db.mode })

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
    stopPurge()
    await db.close()
    log.info('stopped', { forced: timedOut })
    process.exit(0)
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.on('SIGINT', () => void shutdown('SIGINT'))
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) console.error(error.message)
  else
    console.error(
      JSON.stringify({ level: 'error', msg: 'startup failed', ...describeError(error) }),
    )
  process.exit(1)
})
