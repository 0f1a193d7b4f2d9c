/**
 * `bun run bench:tasks`: the task read paths on a real PostgreSQL, over one project of 100,000
 * tasks, as ratios to GET /health from the same run (this machine is shared and noisy).
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bun bench/tasks.ts \
 *     [--tasks=100000] [--seconds=5] [--connections=16]
 *
 * DATABASE_URL names the server; the bench creates (and at the end drops) its own database,
 * `taskapi_bench`, seeds it with `unnest` batches, starts the server as its own process and a
 * bare Bun.serve doing the same primary-key read with postgres.js (the floor for GET /tasks/:id),
 * loads each scenario with CONNECTIONS loops for SECONDS, and prints the plans of the list and
 * search queries (`explain (analyze, buffers)`).
 */
import { join } from 'node:path'
import postgres from 'postgres'
import { migrate } from '../src/db'
import {
  type After,
  countTasksQuery,
  listTasks,
  type TaskFilter,
  type TaskOrder,
} from '../src/modules/tasks/list-queries'
import {
  appBenchEnv,
  arg,
  benchDatabase,
  freePort,
  healthy,
  listening,
  load as loadFor,
  register,
} from './lib'

const TASKS = arg('tasks', 100_000)
const SECONDS = arg('seconds', 5)
const CONNECTIONS = arg('connections', 16)
const load = (name: string, request: () => Promise<Response>) =>
  loadFor(name, request, { seconds: SECONDS, connections: CONNECTIONS })
const BATCH = 10_000
const DB_NAME = 'taskapi_bench'
// Titles and descriptions are drawn from this vocabulary, so a two-word search matches a few %.
const WORDS =
  'api auth backend bug cache client config cron css database deploy design docs email error export feature fix form frontend import index invoice job layout login logs metrics migration mobile monitor network notification onboarding page payment performance permission queue refactor release report request review schema search security server session settings signup storage style sync test timeout token upload user validation webhook'.split(
    ' ',
  )
// A cheap integer hash (one round of xorshift-multiply), so word choices look random but repeat.
const mix = (a: number, b: number) => {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35)
  h ^= h >>> 15
  h = Math.imul(h, 0x2c1b3c6d)
  return (h ^ (h >>> 12)) >>> 0
}
// One word in five from the vocabulary, the others filler (`k123`): a known word is in about
// 10% of tasks, two given words together in about 1%.
const words = (n: number, seed: number) =>
  Array.from({ length: n }, (_, i) => {
    const h = mix(seed, i)
    return h % 5 === 0 ? WORDS[(h >>> 3) % WORDS.length] : `k${(h >>> 3) % 3000}`
  }).join(' ')

const benchDb = await benchDatabase(DB_NAME, 'bench:tasks')
const sql = postgres(benchDb.url, { max: 4, onnotice: () => {} })
await migrate(sql)

const processes: ReturnType<typeof Bun.spawn>[] = []
try {
  // Request logging stays off (warn), as in the bare server: a free port is picked beforehand.
  const port = freePort()
  spawn(
    ['bun', join(import.meta.dir, '..', 'src', 'index.ts')],
    appBenchEnv(port, benchDb.url, { DATABASE_POOL_MAX: '10' }),
  )
  const base = `http://127.0.0.1:${port}`
  await healthy(base)
  // The first account is the admin; the bench reads as an ordinary developer.
  await register(base, 'bench-admin')
  const { token, userId } = await register(base, 'bench')
  await seed(userId)

  const bare = spawn(['bun', join(import.meta.dir, 'bare-select.ts')], {
    DATABASE_URL: benchDb.url,
  })
  const bareBase = await listening(
    bare.stdout as ReadableStream<Uint8Array>,
    /bare listening on (\d+)/,
  )

  const ids = (await sql<{ id: string }[]>`select id from tasks order by random() limit 1000`).map(
    (r) => r.id,
  )
  let next = 0
  const pick = () => ids[next++ % ids.length]
  const auth = { headers: { authorization: `Bearer ${token}` } }
  const twoFilters = '/api/v1/tasks?status=in_progress&priority=high'
  const search = `/api/v1/tasks?search=${encodeURIComponent('database migration')}`
  await expectOk(fetch(`${base}/api/v1/tasks/${pick()}`, auth))
  await expectOk(fetch(base + twoFilters, auth))
  await expectOk(fetch(base + search, auth))
  await expectOk(fetch(`${bareBase}/${pick()}`))

  const rows = [
    await load('GET /health (baseline)', () => fetch(`${base}/health`)),
    await load('bare Bun.serve pk select', () => fetch(`${bareBase}/${pick()}`)),
    await load('GET /tasks/:id', () => fetch(`${base}/api/v1/tasks/${pick()}`, auth)),
    await load('GET /tasks status+priority', () => fetch(base + twoFilters, auth)),
    await load('GET /tasks?search=', () => fetch(base + search, auth)),
  ]
  const baseline = rows[0]?.rps ?? 1
  const floor = rows[1]?.rps ?? 1
  console.log(
    `\n${TASKS} tasks, ${CONNECTIONS} connections, ${SECONDS} s each, PostgreSQL ${(await sql<{ v: string }[]>`select current_setting('server_version') as v`)[0]?.v}`,
  )
  console.log('scenario                       req/s  /health    /bare   p50 ms   p99 ms  errors')
  for (const r of rows)
    console.log(
      `${r.name.padEnd(28)} ${r.rps.toFixed(0).padStart(6)}  ${(r.rps / baseline).toFixed(3).padStart(6)}  ${(r.rps / floor).toFixed(3).padStart(6)}  ${r.p50.toFixed(1).padStart(7)}  ${r.p99.toFixed(1).padStart(7)}  ${String(r.errors).padStart(6)}`,
    )
  await explainPlans(userId)
} finally {
  for (const p of processes) p.kill('SIGTERM')
  await Promise.all(processes.map((p) => p.exited))
  await sql.end({ timeout: 5 })
  await benchDb.drop()
}

function spawn(cmd: string[], env: Record<string, string>) {
  const child = Bun.spawn(cmd, {
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '0', ...env },
    stdout: 'pipe',
    stderr: 'inherit',
  })
  processes.push(child)
  return child
}

/** One project of TASKS tasks in batches of BATCH rows, each batch one `unnest` insert. */
async function seed(userId: string) {
  const [project] = await sql<{ id: string }[]>`
    insert into projects (name, owner_id) values ('Bench', ${userId}) returning id
  `
  if (!project) throw new Error('no project')
  await sql`insert into project_members (project_id, user_id, role) values (${project.id}, ${userId}, 'owner')`
  const statuses = ['todo', 'in_progress', 'in_review', 'done', 'cancelled']
  const priorities = ['low', 'medium', 'high', 'urgent']
  const started = performance.now()
  for (let done = 0; done < TASKS; done += BATCH) {
    const n = Math.min(BATCH, TASKS - done)
    const rows = Array.from({ length: n }, (_, j) => done + j)
    const random = (i: number, mod: number) =>
      Math.floor(Math.abs(Math.sin(i * 12.9898) * 43_758.5453)) % mod
    await sql`
      insert into tasks (title, description, project_id, created_by, status, priority, tags, created_at)
      select title, description, ${project.id}, ${userId}, status, priority,
        string_to_array(tags, ','), now() - make_interval(secs => age)
      from unnest(
        ${rows.map((i) => words(4 + random(i, 5), i))}::text[],
        ${rows.map((i) => words(20 + random(i, 20), i + 1))}::text[],
        ${rows.map((i) => statuses[random(i + 3, 5)] as string)}::text[],
        ${rows.map((i) => priorities[random(i + 5, 4)] as string)}::text[],
        ${rows.map((i) => `t${random(i, 30)},t${random(i + 1, 30)}`)}::text[],
        ${rows.map((i) => TASKS - i)}::int[]
      ) as s(title, description, status, priority, tags, age)
    `
    process.stdout.write(
      `\rseeded ${done + n} / ${TASKS} tasks (${((performance.now() - started) / 1000).toFixed(1)} s)`,
    )
  }
  // What autovacuum would have done by now: statistics and the visibility map.
  await sql`vacuum analyze tasks`
  await sql`vacuum analyze project_members`
  process.stdout.write('\n')
  return project.id
}

/** The plans of the two list queries, built by the same functions the server runs. */
async function explainPlans(userId: string) {
  const firstPage = { limit: 20, offset: 0 } as { limit: number; offset: number; after?: After }
  const newest: TaskOrder = { key: 'created_at', descending: true }
  const filtered: TaskFilter = { userId, statuses: ['in_progress'], priorities: ['high'] }
  const searched: TaskFilter = { userId, search: 'database migration' }
  const plans: [string, ReturnType<typeof listTasks> | ReturnType<typeof countTasksQuery>][] = [
    [
      'GET /tasks?status=in_progress&priority=high: page',
      listTasks(sql, filtered, newest, firstPage),
    ],
    ['GET /tasks?status=in_progress&priority=high: total', countTasksQuery(sql, filtered)],
    [
      'GET /tasks?search=database migration: page',
      listTasks(sql, searched, { key: 'rank', descending: true }, firstPage),
    ],
    ['GET /tasks?search=database migration: total', countTasksQuery(sql, searched)],
  ]
  for (const [name, query] of plans) {
    const plan = await sql<{ 'QUERY PLAN': string }[]>`explain (analyze, buffers) ${query}`
    console.log(`\n${name}\n${plan.map((r) => r['QUERY PLAN']).join('\n')}`)
  }
}

async function expectOk(response: Promise<Response>) {
  const res = await response
  if (!res.ok) throw new Error(`warm-up answered ${res.status}: ${await res.text()}`)
  await res.arrayBuffer()
}
