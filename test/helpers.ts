import { randomBytes } from 'node:crypto'
import postgres from 'postgres'
import { type App, createApp } from '../src/app'
import { type Config, loadConfig } from '../src/config'
import { type Database, migrate, openDatabase } from '../src/db'
import { createLogger, type Fields, type Logger } from '../src/logger'

export const JWT_SECRET = randomBytes(48).toString('base64url')
const log = createLogger((process.env.TEST_LOG_LEVEL as 'silent' | undefined) ?? 'silent')

/** A config read through the real loader, for tests. */
export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    JWT_SECRET,
    DATABASE_URL: process.env.DATABASE_URL,
    PASSWORD_HASH_CONCURRENCY: '4',
    // A loaded CI machine must not turn slow hashing into 503s; the queue's own tests lower it.
    PASSWORD_HASH_WAIT_MS: '60000',
    // Test files sign in far more often than a person would; the rate-limit tests lower these.
    RATE_LIMIT_REQUESTS: '1000000',
    RATE_LIMIT_AUTH_REQUESTS: '1000000',
    ...env,
  })
}

// One migrated embedded database per test process; each test file starts from a copy of it.
const templateKey = Symbol.for('taskapi.test.embeddedTemplate')
type TemplateHolder = { [templateKey]?: Promise<Blob> }

function embeddedTemplate(config: Config): Promise<Blob> {
  const holder = globalThis as TemplateHolder
  holder[templateKey] ??= (async () => {
    const db = await openDatabase(config, log, {})
    await migrate(db.sql)
    const dump = await (db.pglite as NonNullable<Database['pglite']>).dumpDataDir('none')
    await db.close()
    return dump
  })()
  return holder[templateKey]
}

/**
 * A clean, migrated database for one test file: a copy of the embedded template, or a new
 * database on the PostgreSQL server of DATABASE_URL, dropped again by close().
 */
export async function freshDatabase(config: Config): Promise<Database> {
  if (!config.databaseUrl) {
    const db = await openDatabase(config, log, { loadDataDir: await embeddedTemplate(config) })
    return db
  }
  const scratch = await scratchDatabase(config.databaseUrl)
  const db = await openDatabase({ ...config, databaseUrl: scratch.url }, log)
  await migrate(db.sql)
  return {
    ...db,
    async close() {
      await db.close()
      await scratch.drop()
    },
  }
}

/** A new, empty database on the server of `serverUrl`; drop() removes it (closing its clients). */
export async function scratchDatabase(serverUrl: string) {
  const name = `taskapi_test_${process.pid}_${randomBytes(4).toString('hex')}`
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} })
  await admin`create database ${admin(name)}`
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    async drop() {
      await admin`drop database if exists ${admin(name)} with (force)`
      await admin.end()
    },
  }
}

export type TestServer = {
  url: string
  app: App
  db: Database
  config: Config
  /** fetch() against the server; a JSON body is serialised, `token` becomes a bearer header. */
  request(method: string, path: string, init?: RequestOptions): Promise<TestResponse>
  close(): Promise<void>
}

type RequestOptions = { body?: unknown; token?: string; headers?: Record<string, string> }
// biome-ignore lint/suspicious/noExplicitAny: response bodies are inspected freely in assertions
export type TestResponse = { status: number; headers: Headers; body: any; text: string }

/** Starts the real app on a random loopback port over a fresh database. */
export async function startServer(
  env: Record<string, string> = {},
  logger: Logger = log,
): Promise<TestServer> {
  const config = testConfig(env)
  const db = await freshDatabase(config)
  const app = await createApp({ config, db, log: logger, jwtSecret: config.jwtSecret as string })
  app.listen({ hostname: '127.0.0.1', port: 0, maxRequestBodySize: config.maxBodyBytes })
  const url = `http://127.0.0.1:${app.server?.port}`
  return {
    url,
    app,
    db,
    config,
    async request(method, path, init = {}) {
      const headers: Record<string, string> = { ...init.headers }
      if (init.token) headers.authorization = `Bearer ${init.token}`
      let body: string | undefined
      if (init.body !== undefined) {
        body = typeof init.body === 'string' ? init.body : JSON.stringify(init.body)
        headers['content-type'] ??= 'application/json'
      }
      const res = await fetch(url + path, { method, headers, body })
      const text = await res.text()
      let parsed: unknown
      try {
        parsed = text ? JSON.parse(text) : undefined
      } catch {
        parsed = undefined
      }
      return { status: res.status, headers: res.headers, body: parsed, text }
    },
    async close() {
      await app.stop(true)
      await db.close()
    },
  }
}

export type Peer = { url: string; app: App; db: Database; close(): Promise<void> }

/** The URL of the PostgreSQL database a test server runs on (PostgreSQL runs only). */
export async function databaseUrlOf(server: TestServer): Promise<string> {
  const [row] = await server.db.sql<{ name: string }[]>`select current_database() as name`
  const url = new URL(process.env.DATABASE_URL as string)
  url.pathname = `/${row?.name}`
  return url.toString()
}

/**
 * A second instance of the app on the same PostgreSQL database as `first`, with its own pool and
 * LISTEN connection, as another process would be.
 */
export async function startPeer(
  first: TestServer,
  env: Record<string, string> = {},
): Promise<Peer> {
  const config = testConfig({ ...env, DATABASE_URL: await databaseUrlOf(first) })
  const db = await openDatabase(config, log)
  const app = await createApp({ config, db, log, jwtSecret: config.jwtSecret as string })
  app.listen({ hostname: '127.0.0.1', port: 0 })
  return {
    url: `http://127.0.0.1:${app.server?.port}`,
    app,
    db,
    async close() {
      await app.stop(true)
      await db.close()
    },
  }
}

let counter = 0
/** Registers a new user with unique email and username; returns the tokens and credentials. */
export async function registerUser(server: TestServer, overrides: Record<string, unknown> = {}) {
  counter += 1
  const tag = `${Date.now().toString(36)}${counter}${randomBytes(2).toString('hex')}`
  const input = {
    email: `user_${tag}@example.com`,
    username: `user_${tag}`,
    password: 'correct horse battery',
    ...overrides,
  }
  const res = await server.request('POST', '/api/v1/auth/register', { body: input })
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${res.text}`)
  return {
    input,
    id: res.body.user.id as string,
    access: res.body.access_token as string,
    refresh: res.body.refresh_token as string,
    body: res.body,
  }
}

/**
 * POST /api/v1/auth/register as `name` (email `<name>@example.com`) to a server process at `url`
 * (tests that spawn the server have no TestServer); the raw response, not checked.
 */
export function registerAt(url: string, name: string) {
  return fetch(`${url}/api/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: `${name}@example.com`, username: name, password: 'password123' }),
  })
}

/** Decodes a JWT's parts without verifying it (tests inspect what the server issued). */
export function decodeJwt(token: string) {
  const [header, payload] = token.split('.')
  const decode = (part: string | undefined) =>
    JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8'))
  return { header: decode(header), payload: decode(payload) }
}

/** A problem+json answer: the status, the media type and the RFC 9457 members. */
export function expectProblemShape(res: TestResponse, status: number) {
  const ok =
    res.status === status &&
    (res.headers.get('content-type') ?? '').startsWith('application/problem+json') &&
    res.body?.status === status &&
    typeof res.body?.title === 'string' &&
    typeof res.body?.request_id === 'string' &&
    res.body?.request_id === res.headers.get('x-request-id')
  if (!ok) throw new Error(`expected a ${status} problem, got ${res.status} ${res.text}`)
}

/** A logger that keeps every line, to assert what the server logged. */
export function captureLogger() {
  const lines: ({ level: string; msg: string } & Fields)[] = []
  const keep = (level: string) => (msg: string, fields?: Fields) => {
    lines.push({ level, msg, ...fields })
  }
  const logger: Logger = {
    debug: keep('debug'),
    info: keep('info'),
    warn: keep('warn'),
    error: keep('error'),
  }
  return { logger, lines }
}

/** Polls until `find` returns something (log lines are written after the response is sent). */
export async function eventually<T>(find: () => T | undefined, ms = 2_000): Promise<T | undefined> {
  const until = Date.now() + ms
  for (;;) {
    const found = find()
    if (found !== undefined || Date.now() > until) return found
    await Bun.sleep(10)
  }
}
