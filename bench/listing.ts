/**
 * `bun bench/listing.ts`: GET /api/v1/tasks at scale, for one client, on a real PostgreSQL.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bun bench/listing.ts \
 *     [--tasks=1000000] [--requests=60] [--explain=1] [--reseed=0]
 *
 * Seeds (bench/seed.ts) a kept database, `taskapi_listing`, once; a later run reuses it (and
 * applies any new migration to it) unless `--reseed=1`. It then starts the server on it, logs in
 * as a developer who is a member of 20 projects, and sends REQUESTS sequential requests per
 * scenario: the caller's tasks with status in two values and one priority, 20 rows, newest first;
 * the same with a ranked search for terms from rare to very common (a fifth of all tasks); and a
 * search with no other filter. Each scenario cycles over several filter values and terms.
 * Then a search alone through each of the two shapes of list-queries.ts (`ListShape`), whichever
 * listShape would choose, per term class: the figures behind TERM_FIRST_BELOW.
 * It prints p50/p99 per scenario, the ratio to GET /health measured in the same run, and the
 * same filters' SQL alone (the query functions called directly, as the service calls them), then
 * `explain (analyze, buffers)` of the page and count queries, built by the functions the server
 * runs, for the slowest cases.
 */
import { join } from 'node:path'
import postgres from 'postgres'
import { migrate } from '../src/db'
import {
  countTasks,
  countTasksQuery,
  type ListShape,
  listShape,
  listTasks,
  type TaskFilter,
  type TaskOrder,
} from '../src/modules/tasks/list-queries'
import { appBenchEnv, arg, freePort, healthy, quantile } from './lib'
import { type SeedResult, seedDataset } from './seed'

const TASKS = arg('tasks', 1_000_000)
const REQUESTS = arg('requests', 60)
const DB_NAME = 'taskapi_listing'

type Meta = {
  tasks: number
  password: string
  user: { id: string; email: string }
  terms: SeedResult['terms']
}

const serverUrl = process.env.DATABASE_URL
if (!serverUrl) {
  console.error('bench/listing.ts needs DATABASE_URL (a PostgreSQL server)')
  process.exit(1)
}
const admin = postgres(serverUrl, { max: 1, onnotice: () => {} })
const url = new URL(serverUrl)
url.pathname = `/${DB_NAME}`
const sql = postgres(url.toString(), { max: 2, onnotice: () => {} })

/** The kept dataset's description, or undefined when the database must be (re)seeded. */
async function existing(): Promise<Meta | undefined> {
  if (arg('reseed', 0) === 1) return undefined
  const [db] = await admin`select 1 from pg_database where datname = ${DB_NAME}`
  if (!db) return undefined
  const [row] = await sql<{ meta: Meta }[]>`
    select meta from bench_listing_seed where (meta ->> 'tasks')::int = ${TASKS}
  `.catch(() => [])
  return row?.meta
}

let meta = await existing()
await sql.end()
if (!meta) {
  await admin`drop database if exists ${admin(DB_NAME)} with (force)`
  await admin`create database ${admin(DB_NAME)}`
  const seeding = postgres(url.toString(), { max: 2, onnotice: () => {} })
  await migrate(seeding)
  const seeded = await seedDataset(seeding, {
    users: 100,
    projects: 200,
    tasks: TASKS,
    log: (line) => console.log(line),
  })
  // A developer (users[0] is the admin) in about 20 projects.
  const user = seeded.users[1] as { id: string; email: string }
  meta = { tasks: TASKS, password: seeded.password, user, terms: seeded.terms }
  await seeding`create table bench_listing_seed (meta jsonb not null)`
  await seeding`insert into bench_listing_seed (meta) values (${seeding.json(meta)})`
  await seeding.end()
}
await admin.end()
const sqlNow = postgres(url.toString(), { max: 2, onnotice: () => {} })
const applied = await migrate(sqlNow)
if (applied.length > 0) {
  console.log(`applied ${applied.join(', ')}`)
  await sqlNow`vacuum analyze tasks`
}
const { user, password, terms } = meta
const [{ projects } = { projects: 0 }] = await sqlNow<{ projects: number }[]>`
  select count(*)::int as projects from project_members where user_id = ${user.id}
`

const port = freePort()
const server = Bun.spawn(['bun', join(import.meta.dir, '..', 'src', 'index.ts')], {
  env: { ...process.env, ...appBenchEnv(port, url.toString()) },
  stdout: 'ignore',
  stderr: 'inherit',
})
const base = `http://127.0.0.1:${port}`
try {
  await healthy(base)
  const login = await fetch(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: user.email, password }),
  })
  if (!login.ok) throw new Error(`login: ${login.status} ${await login.text()}`)
  const { access_token: token } = (await login.json()) as { access_token: string }
  const auth = { headers: { authorization: `Bearer ${token}` } }

  const filters = [
    'status=todo,in_progress&priority=high',
    'status=in_review,done&priority=low',
    'status=in_progress,in_review&priority=urgent',
    'status=todo,done&priority=medium',
  ]
  const searchOf = (words: string[]) => (i: number) =>
    `search=${encodeURIComponent(words[i % words.length] as string)}`
  type Scenario = { name: string; path: (i: number) => string }
  const withFilters = (name: string, words: string[]): Scenario => ({
    name: `2 filters + search ${name}`,
    path: (i) => `/api/v1/tasks?${filters[i % filters.length]}&${searchOf(words)(i)}`,
  })
  const scenarios: Scenario[] = [
    { name: 'GET /health (baseline)', path: () => '/health' },
    {
      name: '2 filters, newest first',
      path: (i) => `/api/v1/tasks?${filters[i % filters.length]}`,
    },
    withFilters('rare', terms.rare),
    withFilters('mid', terms.mid),
    withFilters('common', terms.common),
    withFilters('veryCommon', [terms.veryCommon]),
    { name: 'search only, rare', path: (i) => `/api/v1/tasks?${searchOf(terms.rare)(i)}` },
    { name: 'search only, mid', path: (i) => `/api/v1/tasks?${searchOf(terms.mid)(i)}` },
    { name: 'search only, common', path: (i) => `/api/v1/tasks?${searchOf(terms.common)(i)}` },
    {
      name: 'search only, veryCommon',
      path: (i) => `/api/v1/tasks?${searchOf([terms.veryCommon])(i)}`,
    },
  ]
  // The same filters straight through the query functions, as the service calls them (the page,
  // then the count when the page does not tell the total): the database's share of a request.
  const direct = postgres(url.toString(), { max: 1, onnotice: () => {} })
  async function sqlOnly(path: string) {
    const q = new URL(path, base).searchParams
    const search = q.get('search') ?? undefined
    const filter: TaskFilter = {
      userId: user.id,
      statuses: q.get('status')?.split(','),
      priorities: q.get('priority')?.split(','),
      search,
    }
    const order: TaskOrder = search
      ? { key: 'rank', descending: true }
      : { key: 'created_at', descending: true }
    const shape = await listShape(direct, filter)
    const rows = await listTasks(direct, filter, order, { limit: 20, offset: 0 }, shape)
    if (rows.length > 20 && rows[0]?.total == null) await countTasks(direct, filter, shape)
  }
  type Row = { name: string; p50: number; p99: number; max: number; errors: number }
  const results: (Row & { sql?: { p50: number; p99: number } })[] = []
  for (const s of scenarios) {
    for (let i = 0; i < 5; i++) await (await fetch(base + s.path(i), auth)).arrayBuffer()
    const latencies: number[] = []
    let errors = 0
    for (let i = 0; i < REQUESTS; i++) {
      const started = performance.now()
      const res = await fetch(base + s.path(i), auth)
      await res.arrayBuffer()
      latencies.push(performance.now() - started)
      if (!res.ok) errors++
    }
    latencies.sort((a, b) => a - b)
    let sqlTimes: { p50: number; p99: number } | undefined
    if (s.path(0).startsWith('/api/')) {
      for (let i = 0; i < 5; i++) await sqlOnly(s.path(i))
      const times: number[] = []
      for (let i = 0; i < REQUESTS; i++) {
        const started = performance.now()
        await sqlOnly(s.path(i))
        times.push(performance.now() - started)
      }
      times.sort((a, b) => a - b)
      sqlTimes = { p50: quantile(times, 0.5), p99: quantile(times, 0.99) }
    }
    results.push({
      name: s.name,
      p50: quantile(latencies, 0.5),
      p99: quantile(latencies, 0.99),
      max: latencies[latencies.length - 1] ?? 0,
      errors,
      sql: sqlTimes,
    })
  }
  // A search alone, ranked, through each shape whatever listShape would pick (its choice in
  // brackets): where term first pays and where it does not (TERM_FIRST_BELOW).
  const shapes: { name: string; p50: number; p99: number; chosen: string }[] = []
  for (const [name, words] of [
    ['rare', terms.rare],
    ['mid', terms.mid],
    ['common', terms.common],
  ] as const)
    for (const shape of ['partitions', 'term first'] as ListShape[]) {
      const times: number[] = []
      const chosen = new Set<string>()
      for (let i = 0; i < REQUESTS; i++) {
        const filter: TaskFilter = { userId: user.id, search: words[i % words.length] as string }
        if (i < words.length) chosen.add(await listShape(direct, filter))
        const started = performance.now()
        await listTasks(
          direct,
          filter,
          { key: 'rank', descending: true },
          { limit: 20, offset: 0 },
          shape,
        )
        times.push(performance.now() - started)
      }
      times.sort((a, b) => a - b)
      shapes.push({
        name: `search only, ${name}, ${shape}`,
        p50: quantile(times, 0.5),
        p99: quantile(times, 0.99),
        chosen: [...chosen].join(' or '),
      })
    }
  await direct.end()
  const version = (await sqlNow<{ v: string }[]>`select current_setting('server_version') as v`)[0]
    ?.v
  console.log(
    `\n${TASKS.toLocaleString('en-US')} tasks, a user in ${projects} projects, one client, ${REQUESTS} requests per scenario, PostgreSQL ${version}`,
  )
  console.log(
    `terms: veryCommon ${terms.veryCommon}; common ${terms.common.join(',')}; mid ${terms.mid.join(',')}; rare ${terms.rare.join(',')}`,
  )
  const health = results[0]?.p50 ?? 1
  console.log(
    'scenario                               p50 ms   p99 ms   max ms  p50/health  errors   SQL p50   SQL p99',
  )
  for (const r of results)
    console.log(
      `${r.name.padEnd(36)} ${r.p50.toFixed(1).padStart(7)}  ${r.p99.toFixed(1).padStart(7)}  ${r.max.toFixed(1).padStart(7)}  ${(r.p50 / health).toFixed(1).padStart(10)}  ${String(r.errors).padStart(6)}  ${(r.sql ? r.sql.p50.toFixed(1) : '-').padStart(8)}  ${(r.sql ? r.sql.p99.toFixed(1) : '-').padStart(8)}`,
    )
  console.log(
    '(SQL: the page query, and the count when the page does not tell the total, called directly)',
  )
  console.log('\nthe page query alone, by shape         p50 ms   p99 ms  (listShape picks)')
  for (const r of shapes)
    console.log(
      `${r.name.padEnd(38)} ${r.p50.toFixed(1).padStart(6)}  ${r.p99.toFixed(1).padStart(7)}  (${r.chosen})`,
    )

  if (arg('explain', 1) === 1) {
    const page = { limit: 20, offset: 0 }
    const newest: TaskOrder = { key: 'created_at', descending: true }
    const rank: TaskOrder = { key: 'rank', descending: true }
    const filtered: TaskFilter = {
      userId: user.id,
      statuses: ['todo', 'in_progress'],
      priorities: ['high'],
    }
    const plans: [string, ReturnType<typeof listTasks> | ReturnType<typeof countTasksQuery>][] = [
      ['2 filters, newest first: page', listTasks(sqlNow, filtered, newest, page)],
      ['2 filters: count', countTasksQuery(sqlNow, filtered)],
      [
        `2 filters + search ${terms.veryCommon}: page`,
        listTasks(sqlNow, { ...filtered, search: terms.veryCommon }, rank, page),
      ],
      [
        `2 filters + search ${terms.veryCommon}: count`,
        countTasksQuery(sqlNow, { ...filtered, search: terms.veryCommon }),
      ],
      [
        `search ${terms.veryCommon}: page`,
        listTasks(sqlNow, { userId: user.id, search: terms.veryCommon }, rank, page),
      ],
      [
        `search ${terms.rare[0]}: page, term first`,
        listTasks(
          sqlNow,
          { userId: user.id, search: terms.rare[0] as string },
          rank,
          page,
          'term first',
        ),
      ],
      [
        `search ${terms.veryCommon}: count`,
        countTasksQuery(sqlNow, { userId: user.id, search: terms.veryCommon }),
      ],
    ]
    for (const [name, query] of plans) {
      const plan = await sqlNow<{ 'QUERY PLAN': string }[]>`explain (analyze, buffers) ${query}`
      console.log(`\n${name}\n${plan.map((r) => r['QUERY PLAN']).join('\n')}`)
    }
  }
} finally {
  server.kill('SIGTERM')
  await server.exited
  await sqlNow.end({ timeout: 5 })
}
