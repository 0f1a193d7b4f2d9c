/**
 * `bun run bench`: the server under load on a real PostgreSQL with a realistic dataset, every
 * figure also a ratio to a bare Bun.serve + postgres.js baseline measured in the same run.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bun run bench -- \
 *     [--users=100] [--projects=200] [--tasks=1000000] [--comments=N] \
 *     [--seconds=10] [--warmup=2] [--connections=16] [--login-connections=4] \
 *     [--clients=16] [--latency-seconds=15] [--binary=dist/taskapi] [--keep] [--reuse] [--no-write]
 *
 * 1. Seeds its own database on that server with bench/seed.ts: `taskapi_bench_<users>_<projects>
 *    _<tasks>[_<comments>]`, dropped at the end unless --keep. With --reuse a kept database of
 *    that size is used as it is, without seeding (the seed's users, password and terms are in
 *    the database's comment, written once seeding finished; a database without it is seeded
 *    again); --reuse implies --keep. A kept database also keeps the tasks earlier runs wrote; a
 *    reused one is vacuumed and analyzed first (earlier runs' pages are otherwise read from the
 *    table by the listing's index-only scans, whether autovacuum is on or not).
 * 2. Starts the server as its own process: the compiled binary of --binary, else
 *    `bun src/index.ts` (LOG_LEVEL=warn, rate limits off: the load comes from one address),
 *    and the two bare baselines, bench/bare-select.ts and bench/bare-insert.ts.
 * 3. Logs in --clients seeded developers; each request is made as one of them, picked at
 *    random, on a task or project that user can see (task ids from a sample of the table).
 * 4. Listing latency for ONE client (1 connection, --latency-seconds each): the two filters
 *    without a search, then with a search over the seed's terms (rare, mid, common, very common
 *    in turn), also broken down by term frequency.
 * 5. Throughput: each scenario with autocannon over loopback, --warmup seconds, then --seconds
 *    measured, with --connections connections (login: --login-connections). Latencies are
 *    recorded per response, whatever its status; errors are non-2xx answers plus socket errors
 *    and timeouts; the VmRSS of the process under load is sampled every 100 ms. Each baseline
 *    runs twice, before and after the scenarios it is the ceiling for. After each load the bench
 *    waits until no query runs on its database, so abandoned requests do not weigh on the next.
 *    Per scenario it also takes the CPU time per answered request of the process under load, of
 *    all PostgreSQL processes and of this process (autocannon), from /proc.
 * 6. After the load: polls the server's VmRSS every second for up to 60 s until it is under
 *    80 MB.
 * 7. Writes the tables and the issue's targets to bench/results/<date>-<short sha>.md and prints
 *    them.
 */
import { execSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join, resolve } from 'node:path'
import autocannon from 'autocannon'
import postgres from 'postgres'
import { migrate } from '../src/db'
import {
  appBenchEnv,
  arg,
  cpuSeconds,
  freePort,
  healthy,
  keptBenchDatabase,
  listening,
  memoryMiB,
  postgresCpuSeconds,
  quantile,
} from './lib'
import { type SeedResult, seedDataset } from './seed'

const argv = process.argv.slice(2)
const flag = (name: string) => argv.includes(`--${name}`)
const text = (name: string) =>
  argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? undefined

const USERS = arg('users', 100)
const PROJECTS = arg('projects', 200)
const TASKS = arg('tasks', 1_000_000)
const COMMENTS = text('comments') === undefined ? undefined : arg('comments', 0)
const SECONDS = arg('seconds', 10)
const WARMUP = arg('warmup', 2)
const CONNECTIONS = arg('connections', 16)
const CLIENTS = Math.min(arg('clients', 16), USERS - 1)
const LOGIN_CONNECTIONS = arg('login-connections', 4)
const LATENCY_SECONDS = arg('latency-seconds', 15)
const BINARY = text('binary')
const REUSE = flag('reuse')
const KEEP = REUSE || flag('keep')
const WRITES = !flag('no-write')
const RSS_SETTLED_MIB = 80
const RSS_WAIT_S = 60

const ROOT = resolve(import.meta.dir, '..')
const startedAt = new Date()
const loadAtStart = os.loadavg()
const started = performance.now()
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0)} s`
const say = (line: string) => console.log(`[${elapsed()}] ${line}`)

// --- the database ---------------------------------------------------------------------------

const dbName = `taskapi_bench_${USERS}_${PROJECTS}_${TASKS}${COMMENTS === undefined ? '' : `_${COMMENTS}`}`
let db = await keptBenchDatabase(dbName, 'bun run bench', { fresh: !REUSE })
// A kept database without the seed's note was left half-seeded: start it again.
if (REUSE && !db.created && !db.comment) {
  await db.end()
  db = await keptBenchDatabase(dbName, 'bun run bench', { fresh: true })
}
const sql = postgres(db.url, { max: 4, onnotice: () => {} })
const children: { name: string; process: ReturnType<typeof Bun.spawn> }[] = []
let cleaned = false
/** What the first request of a broken scenario answered (see check()). */
const brokenScenarios: string[] = []
async function cleanUp() {
  if (cleaned) return
  cleaned = true
  for (const child of children) child.process.kill('SIGTERM')
  await Promise.all(children.map((c) => c.process.exited))
  await sql.end({ timeout: 5 })
  if (!KEEP) await db.drop()
  await db.end()
}
process.on('SIGINT', () => {
  void cleanUp().then(() => process.exit(130))
})

try {
  await migrate(sql)
  const seed = await seedOrReuse()
  const pgVersion = (await sql<{ v: string }[]>`select current_setting('server_version') as v`)[0]
    ?.v
  const taskCount = Number(
    (await sql<{ n: string }[]>`select count(*)::text as n from tasks`)[0]?.n ?? 0,
  )

  // --- the processes under test ---------------------------------------------------------------
  say(`starting the server (${BINARY ? `binary ${BINARY}` : 'bun src/index.ts'})`)
  const port = freePort()
  const server = spawn(
    'server',
    BINARY ? [resolve(BINARY)] : ['bun', join(ROOT, 'src/index.ts')],
    appBenchEnv(port, db.url, { DATABASE_POOL_MAX: '10' }),
  )
  const base = `http://127.0.0.1:${port}`
  await healthy(base)
  const rssStarted = memoryMiB(server.pid).rss
  const bareSelect = spawn('bare-select', ['bun', join(import.meta.dir, 'bare-select.ts')], {
    DATABASE_URL: db.url,
  })
  const bareSelectBase = await listening(
    bareSelect.stdout as ReadableStream<Uint8Array>,
    /bare listening on (\d+)/,
  )
  const bareInsert = spawn('bare-insert', ['bun', join(import.meta.dir, 'bare-insert.ts')], {
    DATABASE_URL: db.url,
  })
  const bareInsertBase = await listening(
    bareInsert.stdout as ReadableStream<Uint8Array>,
    /bare listening on (\d+)/,
  )

  // --- who asks for what ----------------------------------------------------------------------
  const clients = await logIn(base, seed)
  const picks = await visibleTasks(seed, clients, taskCount)
  const one = <T>(list: readonly T[]) => list[Math.floor(Math.random() * list.length)] as T
  const anyClient = () => one(clients)
  const terms = [
    ...seed.terms.rare.map((t) => ({ term: t, kind: 'rare' })),
    ...seed.terms.mid.map((t) => ({ term: t, kind: 'mid' })),
    ...seed.terms.common.map((t) => ({ term: t, kind: 'common' })),
    { term: seed.terms.veryCommon, kind: 'very common' },
  ]
  const KINDS = ['rare', 'mid', 'common', 'very common']
  // A term of each frequency in turn, so the mix is a quarter of each whatever the list sizes.
  let kindTurn = 0
  const nextTerm = () => {
    const kind = KINDS[kindTurn++ % KINDS.length]
    return one(terms.filter((t) => t.kind === kind))
  }
  const TWO_FILTERS = 'status=todo,in_progress&priority=high&limit=20'
  const STATUSES = ['todo', 'in_progress', 'in_review', 'done', 'cancelled']
  const PRIORITIES = ['low', 'medium', 'high', 'urgent']
  const json = (c: Client) => ({
    authorization: `Bearer ${c.token}`,
    'content-type': 'application/json',
  })
  const newTask = (c: Client) => ({
    title: `bench task ${Math.random().toString(36).slice(2, 10)}`,
    description: 'written by bun run bench: a short description with a few words in it',
    project_id: one(c.projects),
    priority: one(PRIORITIES),
    tags: ['bench', one(['api', 'ui', 'db'])],
  })

  const requests = {
    getTask: (): Req => {
      const c = anyClient()
      return {
        method: 'GET',
        path: `/api/v1/tasks/${one(picks.get(c.id) ?? [])}`,
        headers: json(c),
      }
    },
    list: (): Req => {
      const c = anyClient()
      return { method: 'GET', path: `/api/v1/tasks?${TWO_FILTERS}`, headers: json(c) }
    },
    /** `?search=` alone, or with the two filters: a term of each frequency in turn. */
    search: (filtered = false): Req => {
      const c = anyClient()
      const term = nextTerm()
      const search = `search=${encodeURIComponent(term?.term ?? '')}`
      return {
        method: 'GET',
        path: `/api/v1/tasks?${filtered ? `${TWO_FILTERS}&` : 'limit=20&'}${search}`,
        headers: json(c),
        tag: term?.kind,
      }
    },
    create: (): Req => {
      const c = anyClient()
      return {
        method: 'POST',
        path: '/api/v1/tasks',
        headers: json(c),
        body: JSON.stringify(newTask(c)),
      }
    },
    status: (): Req => {
      const c = anyClient()
      return {
        method: 'PUT',
        path: `/api/v1/tasks/${one(picks.get(c.id) ?? [])}/status`,
        headers: json(c),
        body: JSON.stringify({ status: one(STATUSES) }),
      }
    },
    login: (): Req => {
      const c = anyClient()
      return {
        method: 'POST',
        path: '/api/v1/auth/login',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: c.email, password: seed.password }),
      }
    },
    mixed: (): Req => {
      // 80% reads (50 by id, 20 list with two filters, 10 search), 20% writes (10 create, 10
      // status).
      const r = Math.random() * 100
      if (r < 50) return requests.getTask()
      if (r < 70) return requests.list()
      if (r < 80) return requests.search()
      if (r < 90) return requests.create()
      return requests.status()
    },
    bareSelect: (): Req => {
      const c = anyClient()
      return { method: 'GET', path: `/${one(picks.get(c.id) ?? [])}`, headers: {} }
    },
    bareInsert: (): Req => {
      const c = anyClient()
      return {
        method: 'POST',
        path: '/',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...newTask(c), created_by: c.id }),
      }
    },
  }

  const rssIdle = memoryMiB(server.pid).rss
  let serverPeakDuringLoad = 0

  // --- one client -----------------------------------------------------------------------------
  const latencyRows: { name: string; run: Run; part?: boolean }[] = []
  for (const [name, next] of [
    ['two filters, no search', requests.list],
    ['two filters + search (term mix)', () => requests.search(true)],
  ] as const) {
    await check(base, next())
    say(`one client: ${name}, ${LATENCY_SECONDS} s`)
    await drive(base, next, { seconds: WARMUP, connections: 1, pid: server.pid })
    const run = await drive(base, next, {
      seconds: LATENCY_SECONDS,
      connections: 1,
      pid: server.pid,
    })
    serverPeakDuringLoad = Math.max(serverPeakDuringLoad, run.rssPeak)
    latencyRows.push({ name, run })
    for (const kind of KINDS) {
      const tagged = run.byTag.get(kind)
      if (tagged) latencyRows.push({ name: `… of which ${kind} terms`, run: tagged, part: true })
    }
    say(
      `  p50 ${run.p50.toFixed(2)} ms, p99 ${run.p99.toFixed(2)} ms, ${run.count} requests, ${run.errors} errors`,
    )
  }

  // --- throughput -----------------------------------------------------------------------------
  type Bare = 'bare select' | 'bare insert'
  type Scenario = {
    name: string
    base: string
    pid: number
    next: () => Req
    /** What the ratios of this row are to. */
    baseline?: Bare
    /** The baseline this row measures. */
    kind?: Bare
    write?: boolean
    /** Fewer than CONNECTIONS for login: its Argon2 hashes queue behind two slots. */
    connections?: number
  }
  const app = (name: string, next: () => Req, baseline: Bare, write = false): Scenario => ({
    name,
    base,
    pid: server.pid,
    next,
    baseline,
    write,
  })
  const bareSelectRun = (name: string): Scenario => ({
    name,
    base: bareSelectBase,
    pid: bareSelect.pid,
    next: requests.bareSelect,
    kind: 'bare select',
  })
  const bareInsertRun = (name: string): Scenario => ({
    name,
    base: bareInsertBase,
    pid: bareInsert.pid,
    next: requests.bareInsert,
    kind: 'bare insert',
    write: true,
  })
  // Each baseline runs twice, at both ends of the scenarios it is the ceiling for; login runs
  // last of the server's scenarios, because its Argon2 hashes (64 MiB each) raise the RSS.
  const scenarios: Scenario[] = [
    bareSelectRun('bare select (Bun.serve + postgres.js)'),
    app('GET /tasks/:id', requests.getTask, 'bare select'),
    app('GET /tasks two filters', requests.list, 'bare select'),
    app('GET /tasks?search= (term mix)', () => requests.search(), 'bare select'),
    bareInsertRun('bare insert (Bun.serve + postgres.js)'),
    app('POST /tasks', requests.create, 'bare insert', true),
    app('PUT /tasks/:id/status', requests.status, 'bare insert', true),
    app('mixed 80% read / 20% write', requests.mixed, 'bare select', true),
    bareInsertRun('bare insert, again'),
    { ...app('POST /auth/login', requests.login, 'bare select'), connections: LOGIN_CONNECTIONS },
    bareSelectRun('bare select, again'),
  ].filter((s) => WRITES || !s.write) as Scenario[]

  const rows: (Run & { scenario: Scenario })[] = []
  for (const scenario of scenarios) {
    const connections = scenario.connections ?? CONNECTIONS
    await check(scenario.base, scenario.next())
    say(`${scenario.name}: ${WARMUP} s warm-up, ${SECONDS} s measured, ${connections} connections`)
    await drive(scenario.base, scenario.next, { seconds: WARMUP, connections, pid: scenario.pid })
    const run = await drive(scenario.base, scenario.next, {
      seconds: SECONDS,
      connections,
      pid: scenario.pid,
    })
    if (scenario.pid === server.pid)
      serverPeakDuringLoad = Math.max(serverPeakDuringLoad, run.rssPeak)
    rows.push({ ...run, scenario })
    say(
      `  ${run.rps.toFixed(0)} req/s, p50 ${run.p50.toFixed(2)} ms, p99 ${run.p99.toFixed(2)} ms, ${run.errors} errors${describeErrors(run)}`,
    )
  }

  // --- memory after the load ------------------------------------------------------------------
  const peakSinceStart = memoryMiB(server.pid).peak
  say(`waiting up to ${RSS_WAIT_S} s for the server's RSS to fall under ${RSS_SETTLED_MIB} MB`)
  const loadEnded = performance.now()
  let settledAfter: number | undefined
  let rssNow = memoryMiB(server.pid).rss
  while (performance.now() - loadEnded < RSS_WAIT_S * 1000) {
    rssNow = memoryMiB(server.pid).rss
    if (rssNow < RSS_SETTLED_MIB) {
      settledAfter = (performance.now() - loadEnded) / 1000
      break
    }
    await Bun.sleep(1000)
  }
  say(
    settledAfter === undefined
      ? `  still ${rssNow.toFixed(0)} MB after ${RSS_WAIT_S} s`
      : `  ${rssNow.toFixed(0)} MB after ${settledAfter.toFixed(0)} s`,
  )

  // --- the report -----------------------------------------------------------------------------
  const sha = git('rev-parse --short HEAD')
  const dirty = git('status --porcelain --untracked-files=no') !== ''
  const report = renderReport({
    sha: dirty ? `${sha} (with uncommitted changes)` : sha,
    pgVersion: pgVersion ?? '?',
    taskCount,
    rows,
    latencyRows,
    rssStarted,
    rssIdle,
    peakSinceStart,
    serverPeakDuringLoad,
    settledAfter,
    rssNow,
    seedNote: seed.note,
    terms: KINDS.map(
      (k) =>
        `${k} ${terms
          .filter((t) => t.kind === k)
          .map((t) => t.term)
          .join(', ')}`,
    ).join('; '),
  })
  const dir = join(import.meta.dir, 'results')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `${startedAt.toISOString().slice(0, 10)}-${sha}.md`)
  writeFileSync(file, report)
  // Formatted as `bun run lint` wants it (Biome aligns markdown tables), so it can be committed.
  Bun.spawnSync([join(ROOT, 'node_modules/.bin/biome'), 'format', '--write', file], { cwd: ROOT })
  console.log(`\n${readFileSync(file, 'utf8')}`)
  console.log(`written to ${file}`)
} finally {
  await cleanUp()
}

// --- helpers ------------------------------------------------------------------------------------

type Req = {
  method: 'GET' | 'POST' | 'PUT'
  path: string
  headers: Record<string, string>
  body?: string
  /** Groups latencies (the search term's frequency); read back in order with one connection. */
  tag?: string | undefined
}
type Client = { id: string; email: string; token: string; projects: string[] }
type Run = {
  count: number
  rps: number
  p50: number
  p99: number
  errors: number
  statuses: Map<number, number>
  socketErrors: number
  rssPeak: number
  /** CPU microseconds per answered request: the process under load, all of PostgreSQL, and this
   * process (autocannon, the load generator). On 2 cores they share the machine, so their sum is
   * what bounds req/s. */
  cpu?: { server: number; db: number; load: number }
  byTag: Map<string, Run>
}

function spawn(name: string, cmd: string[], env: Record<string, string>) {
  const child = Bun.spawn(cmd, {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '0', ...env },
    stdout: 'pipe',
    stderr: 'inherit',
  })
  children.push({ name, process: child })
  return child
}

function git(command: string) {
  try {
    return execSync(`git ${command}`, { cwd: ROOT, encoding: 'utf8' }).trim()
  } catch {
    return 'unknown'
  }
}

/** Seeds the database, or with --reuse takes the seed a kept database notes in its comment. */
async function seedOrReuse(): Promise<SeedResult & { note: string }> {
  if (REUSE && db.comment) {
    const saved = JSON.parse(db.comment) as { seed: SeedResult; at: string }
    say(`reusing ${dbName}, seeded ${saved.at}; vacuum analyze of the tables earlier runs wrote`)
    // Earlier runs' writes leave pages that are not all-visible, which index-only scans (the
    // listing's) must then read from the table, and stale statistics; autovacuum may be off (it
    // is on the machine this was written on), so the measured lists would depend on it.
    await sql`vacuum (analyze) tasks, activity_log, events`
    return {
      ...saved.seed,
      memberOf: new Map(Object.entries(saved.seed.memberOf as unknown as Record<string, string[]>)),
      note: `reused database seeded ${saved.at} (earlier runs' writes included)`,
    }
  }
  say(`seeding ${USERS} users, ${PROJECTS} projects, ${TASKS} tasks into ${dbName}`)
  const seedStart = performance.now()
  const seed = await seedDataset(sql, {
    users: USERS,
    projects: PROJECTS,
    tasks: TASKS,
    ...(COMMENTS === undefined ? {} : { commentsPerTask: COMMENTS }),
    log: (line) => say(`  seed: ${line}`),
  })
  const seconds = (performance.now() - seedStart) / 1000
  say(`seeded in ${seconds.toFixed(0)} s`)
  if (KEEP) {
    await db.setComment(
      JSON.stringify({
        at: new Date().toISOString(),
        seed: { ...seed, memberOf: Object.fromEntries(seed.memberOf) },
      }),
    )
  }
  return { ...seed, note: `seeded in this run in ${seconds.toFixed(0)} s` }
}

/** Logs in CLIENTS seeded developers (users[0] is the admin), one after another. */
async function logIn(base: string, seed: SeedResult): Promise<Client[]> {
  const clients: Client[] = []
  for (const user of seed.users.slice(1, CLIENTS + 1)) {
    const res = await fetch(`${base}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: user.email, password: seed.password }),
    })
    if (!res.ok) throw new Error(`login ${user.email}: ${res.status} ${await res.text()}`)
    const { access_token } = (await res.json()) as { access_token: string }
    const projects = seed.memberOf.get(user.id) ?? []
    if (projects.length === 0) throw new Error(`${user.email} is in no project`)
    clients.push({ id: user.id, email: user.email, token: access_token, projects })
  }
  say(`logged in ${clients.length} users`)
  return clients
}

/** A sample of about 50,000 task ids, spread over each client's visible ones. */
async function visibleTasks(seed: SeedResult, clients: Client[], count: number) {
  const [{ pages } = { pages: 1 }] = await sql<{ pages: number }[]>`
    select greatest(relpages, 1)::int as pages from pg_class where relname = 'tasks'
  `
  const percent = Math.min(100, (50_000 / Math.max(count, 1)) * 100)
  const sample = await sql<{ id: string; project_id: string }[]>`
    select id, project_id from tasks tablesample system (${percent})
  `
  const byProject = new Map<string, string[]>()
  for (const row of sample) {
    const list = byProject.get(row.project_id) ?? []
    list.push(row.id)
    byProject.set(row.project_id, list)
  }
  const picks = new Map<string, string[]>()
  for (const c of clients) {
    const ids = (seed.memberOf.get(c.id) ?? []).flatMap((p) => byProject.get(p) ?? [])
    if (ids.length === 0) throw new Error(`no sampled task visible to ${c.email}`)
    picks.set(c.id, ids)
  }
  say(`sampled ${sample.length} task ids (${pages} pages in tasks)`)
  return picks
}

/**
 * One request with fetch before a scenario: a scenario whose first answer is not 2xx is broken
 * (the run goes on, its errors show in the table); what it answered is printed and kept.
 */
async function check(base: string, req: Req) {
  const res = await fetch(base + req.path, {
    method: req.method,
    headers: req.headers,
    ...(req.body === undefined ? {} : { body: req.body }),
  })
  const body = await res.text()
  if (res.ok) return
  const line = `${req.method} ${req.path} answered ${res.status}: ${body.slice(0, 300)}`
  console.error(`CHECK FAILED: ${line}`)
  brokenScenarios.push(line)
}

/**
 * Waits (at most 30 s) until no query runs on the bench database but this one: when autocannon
 * stops, the server may still be working on the requests it abandoned, which would otherwise
 * weigh on the next scenario.
 */
async function quiet() {
  const until = performance.now() + 30_000
  while (performance.now() < until) {
    const [row] = await sql<{ busy: number }[]>`
      select count(*)::int as busy from pg_stat_activity
      where datname = current_database() and state <> 'idle' and pid <> pg_backend_pid()
    `
    if (!row?.busy) return
    await Bun.sleep(100)
  }
  say('  the database was still busy after 30 s')
}

/** autocannon on `base` for `seconds`; every request from `next()`. */
async function drive(
  base: string,
  next: () => Req,
  { seconds, connections, pid }: { seconds: number; connections: number; pid: number },
): Promise<Run> {
  const latencies: number[] = []
  const statuses = new Map<number, number>()
  const pending: (string | undefined)[] = []
  const tagged = new Map<string, { latencies: number[]; statuses: Map<number, number> }>()
  let rssPeak = memoryMiB(pid).rss
  const sampler = setInterval(() => {
    try {
      rssPeak = Math.max(rssPeak, memoryMiB(pid).rss)
    } catch {
      // the process has gone: its requests fail and show as errors
    }
  }, 100)
  const serverCpuBefore = cpuSeconds(pid)
  const dbCpuBefore = postgresCpuSeconds()
  const loadCpuBefore = process.cpuUsage()
  const result = await new Promise<autocannon.Result>((done, fail) => {
    const instance = autocannon(
      {
        url: base,
        connections,
        duration: seconds,
        timeout: 10,
        requests: [
          {
            setupRequest: (request) => {
              const { tag, ...req } = next()
              if (connections === 1) pending.push(tag)
              return { ...request, ...req }
            },
          },
        ],
      },
      (error, result) => (error ? fail(error) : done(result)),
    )
    instance.on('response', (_client, status: number, _bytes, ms: number) => {
      latencies.push(ms)
      statuses.set(status, (statuses.get(status) ?? 0) + 1)
      const tag = connections === 1 ? pending.shift() : undefined
      if (tag !== undefined) {
        const t = tagged.get(tag) ?? {
          latencies: [] as number[],
          statuses: new Map<number, number>(),
        }
        t.latencies.push(ms)
        t.statuses.set(status, (t.statuses.get(status) ?? 0) + 1)
        tagged.set(tag, t)
      }
    })
  })
  clearInterval(sampler)
  const loadCpu = process.cpuUsage(loadCpuBefore)
  const answered = Math.max(latencies.length, 1)
  const cpu = {
    server: ((cpuSeconds(pid) - serverCpuBefore) / answered) * 1e6,
    db: ((postgresCpuSeconds() - dbCpuBefore) / answered) * 1e6,
    load: (loadCpu.user + loadCpu.system) / answered,
  }
  await quiet()
  const summarise = (values: number[], codes: Map<number, number>, socketErrors: number) => {
    values.sort((a, b) => a - b)
    let non2xx = 0
    for (const [code, n] of codes) if (code < 200 || code > 299) non2xx += n
    return {
      count: values.length,
      rps: values.length / result.duration,
      p50: quantile(values, 0.5),
      p99: quantile(values, 0.99),
      errors: non2xx + socketErrors,
      statuses: codes,
      socketErrors,
      rssPeak,
      byTag: new Map<string, Run>(),
    }
  }
  const run: Run = { ...summarise(latencies, statuses, result.errors), cpu }
  for (const [tag, t] of tagged) run.byTag.set(tag, summarise(t.latencies, t.statuses, 0))
  return run
}

function describeErrors(run: Run) {
  const parts = [...run.statuses]
    .filter(([code]) => code < 200 || code > 299)
    .map(([code, n]) => `${n}× ${code}`)
  if (run.socketErrors) parts.push(`${run.socketErrors} socket errors/timeouts`)
  return parts.length ? ` (${parts.join(', ')})` : ''
}

function renderReport(r: {
  sha: string
  pgVersion: string
  taskCount: number
  rows: (Run & {
    scenario: { name: string; baseline?: string | undefined; kind?: string; connections?: number }
  })[]
  latencyRows: { name: string; run: Run; part?: boolean }[]
  rssStarted: number
  rssIdle: number
  peakSinceStart: number
  serverPeakDuringLoad: number
  settledAfter: number | undefined
  rssNow: number
  seedNote: string
  terms: string
}) {
  const cpus = os.cpus()
  const f = (n: number, digits = 1) => n.toFixed(digits)
  // A baseline ran twice: its better figures (the higher req/s, the lower p99) are the ceiling,
  // so a slow moment of the shared machine during one of them does not flatter the ratios.
  const baselineOf = (kind: string | undefined) => {
    const runs = r.rows.filter((row) => kind !== undefined && row.scenario.kind === kind)
    if (runs.length === 0) return undefined
    return { rps: Math.max(...runs.map((x) => x.rps)), p99: Math.min(...runs.map((x) => x.p99)) }
  }
  const lines: string[] = []
  lines.push(`# bun run bench: ${startedAt.toISOString()}`, '')
  lines.push(
    `- command: \`bun bench/run.ts ${argv.join(' ')}\` (DATABASE_URL = PostgreSQL ${r.pgVersion} on ${new URL(process.env.DATABASE_URL ?? 'postgres://?').host}, database ${dbName})`,
    `- git: ${r.sha}; server: ${BINARY ? `binary ${BINARY}` : 'bun src/index.ts'}; Bun ${Bun.version}`,
    `- machine: ${cpus.length} cores (${cpus[0]?.model ?? '?'}), ${f(os.totalmem() / 2 ** 30)} GiB, load average at start ${loadAtStart.map((l) => f(l, 2)).join(' ')}, at the end ${os
      .loadavg()
      .map((l) => f(l, 2))
      .join(' ')}`,
    `- dataset: ${USERS} users, ${PROJECTS} projects, ${r.taskCount} tasks when the load began (${r.seedNote})`,
    `- load: autocannon, ${CONNECTIONS} connections, ${WARMUP} s warm-up + ${SECONDS} s per scenario, ${CLIENTS} logged-in users picked at random per request; latencies over every response; errors = non-2xx + socket errors`,
    `- two filters = \`status=todo,in_progress&priority=high&limit=20\`; \`?search=\` alone is \`limit=20&search=<term>\`; the terms (from bench/seed.ts) cycle rare, mid, common, very common, a quarter each: ${r.terms}`,
    `- ratios: to the better of the two runs of the baseline named (higher req/s, lower p99)`,
    `- run took ${elapsed()}`,
    '',
  )
  lines.push(
    '| scenario | req/s | p50 ms | p99 ms | errors | RSS peak MB (process under load) | baseline | req/s ratio | p99 ratio | CPU µs/req: server, PostgreSQL, load generator |',
    '|---|---:|---:|---:|---:|---:|---|---:|---:|---|',
  )
  for (const row of r.rows) {
    const b = baselineOf(row.scenario.baseline)
    lines.push(
      `| ${row.scenario.name}${row.scenario.connections ? ` (${row.scenario.connections} connections)` : ''} | ${f(row.rps, 0)} | ${f(row.p50, 2)} | ${f(row.p99, 2)} | ${row.errors}${describeErrors(row)} | ${f(row.rssPeak, 0)} | ${row.scenario.baseline ?? '—'} | ${b ? f(row.rps / b.rps, 2) : '—'} | ${b ? f(row.p99 / b.p99, 2) : '—'} | ${row.cpu ? `${f(row.cpu.server, 0)}, ${f(row.cpu.db, 0)}, ${f(row.cpu.load, 0)}` : '—'} |`,
    )
  }
  lines.push('', `One client (1 connection, ${LATENCY_SECONDS} s each):`, '')
  lines.push('| listing | requests | p50 ms | p99 ms | errors |', '|---|---:|---:|---:|---:|')
  for (const { name, run } of r.latencyRows)
    lines.push(`| ${name} | ${run.count} | ${f(run.p50, 2)} | ${f(run.p99, 2)} | ${run.errors} |`)
  lines.push(
    '',
    `Server memory: VmRSS ${f(r.rssStarted, 0)} MB once healthy, ${f(r.rssIdle, 0)} MB after logging in ${CLIENTS} users (Argon2) before the load; peak VmRSS sampled during the load ${f(r.serverPeakDuringLoad, 0)} MB; VmHWM (peak since start) ${f(r.peakSinceStart, 0)} MB; after the load ${
      r.settledAfter === undefined
        ? `still ${f(r.rssNow, 0)} MB after ${RSS_WAIT_S} s`
        : `under ${RSS_SETTLED_MIB} MB after ${f(r.settledAfter, 0)} s (${f(r.rssNow, 0)} MB)`
    }.`,
    '',
  )
  // The issue's targets, as measured here.
  const byName = (name: string) => r.rows.find((row) => row.scenario.name === name)
  const ratio = (name: string, of: string, what: 'rps' | 'p99') => {
    const a = byName(name)
    const b = baselineOf(of)
    return a && b ? a[what] / b[what] : undefined
  }
  const verdict = (ok: boolean | undefined) =>
    ok === undefined ? 'not measured' : ok ? 'met' : 'NOT met'
  const targets: [string, string, boolean | undefined][] = []
  const getRps = ratio('GET /tasks/:id', 'bare select', 'rps')
  const getP99 = ratio('GET /tasks/:id', 'bare select', 'p99')
  targets.push([
    'GET /tasks/:id ≥ 0.75× bare select req/s, p99 ≤ 2× its p99',
    `${getRps?.toFixed(2) ?? '?'}×, p99 ${getP99?.toFixed(2) ?? '?'}×`,
    getRps === undefined || getP99 === undefined ? undefined : getRps >= 0.75 && getP99 <= 2,
  ])
  for (const write of ['POST /tasks', 'PUT /tasks/:id/status']) {
    const w = ratio(write, 'bare insert', 'rps')
    targets.push([
      `${write} ≥ 0.5× bare insert req/s`,
      `${w?.toFixed(2) ?? '?'}×`,
      w === undefined ? undefined : w >= 0.5,
    ])
  }
  for (const { name, run } of r.latencyRows.filter((l) => !l.part))
    targets.push([
      `one client, ${name}: p50 ≤ 10 ms, p99 ≤ 50 ms`,
      `p50 ${f(run.p50, 2)} ms, p99 ${f(run.p99, 2)} ms`,
      run.p50 <= 10 && run.p99 <= 50,
    ])
  targets.push([
    `server RSS under ${RSS_SETTLED_MIB} MB within ${RSS_WAIT_S} s after the load`,
    r.settledAfter === undefined
      ? `${f(r.rssNow, 0)} MB at ${RSS_WAIT_S} s`
      : `${f(r.settledAfter, 0)} s`,
    r.settledAfter !== undefined,
  ])
  targets.push([
    'server RSS peak under 200 MB',
    `${f(r.peakSinceStart, 0)} MB (VmHWM)`,
    r.peakSinceStart < 200,
  ])
  if (brokenScenarios.length)
    lines.push(
      'A first request answered an error:',
      '',
      ...brokenScenarios.map((b) => `- \`${b}\``),
      '',
    )
  lines.push('| target (issue 9) | measured | |', '|---|---|---|')
  for (const [what, measured, ok] of targets)
    lines.push(`| ${what} | ${measured} | ${verdict(ok)} |`)
  lines.push('')
  return lines.join('\n')
}
