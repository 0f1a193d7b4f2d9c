/**
 * The server's RSS during and after load on PostgreSQL, for one or more builds of the app side by
 * side in the same run (issue 9: under 200 MB at the peak, under 80 MB within a minute after).
 *
 *   bun run build
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bun bench/memory.ts \
 *     [--app=LABEL=COMMAND[,KEY=VALUE...]]... [--rounds=2] [--seconds=10] [--idle=60] \
 *     [--connections=16] [--tasks=3000]
 *
 * Each `--app` is a label, a command (a binary such as dist/taskapi, or `bun src/index.ts`;
 * spaces split it) and optional extra environment; the default is `--app=binary=dist/taskapi`.
 * In each round every app, in turn, starts on a fresh process against the same database (own
 * database `taskapi_memory`, dropped at the end), is warmed (2 s), then loaded with wrk:
 * GET /api/v1/tasks/:id, then POST /api/v1/tasks, SECONDS each. Its VmRSS is sampled every
 * 250 ms under load and every 10 s for IDLE s after; then its RssAnon/RssFile split and,
 * through GET /api/v1/admin/metrics, its JS heap in use; then GET again for 3 s ("GET/s again":
 * what the first requests after a quiet spell cost). req/s are also given as ratios to the
 * first app of the same round (the machine is shared: compare within a round, run two rounds).
 * wrk must be installed (`apt-get install -y wrk`).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { migrate } from '../src/db'
import { appBenchEnv, arg, benchDatabase, freePort, healthy, register, rssMiB } from './lib'

type App = { label: string; command: string[]; env: Record<string, string> }
type Row = {
  round: number
  label: string
  healthy: number
  peak: number
  after: number[]
  anon: number
  file: number
  heapUsed: number
  getRps: number
  postRps: number
  againRps: number
  non2xx: number
}

const ROUNDS = arg('rounds', 2)
const SECONDS = arg('seconds', 10)
const IDLE = arg('idle', 60)
const CONNECTIONS = arg('connections', 16)
const TASKS = arg('tasks', 3000)

const apps: App[] = process.argv
  .filter((a) => a.startsWith('--app='))
  .map((a) => {
    const [head = '', ...envPairs] = a.slice('--app='.length).split(',')
    const eq = head.indexOf('=')
    if (eq < 1) throw new Error(`--app wants LABEL=COMMAND[,KEY=VALUE...], got ${a}`)
    const env = Object.fromEntries(
      envPairs.map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
    )
    return { label: head.slice(0, eq), command: head.slice(eq + 1).split(' '), env }
  })
if (apps.length === 0) apps.push({ label: 'binary', command: ['dist/taskapi'], env: {} })

/** RssAnon and RssFile of process `pid`, in MiB. */
function rssSplit(pid: number) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const mib = (field: string) =>
    Math.round(Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024)
  return { anon: mib('RssAnon'), file: mib('RssFile') }
}

const benchDb = await benchDatabase('taskapi_memory', 'bench/memory.ts')
const sql = postgres(benchDb.url, { max: 2, onnotice: () => {} })
const work = mkdtempSync(join(tmpdir(), 'memory-'))
const children: ReturnType<typeof Bun.spawn>[] = []
const jwtSecret = crypto.randomUUID() + crypto.randomUUID()

async function start(app: App) {
  const port = freePort()
  const child = Bun.spawn(app.command, {
    env: {
      ...process.env,
      ...appBenchEnv(port, benchDb.url, {
        JWT_SECRET: jwtSecret,
        // One token serves every round.
        ACCESS_TOKEN_TTL: '86400',
      }),
      ...app.env,
    },
    stdout: 'ignore',
    stderr: 'inherit',
  })
  children.push(child)
  const base = `http://127.0.0.1:${port}`
  await healthy(base)
  return { child, base }
}

async function stop(child: ReturnType<typeof Bun.spawn>) {
  child.kill('SIGTERM')
  await child.exited
}

/** wrk for `seconds` against `url` with `script`; req/s, non-2xx answers, peak RSS of `pid`. */
async function wrk(url: string, script: string, seconds: number, pid: number) {
  let peak = rssMiB(pid)
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssMiB(pid))
  }, 250)
  const proc = Bun.spawn(['wrk', '-t2', `-c${CONNECTIONS}`, `-d${seconds}s`, '-s', script, url], {
    stdout: 'pipe',
    stderr: 'inherit',
  })
  const out = await new Response(proc.stdout).text()
  await proc.exited
  clearInterval(sampler)
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN),
    non2xx:
      Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) +
      (errors ? errors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0),
    peak: Math.max(peak, rssMiB(pid)),
  }
}

const rows: Row[] = []
try {
  await migrate(sql)
  const first = apps[0] as App
  const setup = await start(first)
  const admin = await register(setup.base, 'memory-admin')
  const user = await register(setup.base, 'memory-user')
  await stop(setup.child)
  const [project] = await sql<{ id: string }[]>`
    insert into projects (name, owner_id) values ('Memory', ${user.userId}) returning id
  `
  if (!project) throw new Error('no project')
  await sql`insert into project_members (project_id, user_id, role) values (${project.id}, ${user.userId}, 'owner')`
  const n = Array.from({ length: TASKS }, (_, i) => i)
  await sql`
    insert into tasks (title, description, project_id, created_by, tags)
    select title, description, ${project.id}, ${user.userId}, array['backend', 'api']
    from unnest(
      ${n.map((i) => `Task ${i}`)}::text[],
      ${n.map((i) => `A description of task ${i}, a few sentences long. `.repeat(3))}::text[]
    ) as s(title, description)
  `
  const ids = (await sql<{ id: string }[]>`select id from tasks order by random() limit 1000`).map(
    (r) => r.id,
  )
  const getScript = join(work, 'get.lua')
  writeFileSync(
    getScript,
    `local ids = {${ids.map((id) => `"${id}"`).join(',')}}
local n = 0
wrk.headers["Authorization"] = "Bearer ${user.token}"
request = function()
  n = n + 1
  return wrk.format("GET", wrk.path .. ids[(n % #ids) + 1])
end
`,
  )
  const postScript = join(work, 'post.lua')
  writeFileSync(
    postScript,
    `local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer ${user.token}"
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, '{"title":"memory task ' .. n .. '","project_id":"${project.id}"}')
end
`,
  )

  for (let round = 1; round <= ROUNDS; round++)
    for (const app of apps) {
      const { child, base } = await start(app)
      const pid = child.pid
      const healthyRss = rssMiB(pid)
      await wrk(`${base}/api/v1/tasks/`, getScript, 2, pid)
      const get = await wrk(`${base}/api/v1/tasks/`, getScript, SECONDS, pid)
      const post = await wrk(`${base}/api/v1/tasks`, postScript, SECONDS, pid)
      const after: number[] = []
      for (let s = 0; s < IDLE; s += 10) {
        await Bun.sleep(10_000)
        after.push(rssMiB(pid))
      }
      const split = rssSplit(pid)
      // The same GET load once more after the quiet spell: what compiling again costs, if anything.
      const again = await wrk(`${base}/api/v1/tasks/`, getScript, 3, pid)
      const metrics = (await fetch(`${base}/api/v1/admin/metrics`, {
        headers: { authorization: `Bearer ${admin.token}` },
      }).then((r) => r.json())) as { memory?: { heap_used_bytes: number } }
      await stop(child)
      const row: Row = {
        round,
        label: app.label,
        healthy: healthyRss,
        peak: Math.max(get.peak, post.peak),
        after,
        anon: split.anon,
        file: split.file,
        heapUsed: Math.round((metrics.memory?.heap_used_bytes ?? 0) / 1048576),
        getRps: get.rps,
        postRps: post.rps,
        againRps: again.rps,
        non2xx: get.non2xx + post.non2xx + again.non2xx,
      }
      rows.push(row)
      console.log(JSON.stringify(row))
    }

  console.log(
    `\nwrk -t2 -c${CONNECTIONS}, GET then POST ${SECONDS} s each, idle ${IDLE} s, ${TASKS} tasks, Bun ${Bun.version}; RSS in MiB`,
  )
  console.log(
    `${'round app'.padEnd(24)} ${'healthy'.padStart(7)} ${'peak'.padStart(5)}  ${'every 10 s after the load'.padEnd(30)} ${'anon'.padStart(5)} ${'file'.padStart(5)} ${'heap'.padStart(5)} ${'GET/s'.padStart(6)} ${'ratio'.padStart(5)} ${'POST/s'.padStart(6)} ${'ratio'.padStart(5)} ${'GET/s again'.padStart(11)} ${'non2xx'.padStart(6)}`,
  )
  for (const r of rows) {
    const ref = rows.find((x) => x.round === r.round) as Row
    console.log(
      `${`${r.round} ${r.label}`.padEnd(24)} ${String(r.healthy).padStart(7)} ${String(r.peak).padStart(5)}  ${r.after.join(' ').padEnd(30)} ${String(r.anon).padStart(5)} ${String(r.file).padStart(5)} ${String(r.heapUsed).padStart(5)} ${r.getRps.toFixed(0).padStart(6)} ${(r.getRps / ref.getRps).toFixed(2).padStart(5)} ${r.postRps.toFixed(0).padStart(6)} ${(r.postRps / ref.postRps).toFixed(2).padStart(5)} ${r.againRps.toFixed(0).padStart(11)} ${String(r.non2xx).padStart(6)}`,
    )
  }
} finally {
  for (const c of children) c.kill('SIGTERM')
  await Promise.all(children.map((c) => c.exited))
  await sql.end({ timeout: 5 })
  await benchDb.drop()
  rmSync(work, { recursive: true, force: true })
}
