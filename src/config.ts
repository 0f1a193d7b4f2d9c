import { randomBytes } from 'node:crypto'
import { chmod, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type Static, type TSchema, Type as t } from '@sinclair/typebox'
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

/** Room left in MAX_BODY_BYTES for the multipart framing around an upload of MAX_UPLOAD_BYTES. */
export const MULTIPART_FRAMING_BYTES = 16_384
const DEFAULT_MAX_UPLOAD_BYTES = 10_485_760

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
  DATABASE_RANDOM_PAGE_COST: t.Number({ minimum: 0, maximum: 100, default: 1.1 }),
  JWT_SECRET: t.Optional(t.String()),
  ACCESS_TOKEN_TTL: Seconds(900),
  REFRESH_TOKEN_TTL: Seconds(2_592_000),
  SESSION_CACHE_TTL_MS: Millis(5_000),
  PASSWORD_HASH_CONCURRENCY: t.Integer({ minimum: 1, maximum: 64, default: 2 }),
  PASSWORD_HASH_QUEUE_MAX: t.Integer({ minimum: 0, maximum: 10_000, default: 32 }),
  PASSWORD_HASH_WAIT_MS: Millis(2_000),
  LOG_LEVEL: t.Union(LogLevel.anyOf, { default: 'info' }),
  CORS_ORIGINS: t.String({ default: '*' }),
  TRUST_PROXY: t.Boolean({ default: false }),
  MAX_BODY_BYTES: t.Integer({ minimum: 1024, maximum: 134_217_728, default: 10_485_760 }),
  MAX_JSON_BODY_BYTES: t.Integer({ minimum: 1024, maximum: 134_217_728, default: 1_048_576 }),
  MAX_JSON_DEPTH: t.Integer({ minimum: 1, maximum: 1_000, default: 64 }),
  SHUTDOWN_TIMEOUT_MS: Millis(10_000),
  WEBHOOK_ALLOW_PRIVATE: t.Boolean({ default: false }),
  WEBHOOK_POLL_MS: t.Integer({ minimum: 10, maximum: 60_000, default: 1_000 }),
  WEBHOOK_RETRY_BASE_MS: t.Integer({ minimum: 1, maximum: 3_600_000, default: 10_000 }),
  WEBHOOK_TIMEOUT_MS: t.Integer({ minimum: 100, maximum: 60_000, default: 10_000 }),
  UPLOAD_DIR: t.Optional(t.String({ minLength: 1 })),
  REUSE_PORT: t.Boolean({ default: false }),
  EMBEDDED_FSYNC: t.Boolean({ default: true }),
  MAX_UPLOAD_BYTES: t.Optional(
    t.Integer({ minimum: 1, maximum: 134_217_728 - MULTIPART_FRAMING_BYTES }),
  ),
  EVENTS_RETENTION_HOURS: t.Integer({ minimum: 1, maximum: 8_760, default: 24 }),
  EVENTS_RETENTION_PER_PROJECT: t.Integer({ minimum: 0, maximum: 10_000_000, default: 10_000 }),
  EVENTS_PRUNE_INTERVAL_MS: t.Integer({ minimum: 10, maximum: 86_400_000, default: 600_000 }),
  WS_MAX_PAYLOAD_BYTES: t.Integer({ minimum: 256, maximum: 1_048_576, default: 4_096 }),
  WS_BACKPRESSURE_LIMIT_BYTES: t.Integer({
    minimum: 1_024,
    maximum: 67_108_864,
    default: 1_048_576,
  }),
  WS_IDLE_TIMEOUT_S: t.Integer({ minimum: 1, maximum: 960, default: 120 }),
  WS_MAX_SOCKETS_PER_USER: t.Integer({ minimum: 1, maximum: 1_000_000, default: 20 }),
  WS_MAX_SUBSCRIPTIONS: t.Integer({ minimum: 1, maximum: 10_000, default: 100 }),
  RATE_LIMIT_REQUESTS: t.Integer({ minimum: 0, maximum: 10_000_000, default: 600 }),
  RATE_LIMIT_AUTH_REQUESTS: t.Integer({ minimum: 0, maximum: 10_000_000, default: 10 }),
  RATE_LIMIT_WINDOW_S: t.Integer({ minimum: 1, maximum: 86_400, default: 60 }),
  DOCS_ENABLED: t.Boolean({ default: true }),
  REQUEST_TIMEOUT_MS: Millis(10_000),
  METRICS_PORT: t.Integer({ minimum: 0, maximum: 65_535, default: 9_464 }),
  COMPRESSION_MIN_BYTES: t.Integer({ minimum: 0, maximum: 134_217_728, default: 1_024 }),
  RATE_LIMIT_MAX_KEYS: t.Integer({ minimum: 1, maximum: 10_000_000, default: 100_000 }),
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
    /** The planner's `random_page_cost` for this server's sessions; 0 keeps the database's. */
    randomPageCost: number
  }
  jwtSecret: string | undefined
  accessTokenTtl: number
  refreshTokenTtl: number
  sessionCacheTtlMs: number
  passwordHashConcurrency: number
  /** Hashes that may wait for a slot, and for how long, before a 503. */
  passwordHashQueueMax: number
  passwordHashWaitMs: number
  logLevel: LogLevel
  corsOrigins: '*' | string[]
  trustProxy: boolean
  maxBodyBytes: number
  maxJsonBodyBytes: number
  maxJsonDepth: number
  shutdownTimeoutMs: number
  uploadDir: string
  maxUploadBytes: number
  /**
   * Webhook destinations, delivery polling, the first retry delay (later ones grow from it) and
   * how long a receiver has to answer.
   */
  webhooks: { allowPrivate: boolean; pollMs: number; retryBaseMs: number; timeoutMs: number }
  /** Events kept for replay, and the limits of each WebSocket. */
  realtime: {
    retentionHours: number
    retentionPerProject: number
    pruneIntervalMs: number
    maxPayloadBytes: number
    backpressureLimitBytes: number
    idleTimeoutSeconds: number
    maxSocketsPerUser: number
    maxSubscriptions: number
  }
  /** SO_REUSEPORT: several processes share the port (off: a taken port stops the server). */
  reusePort: boolean
  /** The embedded database waits for fsync() at each commit. */
  embeddedFsync: boolean
  /** Whether /docs (API reference, OpenAPI and AsyncAPI documents) is served. */
  docsEnabled: boolean
  /** A request still running after this long answers 503 and its queries are cancelled (0: off). */
  requestTimeoutMs: number
  /** Port of the Prometheus /metrics listener (on HOST); 0: none. */
  metricsPort: number
  /** JSON answers of at least this many bytes are compressed when accepted (0: never). */
  compressionMinBytes: number
  /** Per-instance token buckets: requests per window (0 turns a kind off) and keys kept. */
  rateLimit: {
    requests: number
    authRequests: number
    windowSeconds: number
    maxKeys: number
  }
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
  for (const [key, schema] of Object.entries(EnvSchema.properties)) {
    const value = source[key]?.trim()
    if (value !== undefined && value !== '') raw[key] = fromEnvironment(schema, value)
  }
  const env = Value.Default(EnvSchema, raw)
  const problems = [...Value.Errors(EnvSchema, env)].map(
    (e) => `${e.path.slice(1) || 'environment'}: ${describeProblem(e.schema, e.message)}`,
  )
  // The secret is checked with the other values, so one run names every problem.
  const given = env as Partial<Record<'JWT_SECRET' | 'NODE_ENV' | 'DATABASE_URL', unknown>>
  const secret = typeof given.JWT_SECRET === 'string' ? given.JWT_SECRET : undefined
  if (secret !== undefined && Buffer.byteLength(secret) < MIN_SECRET_BYTES)
    problems.push(`JWT_SECRET: must be at least ${MIN_SECRET_BYTES} bytes`)
  // Embedded (no DATABASE_URL) is one process by construction, so a secret generated into
  // DATA_DIR serves it; instances sharing a PostgreSQL must share a secret they are given.
  if (given.NODE_ENV === 'production' && secret === undefined && given.DATABASE_URL)
    problems.push('JWT_SECRET: required when NODE_ENV=production and DATABASE_URL is set')
  if (problems.length === 0 && Value.Check(EnvSchema, env)) {
    problems.push(...fitUploadLimits(env, Boolean(source.MAX_BODY_BYTES?.trim())))
    if (problems.length === 0) return toConfig(env)
  }
  throw new ConfigError(problems)
}

/**
 * Whole numbers are plain decimal digits, other numbers digits with an optional decimal part (no
 * exponent), and booleans true/false/1/0; anything else stays a string and
 * fails the check (TypeBox's own conversion would read PORT=1e3 as 1 and 80.5 as 80).
 */
function fromEnvironment(schema: TSchema, value: string): unknown {
  if (schema.type === 'integer') return /^[0-9]{1,16}$/.test(value) ? Number(value) : value
  if (schema.type === 'number')
    return /^[0-9]{1,6}(\.[0-9]{1,6})?$/.test(value) ? Number(value) : value
  if (schema.type === 'boolean') {
    const word = value.toLowerCase()
    if (word === 'true' || word === '1') return true
    if (word === 'false' || word === '0') return false
  }
  return value
}

// TypeBox says "Expected union value" and "Expected integer"; an operator needs the allowed values.
function describeProblem(schema: TSchema, fallback: string): string {
  if (schema.type === 'integer')
    return `must be a whole number from ${schema.minimum} to ${schema.maximum}`
  if (schema.type === 'number')
    return `must be a decimal number from ${schema.minimum} to ${schema.maximum}`
  if (schema.type === 'boolean') return 'must be true or false'
  if (Array.isArray(schema.anyOf))
    return `must be one of ${schema.anyOf.map((s: TSchema) => s.const).join(', ')}`
  return fallback
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
      randomPageCost: env.DATABASE_RANDOM_PAGE_COST,
    },
    jwtSecret: env.JWT_SECRET,
    accessTokenTtl: env.ACCESS_TOKEN_TTL,
    refreshTokenTtl: env.REFRESH_TOKEN_TTL,
    sessionCacheTtlMs: env.SESSION_CACHE_TTL_MS,
    passwordHashConcurrency: env.PASSWORD_HASH_CONCURRENCY,
    passwordHashQueueMax: env.PASSWORD_HASH_QUEUE_MAX,
    passwordHashWaitMs: env.PASSWORD_HASH_WAIT_MS,
    logLevel: env.LOG_LEVEL,
    corsOrigins: origins.includes('*') ? '*' : origins,
    trustProxy: env.TRUST_PROXY,
    maxBodyBytes: env.MAX_BODY_BYTES,
    maxJsonBodyBytes: env.MAX_JSON_BODY_BYTES,
    maxJsonDepth: env.MAX_JSON_DEPTH,
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    webhooks: {
      allowPrivate: env.WEBHOOK_ALLOW_PRIVATE,
      pollMs: env.WEBHOOK_POLL_MS,
      retryBaseMs: env.WEBHOOK_RETRY_BASE_MS,
      timeoutMs: env.WEBHOOK_TIMEOUT_MS,
    },
    uploadDir: env.UPLOAD_DIR ?? join(env.DATA_DIR, 'uploads'),
    maxUploadBytes: env.MAX_UPLOAD_BYTES ?? DEFAULT_MAX_UPLOAD_BYTES,
    realtime: {
      retentionHours: env.EVENTS_RETENTION_HOURS,
      retentionPerProject: env.EVENTS_RETENTION_PER_PROJECT,
      pruneIntervalMs: env.EVENTS_PRUNE_INTERVAL_MS,
      maxPayloadBytes: env.WS_MAX_PAYLOAD_BYTES,
      backpressureLimitBytes: env.WS_BACKPRESSURE_LIMIT_BYTES,
      idleTimeoutSeconds: env.WS_IDLE_TIMEOUT_S,
      maxSocketsPerUser: env.WS_MAX_SOCKETS_PER_USER,
      maxSubscriptions: env.WS_MAX_SUBSCRIPTIONS,
    },
    reusePort: env.REUSE_PORT,
    embeddedFsync: env.EMBEDDED_FSYNC,
    docsEnabled: env.DOCS_ENABLED,
    requestTimeoutMs: env.REQUEST_TIMEOUT_MS,
    metricsPort: env.METRICS_PORT,
    compressionMinBytes: env.COMPRESSION_MIN_BYTES,
    rateLimit: {
      requests: env.RATE_LIMIT_REQUESTS,
      authRequests: env.RATE_LIMIT_AUTH_REQUESTS,
      windowSeconds: env.RATE_LIMIT_WINDOW_S,
      maxKeys: env.RATE_LIMIT_MAX_KEYS,
    },
  }
}

/**
 * Bun answers a body over MAX_BODY_BYTES itself with a bare 413, so it must sit above
 * MAX_UPLOAD_BYTES plus the multipart framing for uploads to get problem+json. An unset
 * MAX_BODY_BYTES follows the upload limit; an unset MAX_UPLOAD_BYTES shrinks to fit a set
 * MAX_BODY_BYTES; two set values that do not fit are an error.
 */
function fitUploadLimits(env: Env, bodyGiven: boolean): string[] {
  const upload = env.MAX_UPLOAD_BYTES ?? DEFAULT_MAX_UPLOAD_BYTES
  if (!bodyGiven) {
    env.MAX_BODY_BYTES = Math.max(env.MAX_BODY_BYTES, upload + MULTIPART_FRAMING_BYTES)
    env.MAX_UPLOAD_BYTES = upload
    return []
  }
  if (env.MAX_UPLOAD_BYTES === undefined) {
    env.MAX_UPLOAD_BYTES = Math.min(upload, env.MAX_BODY_BYTES - MULTIPART_FRAMING_BYTES)
    if (env.MAX_UPLOAD_BYTES >= 1) return []
    return [`MAX_BODY_BYTES: must be above ${MULTIPART_FRAMING_BYTES} to leave room for uploads`]
  }
  if (env.MAX_BODY_BYTES >= env.MAX_UPLOAD_BYTES + MULTIPART_FRAMING_BYTES) return []
  return [
    `MAX_BODY_BYTES: must be at least MAX_UPLOAD_BYTES + ${MULTIPART_FRAMING_BYTES} (multipart framing), so uploads over their limit get a problem+json 413`,
  ]
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
