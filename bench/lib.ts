// What the load scripts share: arguments, a free port, waiting for a server, a user, a timed
// load loop, and the server's memory.
import { readdirSync, readFileSync } from 'node:fs'
import postgres from 'postgres'

/** `--name=value` from the command line as a number, or the fallback. */
export const arg = (name: string, fallback: number) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback)

/** A loopback port nothing listens on right now. */
export function freePort() {
  const probe = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response() })
  const port = probe.port
  probe.stop(true)
  return port
}

/** Waits (at most 30 s) until `base`/health answers 200. */
export async function healthy(base: string) {
  const until = Date.now() + 30_000
  while (Date.now() < until) {
    const ok = await fetch(`${base}/health`).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) return
    await Bun.sleep(200)
  }
  throw new Error('the server did not become healthy within 30 s')
}

/** Registers `username` and returns its access token and id. */
export async function register(base: string, username: string) {
  const res = await fetch(`${base}/api/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      email: `${username}@example.com`,
      username,
      password: 'bench password 1',
    }),
  })
  if (res.status !== 201) throw new Error(`register ${username}: ${res.status} ${await res.text()}`)
  const body = (await res.json()) as { access_token: string; user: { id: string } }
  return { token: body.access_token, userId: body.user.id }
}

export const LISTENING = /"msg":"listening","url":"http:\/\/[^:]+:(\d+)"/

/**
 * Reads a child's output until `pattern` captures its port; returns its loopback base URL and
 * keeps draining the output so the pipe never fills up.
 */
export async function listening(stdout: ReadableStream<Uint8Array>, pattern = LISTENING) {
  const decoder = new TextDecoder()
  let seen = ''
  const reader = stdout.getReader()
  for (;;) {
    const { value, done } = await reader.read()
    if (done) throw new Error(`process exited: ${seen}`)
    seen += decoder.decode(value)
    const port = pattern.exec(seen)?.[1]
    if (port) {
      void (async () => {
        while (!(await reader.read()).done) {}
      })()
      return `http://127.0.0.1:${port}`
    }
  }
}

/** The value at quantile `q` of ascending `sorted` values. */
export const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0

/** Runs `request` on `connections` loops for `seconds`; latency percentiles over every response. */
export async function load(
  name: string,
  request: () => Promise<Response>,
  { seconds, connections }: { seconds: number; connections: number },
) {
  const latencies: number[] = []
  let errors = 0
  const until = performance.now() + seconds * 1000
  const loop = async () => {
    while (performance.now() < until) {
      const start = performance.now()
      const res = await request()
      await res.arrayBuffer()
      latencies.push(performance.now() - start)
      if (res.status >= 400) errors++
    }
  }
  await Promise.all(Array.from({ length: connections }, loop))
  latencies.sort((a, b) => a - b)
  return {
    name,
    rps: latencies.length / seconds,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    errors,
  }
}

/** Resident memory of process `pid`, in MiB. */
export function rssMiB(pid: number) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024)
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
export function cpuSeconds(pid: number) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
}

/** CPU seconds used so far by every PostgreSQL process on this machine (server and backends). */
export function postgresCpuSeconds() {
  let total = 0
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'postgres') continue
      total += cpuSeconds(Number(entry))
    } catch {
      // The process ended while we looked.
    }
  }
  return total
}

// USER_HZ: 100 on every Linux this runs on (sysconf is not reachable from Bun without FFI).
const CLOCK_TICKS = 100

/**
 * A new database `name` on the PostgreSQL server of DATABASE_URL (the script stops when it is
 * unset); `drop()` removes it again at the end.
 */
export async function benchDatabase(name: string, script: string) {
  const serverUrl = process.env.DATABASE_URL
  if (!serverUrl) {
    console.error(`${script} needs DATABASE_URL (a PostgreSQL server; it creates its own database)`)
    process.exit(1)
  }
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} })
  await admin`drop database if exists ${admin(name)} with (force)`
  await admin`create database ${admin(name)}`
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    async drop() {
      await admin`drop database if exists ${admin(name)} with (force)`
      await admin.end({ timeout: 5 })
    },
  }
}

/** Resident memory now and its peak so far (VmRSS, VmHWM) of process `pid`, in MiB. */
export function memoryMiB(pid: number) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0)
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 }
}

/**
 * Database `name` on the PostgreSQL server of DATABASE_URL that may outlive the run: created when
 * it does not exist or when `fresh` (then dropped first), else the existing one (`created` says
 * which); dropped only by `drop()`. `comment` is the database's comment, where a bench leaves a
 * note about what it holds, written with `setComment`.
 */
export async function keptBenchDatabase(name: string, script: string, { fresh = false } = {}) {
  const serverUrl = process.env.DATABASE_URL
  if (!serverUrl) {
    console.error(`${script} needs DATABASE_URL (a PostgreSQL server; it creates its own database)`)
    process.exit(1)
  }
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} })
  if (fresh) await admin`drop database if exists ${admin(name)} with (force)`
  const [found] = await admin<{ comment: string | null }[]>`
    select shobj_description(oid, 'pg_database') as comment from pg_database where datname = ${name}
  `
  if (!found) await admin`create database ${admin(name)}`
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    created: !found,
    comment: found?.comment ?? null,
    async setComment(text: string) {
      await admin.unsafe(`comment on database "${name}" is ${quoteLiteral(text)}`)
    },
    async drop() {
      await admin`drop database if exists ${admin(name)} with (force)`
    },
    end: () => admin.end({ timeout: 5 }),
  }
}

/** `text` as an SQL string literal (for statements that take no parameters, like COMMENT). */
const quoteLiteral = (text: string) => `'${text.replaceAll("'", "''")}'`

/**
 * The environment a bench runs the app with: on loopback at `port`, on `databaseUrl`, request
 * logging off (warn), no metrics listener, no per-instance rate limits (the load comes from a few
 * users at one address), and a throwaway JWT secret. `extra` adds or overrides settings.
 */
export function appBenchEnv(
  port: number | undefined,
  databaseUrl: string,
  extra: Record<string, string> = {},
) {
  return {
    HOST: '127.0.0.1',
    PORT: String(port),
    METRICS_PORT: '0',
    DATABASE_URL: databaseUrl,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_REQUESTS: '0',
    RATE_LIMIT_AUTH_REQUESTS: '0',
    JWT_SECRET: crypto.randomUUID() + crypto.randomUUID(),
    ...extra,
  }
}
