/**
 * The hot path, measured as a new user would: `wrk` over loopback against PostgreSQL, every
 * figure a ratio to a bare Bun.serve + postgres.js server measured in the same run.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bun bench/hotpath.ts \
 *     [--tasks=3000] [--seconds=5] [--connections=16] [--threads=2] [--idle=60] \
 *     [--profile=DIR] [--only=get|post] [--compare=CHECKOUT] [--binary=dist/taskapi] [--projects=1]
 *     [--users=0]
 *
 * `--projects=N` gives the user N projects (the POSTs spread over them) and `--users=N` adds N
 * more users: with a few hundred rows in those tables, PostgreSQL's default random_page_cost plans
 * the GET's name joins as hash joins over whole-table scans (see DATABASE_RANDOM_PAGE_COST).
 *
 * One run: creates its own database (`taskapi_hotpath`, dropped at the end), seeds TASKS tasks in
 * one project, starts the app (LOG_LEVEL=warn) three times (rate limits off; the limiter on but
 * with a limit the load never reaches, so its cost is paid and nothing is refused; the default
 * limit of 600 per minute, which refuses most of this one-user load with 429) and a bare server,
 * and runs wrk against each: GET /api/v1/tasks/:id against the bare primary-key select
 * (bench/bare-select.ts), POST /api/v1/tasks against a bare single-row insert
 * (bench/bare-insert.ts), each app run right after a bare run of its kind, its ratios to that run. Prints req/s, p50, p99, non-2xx answers and the ratios, and the app's RSS at
 * its peak and IDLE seconds after the load, and the CPU time per answered request of the server
 * process and of all PostgreSQL processes (from /proc; on a 2-core machine both share the cores
 * with wrk, so CPU per request is what bounds req/s). With `--profile=DIR` one more app (limiter on, not
 * reached; and one of the --compare checkout) runs GET /tasks/:id under `bun --cpu-prof`,
 * outside the table (and POST /tasks likewise); the profiles land in DIR/this-get, DIR/this-post,
 * DIR/compare-get and DIR/compare-post (read them with
 * bench/cpuprofile-top.ts). `--compare=CHECKOUT` also measures the app of
 * another checkout (its own node_modules installed), e.g. `git archive main` unpacked: before
 * and after a change in the same run. `--binary=PATH` runs this checkout's app as the compiled
 * executable (`bun run build`), as deployed, rather than `bun src/index.ts`.
 * wrk must be installed (`apt-get install -y wrk`).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { migrate } from '../src/db'
import {
  arg,
  benchDatabase,
  cpuSeconds,
  freePort,
  healthy,
  listening,
  postgresCpuSeconds,
  register,
  rssMiB,
} from './lib'

await main()

type Result = {
  name: string
  rps: number
  p50: number
  p99: number
  non2xx: number
  errors: number
  rss?: number
  /** CPU microseconds per answered request: the server process, and all of PostgreSQL. */
  serverCpu?: number
  dbCpu?: number
  /** The bare run just before this one, which its ratios are to. */
  bare?: Result
}

async function main() {
  const TASKS = arg('tasks', 3000)
  // POST /tasks picks one of this many projects at random (each write takes its project's event
  // lock until it commits: with one project every write waits for the one before).
  const PROJECTS = arg('projects', 1)
  // Other users in the database (the planner's view of a team; 0 leaves the two the run registers).
  const USERS = arg('users', 0)
  const SECONDS = arg('seconds', 5)
  const CONNECTIONS = arg('connections', 16)
  const THREADS = arg('threads', 2)
  const IDLE = arg('idle', 60)
  const profileDir = process.argv.find((a) => a.startsWith('--profile='))?.split('=')[1]
  const only = process.argv.find((a) => a.startsWith('--only='))?.split('=')[1]
  // Another checkout of the app (with node_modules) measured in the same run: before and after.
  const otherRoot = process.argv.find((a) => a.startsWith('--compare='))?.split('=')[1]
  const ownRoot = join(import.meta.dir, '..')
  // The compiled app (`bun run build`) instead of `bun src/index.ts`, as it is deployed.
  const binary = process.argv.find((a) => a.startsWith('--binary='))?.split('=')[1]

  const benchDb = await benchDatabase('taskapi_hotpath', 'bench/hotpath.ts')
  const sql = postgres(benchDb.url, { max: 2, onnotice: () => {} })
  await migrate(sql)
  const work = mkdtempSync(join(tmpdir(), 'hotpath-'))
  const processes: ReturnType<typeof Bun.spawn>[] = []
  const spawn = (cmd: string[], env: Record<string, string>) => {
    const child = Bun.spawn(cmd, {
      env: { ...process.env, HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '0', ...env },
      stdout: 'pipe',
      stderr: 'inherit',
    })
    processes.push(child)
    return child
  }
  const stop = async (child: ReturnType<typeof Bun.spawn>) => {
    child.kill('SIGTERM')
    await child.exited
  }
  const jwtSecret = crypto.randomUUID() + crypto.randomUUID()
  const startApp = async (env: Record<string, string>, profile?: string, root = ownRoot) => {
    const port = freePort()
    const prof = profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : []
    const command =
      binary && root === ownRoot && !profile
        ? [binary]
        : ['bun', ...prof, join(root, 'src', 'index.ts')]
    const child = spawn(command, {
      PORT: String(port),
      DATABASE_URL: benchDb.url,
      DATABASE_POOL_MAX: '10',
      LOG_LEVEL: 'warn',
      RATE_LIMIT_AUTH_REQUESTS: '0',
      JWT_SECRET: jwtSecret,
      ...env,
    })
    const base = `http://127.0.0.1:${port}`
    await healthy(base)
    return { child, base }
  }

  try {
    const setup = await startApp({ RATE_LIMIT_REQUESTS: '0' })
    await register(setup.base, 'bench-admin')
    const { token, userId } = await register(setup.base, 'bench')
    await stop(setup.child)
    const projectId = await seed(sql, userId, TASKS)
    const projectIds = [projectId]
    for (let i = 1; i < PROJECTS; i++) {
      const [extra] = await sql<{ id: string }[]>`
        insert into projects (name, owner_id) values (${`Hot path ${i}`}, ${userId}) returning id
      `
      if (!extra) throw new Error('no project')
      await sql`insert into project_members (project_id, user_id, role) values (${extra.id}, ${userId}, 'owner')`
      projectIds.push(extra.id)
    }
    await sql`
      insert into users (email, username, password_hash)
      select 'other' || g || '@example.com', 'other' || g, 'x' from generate_series(1, ${USERS}) g
    `
    await sql`analyze users, projects, project_members`
    const ids = (
      await sql<{ id: string }[]>`select id from tasks order by random() limit 1000`
    ).map((r) => r.id)
    const getScript = join(work, 'get.lua')
    writeFileSync(getScript, luaGet(ids, token))
    const bareGetScript = join(work, 'bare-get.lua')
    writeFileSync(bareGetScript, luaGet(ids))
    const postScript = join(work, 'post.lua')
    writeFileSync(postScript, luaPost(projectIds, token))
    const barePostScript = join(work, 'bare-post.lua')
    writeFileSync(barePostScript, luaPost(projectIds))

    const wrk = async (name: string, url: string, script: string, pid?: number) => {
      let peak = 0
      const sampler = pid
        ? setInterval(() => {
            peak = Math.max(peak, rssMiB(pid))
          }, 250)
        : undefined
      const cpuBefore = pid ? cpuSeconds(pid) : 0
      const dbBefore = postgresCpuSeconds()
      const proc = Bun.spawn(
        [
          'wrk',
          `-t${THREADS}`,
          `-c${CONNECTIONS}`,
          `-d${SECONDS}s`,
          '--latency',
          '-s',
          script,
          url,
        ],
        { stdout: 'pipe', stderr: 'inherit' },
      )
      const out = await new Response(proc.stdout).text()
      await proc.exited
      clearInterval(sampler)
      const result = parseWrk(name, out)
      const answered = result.rps * SECONDS
      if (pid) {
        result.rss = Math.max(peak, rssMiB(pid))
        result.serverCpu = ((cpuSeconds(pid) - cpuBefore) / answered) * 1e6
      }
      result.dbCpu = ((postgresCpuSeconds() - dbBefore) / answered) * 1e6
      return result
    }

    const results: Result[] = []
    const bareSelect = spawn(['bun', join(import.meta.dir, 'bare-select.ts')], {
      DATABASE_URL: benchDb.url,
    })
    const bareBase = await listening(
      bareSelect.stdout as ReadableStream<Uint8Array>,
      /bare listening on (\d+)/,
    )
    const bareInsert = spawn(['bun', join(import.meta.dir, 'bare-insert.ts')], {
      DATABASE_URL: benchDb.url,
      USER_ID: userId,
    })
    const bareInsertBase = await listening(
      bareInsert.stdout as ReadableStream<Uint8Array>,
      /bare listening on (\d+)/,
    )
    // With --compare, each run of the other checkout comes right after the same run of this one:
    // on a shared machine, before and after then meet the same neighbours.
    const variants: [string, Record<string, string>, string?][] = []
    for (const [label, env] of [
      ['rate limit off', { RATE_LIMIT_REQUESTS: '0' }],
      ['rate limit on (never reached)', { RATE_LIMIT_REQUESTS: '10000000' }],
    ] as const) {
      variants.push([`app, ${label}`, env])
      if (otherRoot) variants.push([`--compare app, ${label}`, env, otherRoot])
    }
    variants.push(['app, default rate limit (600/min)', {}])
    let idleRss: { start: number; peak: number; after: number[] } | undefined
    // Warm both bare servers (JIT, pool) before they are measured.
    await wrk('warm', `${bareBase}/`, bareGetScript)
    // The machine is shared: each app run comes right after a bare run of the same kind, and its
    // ratio is to that bare run.
    for (const [index, [label, env, root]] of variants.entries()) {
      const app = await startApp(env, undefined, root)
      const pid = app.child.pid
      const startRss = rssMiB(pid)
      await wrk('warm', `${app.base}/api/v1/tasks/`, getScript)
      if (only !== 'post') {
        const bare = await wrk('bare GET pk select', `${bareBase}/`, bareGetScript, bareSelect.pid)
        results.push(bare)
        const run = await wrk(
          `GET /tasks/:id, ${label}`,
          `${app.base}/api/v1/tasks/`,
          getScript,
          pid,
        )
        results.push({ ...run, bare })
      }
      if (only !== 'get') {
        const bare = await wrk(
          'bare POST insert',
          `${bareInsertBase}/`,
          barePostScript,
          bareInsert.pid,
        )
        results.push(bare)
        const run = await wrk(`POST /tasks, ${label}`, `${app.base}/api/v1/tasks`, postScript, pid)
        results.push({ ...run, bare })
      }
      // This checkout's first app: its RSS a while after the load.
      if (index === 0 && IDLE > 0) {
        const peak = Math.max(...results.map((r) => (r.name.includes(label) ? (r.rss ?? 0) : 0)))
        const after: number[] = []
        for (let s = 0; s < IDLE; s += 10) {
          await Bun.sleep(10_000)
          after.push(rssMiB(pid))
        }
        idleRss = { start: startRss, peak, after }
      }
      await stop(app.child)
    }
    if (profileDir) {
      // Profiled apart: the profiler slows the server, so these runs are not in the table.
      const profiled: [string, string | undefined][] = [['this checkout', undefined]]
      if (otherRoot) profiled.push(['--compare checkout', otherRoot])
      // [what, path, wrk script]: GET unless --only=post, POST unless --only=get.
      const kinds: [string, string, string][] = []
      if (only !== 'post') kinds.push(['GET /tasks/:id', '/api/v1/tasks/', getScript])
      if (only !== 'get') kinds.push(['POST /tasks', '/api/v1/tasks', postScript])
      for (const [label, root] of profiled) {
        for (const [kind, path, script] of kinds) {
          const dir = join(
            profileDir,
            `${root ? 'compare' : 'this'}-${kind.split(' ')[0]?.toLowerCase()}`,
          )
          const app = await startApp({ RATE_LIMIT_REQUESTS: '10000000' }, dir, root)
          const url = `${app.base}${path}`
          await wrk('warm', url, script)
          const run = await wrk('profiled', url, script)
          await stop(app.child)
          console.log(
            `profiled ${kind}, ${label} (limiter on, not reached): ${run.rps.toFixed(0)} req/s; profile in ${dir}`,
          )
        }
      }
    }
    console.log(
      `\nwrk -t${THREADS} -c${CONNECTIONS} -d${SECONDS}s, ${TASKS} tasks, PostgreSQL ${(await sql<{ v: string }[]>`select current_setting('server_version') as v`)[0]?.v}, Bun ${Bun.version}`,
    )
    console.log(
      `${'scenario'.padEnd(52)} ${'req/s'.padStart(7)} ${'x bare'.padStart(6)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'p99/bare'.padStart(8)} ${'non2xx'.padStart(7)} ${'RSS MiB'.padStart(7)} ${'app µs/req'.padStart(10)} ${'db µs/req'.padStart(9)}`,
    )
    for (const r of results) {
      const bare = r.bare ?? r
      console.log(
        `${r.name.padEnd(52)} ${r.rps.toFixed(0).padStart(7)} ${bare ? (r.rps / bare.rps).toFixed(3).padStart(6) : '     -'} ${r.p50.toFixed(2).padStart(7)} ${r.p99.toFixed(2).padStart(7)} ${bare ? (r.p99 / bare.p99).toFixed(2).padStart(8) : '       -'} ${String(r.non2xx + r.errors).padStart(7)} ${String(r.rss ?? '-').padStart(7)} ${(r.serverCpu?.toFixed(0) ?? '-').padStart(10)} ${(r.dbCpu?.toFixed(0) ?? '-').padStart(9)}`,
      )
    }
    if (idleRss)
      console.log(
        `\napp RSS (rate limit off run): ${idleRss.start} MiB once healthy, peak ${idleRss.peak} MiB under load; every 10 s after: ${idleRss.after.join(', ')} MiB`,
      )
  } finally {
    for (const p of processes) p.kill('SIGTERM')
    await Promise.all(processes.map((p) => p.exited))
    await sql.end({ timeout: 5 })
    await benchDb.drop()
    rmSync(work, { recursive: true, force: true })
  }
}

/** wrk's summary: Requests/sec, the 50% and 99% latencies, and non-2xx/socket errors. */
function parseWrk(name: string, out: string): Result {
  const ms = (label: string) => {
    const m = new RegExp(`^\\s*${label}\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(out)
    if (!m) return Number.NaN
    const value = Number(m[1])
    return m[2] === 'us' ? value / 1000 : m[2] === 's' ? value * 1000 : value
  }
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  return {
    name,
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN),
    p50: ms('50%'),
    p99: ms('99%'),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    errors: errors ? errors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
  }
}

/** GET <base><id>, cycling through `ids`, with the bearer token when given. */
function luaGet(ids: string[], token?: string) {
  return `
local ids = {${ids.map((id) => `"${id}"`).join(',')}}
local n = 0
${token ? `wrk.headers["Authorization"] = "Bearer ${token}"` : ''}
request = function()
  n = n + 1
  return wrk.format("GET", wrk.path .. ids[(n % #ids) + 1])
end
`
}

/** POST a new task (title, and one of `projectIds` at random) as JSON. */
function luaPost(projectIds: string[], token?: string) {
  return `
local n = 0
local projects = {${projectIds.map((id) => `"${id}"`).join(',')}}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
${token ? `wrk.headers["Authorization"] = "Bearer ${token}"` : ''}
request = function()
  n = n + 1
  local project = projects[math.random(#projects)]
  return wrk.format(nil, nil, nil, '{"title":"bench task ' .. n .. '","project_id":"' .. project .. '"}')
end
`
}

/** One project owned by `userId` with `count` tasks (one `unnest` insert). */
async function seed(sql: postgres.Sql, userId: string, count: number) {
  const [project] = await sql<{ id: string }[]>`
    insert into projects (name, owner_id) values ('Hot path', ${userId}) returning id
  `
  if (!project) throw new Error('no project')
  await sql`insert into project_members (project_id, user_id, role) values (${project.id}, ${userId}, 'owner')`
  const rows = Array.from({ length: count }, (_, i) => i)
  const statuses = ['todo', 'in_progress', 'in_review', 'done', 'cancelled']
  const priorities = ['low', 'medium', 'high', 'urgent']
  await sql`
    insert into tasks (title, description, project_id, created_by, status, priority, tags)
    select title, description, ${project.id}, ${userId}, status, priority, array['backend', 'api']
    from unnest(
      ${rows.map((i) => `Task ${i}: fix the thing number ${i}`)}::text[],
      ${rows.map((i) => `A description of task ${i}, a few sentences long. `.repeat(3))}::text[],
      ${rows.map((i) => statuses[i % 5] as string)}::text[],
      ${rows.map((i) => priorities[i % 4] as string)}::text[]
    ) as s(title, description, status, priority)
  `
  await sql`vacuum analyze tasks`
  console.log(`seeded ${count} tasks`)
  return project.id
}
