import { randomBytes } from 'node:crypto'
import { chmod, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type Static, Type as t } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'

const LogLevel = t.Union([
  t.Literal('debug'),
  t.Literal('info'),
  t.Literal('warn'),
  t.Literal('error'),
  t.Literal('silent'),
])

const Seconds = (fallback: number) =>
  t.Integer({ minimum: 1, maximum: 31_536_000, default: fallback })
const Millis = (fallback: number) =>
  t.Integer({ minimum: 0, maximum: 3_600_000, default: fallback })

// Environment variables as read; every value arrives as a string and is converted before the check.
const EnvSchema = t.Object({
  NODE_ENV: t.Union([t.Literal('development'), t.Literal('production'), t.Literal('test')], {
    default: 'development',
  }),
  HOST: t.String({ minLength: 1, default: '0.0.0.0' }),
  PORT: t.Integer({ minimum: 0, maximum: 65_535, default: 8080 }),
  DATABASE_URL: t.Optional(t.String({ pattern: '^postgres(ql)?://' })),
  DATA_DIR: t.String({ minLength: 1, default: './data' }),
  DATABASE_POOL_MAX: t.Integer({ minimum: 1, maximum: 200, default: 10 }),
  DATABASE_STATEMENT_TIMEOUT_MS: Millis(5_000),
  DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS: Millis(10_000),
  DATABASE_PREPARE: t.Boolean({ default: true }),
  JWT_SECRET: t.Optional(t.String()),
  ACCESS_TOKEN_TTL: Seconds(900),
  REFRESH_TOKEN_TTL: Seconds(2_592_000),
  SESSION_CACHE_TTL_MS: Millis(5_000),
  PASSWORD_HASH_CONCURRENCY: t.Integer({ minimum: 1, maximum: 64, default: 2 }),
  LOG_LEVEL: t.Union(LogLevel.anyOf, { default: 'info' }),
  CORS_ORIGINS: t.String({ default: '*' }),
  TRUST_PROXY: t.Boolean({ default: false }),
  MAX_BODY_BYTES: t.Integer({ minimum: 1024, maximum: 134_217_728, default: 10_485_760 }),
  MAX_JSON_BODY_BYTES: t.Integer({ minimum: 1024, maximum: 134_217_728, default: 1_048_576 }),
  SHUTDOWN_TIMEOUT_MS: Millis(10_000),
})

type Env = Static<typeof EnvSchema>
/** The names of every environment variable the server reads. */
export const SETTINGS = Object.keys(EnvSchema.properties)
export type LogLevel = Static<typeof LogLevel>

export type Config = {
  env: Env['NODE_ENV']
  host: string
  port: number
  databaseUrl: string | undefined
  dataDir: string
  db: {
    poolMax: number
    statementTimeoutMs: number
    idleInTransactionTimeoutMs: number
    prepare: boolean
  }
  jwtSecret: string | undefined
  accessTokenTtl: number
  refreshTokenTtl: number
  sessionCacheTtlMs: number
  passwordHashConcurrency: number
  logLevel: LogLevel
  corsOrigins: '*' | string[]
  trustProxy: boolean
  maxBodyBytes: number
  maxJsonBodyBytes: number
  shutdownTimeoutMs: number
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`)
  }
}

const MIN_SECRET_BYTES = 32

/** Reads every setting once from the environment; throws ConfigError listing every bad value. */
export function loadConfig(source: Record<string, string | undefined> = process.env): Config {
  const raw: Record<string, unknown> = {}
  for (const key of Object.keys(EnvSchema.properties)) {
    const value = source[key]
    if (value !== undefined && value.trim() !== '') raw[key] = value.trim()
  }
  const env = Value.Convert(EnvSchema, Value.Default(EnvSchema, raw))
  const problems = [...Value.Errors(EnvSchema, env)].map(
    (e) => `${e.path.slice(1) || 'environment'}: ${e.message}`,
  )
  if (problems.length === 0 && Value.Check(EnvSchema, env)) {
    const secretBytes = env.JWT_SECRET ? Buffer.byteLength(env.JWT_SECRET) : 0
    if (env.JWT_SECRET !== undefined && secretBytes < MIN_SECRET_BYTES)
      problems.push(`JWT_SECRET: must be at least ${MIN_SECRET_BYTES} bytes`)
    // Embedded (no DATABASE_URL) is one process by construction, so a secret generated into
    // DATA_DIR serves it; instances sharing a PostgreSQL must share a secret they are given.
    if (env.NODE_ENV === 'production' && env.JWT_SECRET === undefined && env.DATABASE_URL)
      problems.push('JWT_SECRET: required when NODE_ENV=production and DATABASE_URL is set')
    if (problems.length === 0) return toConfig(env)
  }
  throw new ConfigError(problems)
}

function toConfig(env: Env): Config {
  const origins = env.CORS_ORIGINS.split(',')
    .map((o) => o.trim())
    .filter(Boolean)
  return {
    env: env.NODE_ENV,
    host: env.HOST,
    port: env.PORT,
    databaseUrl: env.DATABASE_URL,
    dataDir: env.DATA_DIR,
    db: {
      poolMax: env.DATABASE_POOL_MAX,
      statementTimeoutMs: env.DATABASE_STATEMENT_TIMEOUT_MS,
      idleInTransactionTimeoutMs: env.DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS,
      prepare: env.DATABASE_PREPARE,
    },
    jwtSecret: env.JWT_SECRET,
    accessTokenTtl: env.ACCESS_TOKEN_TTL,
    refreshTokenTtl: env.REFRESH_TOKEN_TTL,
    sessionCacheTtlMs: env.SESSION_CACHE_TTL_MS,
    passwordHashConcurrency: env.PASSWORD_HASH_CONCURRENCY,
    logLevel: env.LOG_LEVEL,
    corsOrigins: origins.includes('*') ? '*' : origins,
    trustProxy: env.TRUST_PROXY,
    maxBodyBytes: env.MAX_BODY_BYTES,
    maxJsonBodyBytes: env.MAX_JSON_BODY_BYTES,
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
  }
}

/**
 * A missing JWT_SECRET (development, or production on the embedded database) is generated once
 * and kept in DATA_DIR/jwt-secret (mode 0600), so restarts keep sessions valid; returns the
 * secret and whether it was generated.
 */
export async function resolveJwtSecret(
  config: Config,
): Promise<{ secret: string; generated: boolean }> {
  if (config.jwtSecret) return { secret: config.jwtSecret, generated: false }
  const path = join(config.dataDir, 'jwt-secret')
  const file = Bun.file(path)
  if (await file.exists()) {
    const stored = (await file.text()).trim()
    if (Buffer.byteLength(stored) >= MIN_SECRET_BYTES) return { secret: stored, generated: true }
  }
  const secret = randomBytes(48).toString('base64url')
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 })
  await writeFile(path, `${secret}\n`, { mode: 0o600 })
  await chmod(path, 0o600)
  return { secret, generated: true }
}
