/**
 * What the server adds to a request, without sockets: the app's own handler (`app.handle`) for
 * GET /api/v1/tasks/:id and POST /api/v1/tasks, called one at a time in this process against a
 * real PostgreSQL, next to the same primary-key select (or single-row insert) made directly with
 * postgres.js; CPU microseconds per request of this process (process.cpuUsage), so a noisy
 * neighbour moves the figures less than req/s. The difference is routing, hooks, auth,
 * validation, serialisation and the extra statements.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bun bench/inprocess.ts \
 *     [--requests=5000] [--only=get|post] [--env=REQUEST_TIMEOUT_MS=0,RATE_LIMIT_REQUESTS=0]
 */
import { createApp } from '../src/app'
import { loadConfig } from '../src/config'
import { migrate, openDatabase } from '../src/db'
import { createLogger } from '../src/logger'
import { arg, benchDatabase } from './lib'

const REQUESTS = arg('requests', 5000)
// --only=get or --only=post: one of the two pairs (for a profile of just that one).
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length)
const extra = Object.fromEntries(
  (
    process.argv
      .find((a) => a.startsWith('--env='))
      ?.slice(6)
      .split(',') ?? []
  )
    .filter(Boolean)
    .map((pair) => pair.split('=') as [string, string]),
)
const benchDb = await benchDatabase('taskapi_inprocess', 'bench/inprocess.ts')
const log = createLogger('warn')
const config = loadConfig({
  DATABASE_URL: benchDb.url,
  JWT_SECRET: 'x'.repeat(48),
  LOG_LEVEL: 'warn',
  METRICS_PORT: '0',
  RATE_LIMIT_REQUESTS: '10000000',
  RATE_LIMIT_AUTH_REQUESTS: '0',
  ...extra,
})
const db = await openDatabase(config, log)
try {
  await migrate(db.sql)
  const app = await createApp({ config, db, log, jwtSecret: config.jwtSecret as string })
  const call = (method: string, path: string, token?: string, body?: unknown) =>
    app.handle(
      new Request(`http://localhost${path}`, {
        method,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
      }),
    )
  const registered = await call('POST', '/api/v1/auth/register', undefined, {
    email: 'bench@example.com',
    username: 'bench',
    password: 'correct horse battery',
  })
  const { access_token: token, user } = (await registered.json()) as {
    access_token: string
    user: { id: string }
  }
  const project = (await (
    await call('POST', '/api/v1/projects', token, { name: 'In process' })
  ).json()) as { id: string }
  const task = (await (
    await call('POST', '/api/v1/tasks', token, { title: 'first', project_id: project.id })
  ).json()) as { id: string }
  const cpu = async (label: string, run: () => Promise<unknown>) => {
    if (
      only &&
      !label.toLowerCase().includes(only === 'get' ? 'select' : 'insert') &&
      !label.startsWith(only.toUpperCase())
    )
      return Number.NaN
    for (let i = 0; i < 200; i++) await run()
    const before = process.cpuUsage()
    const start = performance.now()
    for (let i = 0; i < REQUESTS; i++) await run()
    const used = process.cpuUsage(before)
    const wall = performance.now() - start
    const us = (used.user + used.system) / REQUESTS
    console.log(
      `${label.padEnd(34)} ${us.toFixed(0).padStart(5)} µs CPU/request  ${((wall * 1000) / REQUESTS).toFixed(0).padStart(5)} µs wall`,
    )
    return us
  }
  const sql = db.sql
  const bareGet = await cpu(
    'bare select (postgres.js)',
    () =>
      sql`select id, title, description, project_id, assignee_id, created_by, status, priority, due_date, completed_at, estimated_hours, actual_hours, tags, version, created_at, updated_at from tasks where id = ${task.id}`,
  )
  const appGet = await cpu('GET /api/v1/tasks/:id (app.handle)', async () => {
    const res = await call('GET', `/api/v1/tasks/${task.id}`, token)
    if (res.status !== 200) throw new Error(`GET ${res.status}`)
    await res.text()
  })
  const bareInsert = await cpu(
    'bare insert (postgres.js)',
    () =>
      sql`insert into tasks (title, project_id, created_by) values ('bench', ${project.id}, ${user.id}) returning id, title, description, project_id, assignee_id, created_by, status, priority, due_date, completed_at, estimated_hours, actual_hours, tags, version, created_at, updated_at`,
  )
  const appPost = await cpu('POST /api/v1/tasks (app.handle)', async () => {
    const res = await call('POST', '/api/v1/tasks', token, {
      title: 'bench',
      project_id: project.id,
    })
    if (res.status !== 201) throw new Error(`POST ${res.status}`)
    await res.text()
  })
  console.log(
    `\napp minus bare, CPU per request: GET +${(appGet - bareGet).toFixed(0)} µs, POST +${(appPost - bareInsert).toFixed(0)} µs (${REQUESTS} requests each, one at a time, Bun ${Bun.version})`,
  )
} finally {
  await db.close()
  await benchDb.drop()
}
