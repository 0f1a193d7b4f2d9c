/**
 * The shared benchmark dataset: users, projects, memberships, tasks (with tags and a long-tailed
 * vocabulary) and comments, loaded with COPY into a migrated database.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bun bench/seed.ts \
 *     [--tasks=1000000] [--users=100] [--projects=200] [--keep=1]
 *
 * The CLI creates its own database (`taskapi_seed`), migrates it, seeds it and drops it again
 * unless `--keep=1`. Other scripts import `seedDataset`.
 *
 * The text of titles and descriptions is drawn from a synthetic vocabulary with Zipf-like word
 * frequencies (word r has weight 1 / (r + 2)); every word is checked to be its own English
 * lexeme, so a search for it matches exactly the tasks that contain it. After the load, the
 * terms whose document frequency is nearest to each class (about 20%, 5%, 0.7%, under 0.05%)
 * are returned for searching.
 */

import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type postgres from 'postgres'
import { PASSWORD_HASH_PARAMS } from '../src/modules/auth/passwords'

export type SeedOptions = {
  users: number
  projects: number
  tasks: number
  /** Average comments per task, default 0.3. */
  commentsPerTask?: number
  log?: (line: string) => void
}

export type SeedResult = {
  /** Every seeded user's password (its argon2id hash is computed once and reused). */
  password: string
  /** users[0] is an admin; the others are developers. */
  users: { id: string; email: string }[]
  projects: { id: string; ownerId: string }[]
  /** User id -> the ids of the projects the user is a member of (about 20 each). */
  memberOf: Map<string, string[]>
  /** Search words: veryCommon matches ~20% of tasks, common ~5%, mid ~0.7%, rare < 0.05%. */
  terms: { rare: string[]; mid: string[]; common: string[]; veryCommon: string }
}

const STATUSES = ['todo', 'in_progress', 'in_review', 'done', 'cancelled']
const PRIORITIES = ['low', 'medium', 'high', 'urgent']
const TAGS = Array.from({ length: 30 }, (_, i) => `tag${i}`)
const VOCABULARY = 20_000
const PROJECTS_PER_USER = 20
const ROWS_PER_CHUNK = 5_000

/** A small, fast, seeded PRNG (mulberry32): the same options give the same dataset. */
function prng(seed: number) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

const CONSONANTS = 'bdfgklmnprtv'
const VOWELS = 'aiou'
const ENDINGS = 'aou'

/** Pronounceable synthetic words of 2 to 4 syllables, ending in a vowel the stemmer keeps. */
function candidateWords(count: number, random: () => number) {
  const seen = new Set<string>()
  while (seen.size < count) {
    const syllables = 2 + Math.floor(random() * 3)
    let word = ''
    for (let s = 0; s < syllables; s++) {
      word += CONSONANTS[Math.floor(random() * CONSONANTS.length)]
      word += (s === syllables - 1 ? ENDINGS : VOWELS)[
        Math.floor(random() * (s === syllables - 1 ? ENDINGS.length : VOWELS.length))
      ]
    }
    seen.add(word)
  }
  return [...seen]
}

const elapsed = (started: number) => `${((performance.now() - started) / 1000).toFixed(0)} s`
const n = (value: number) => value.toLocaleString('en-US')

export async function seedDataset(sql: postgres.Sql, options: SeedOptions): Promise<SeedResult> {
  const log = options.log ?? (() => {})
  const commentsPerTask = options.commentsPerTask ?? 0.3
  const random = prng(20_261_127)
  const started = performance.now()

  // The vocabulary: only words that are their own lexeme (not a stop word, not stemmed to
  // another word), so a search term's matches are the tasks whose text contains it.
  const candidates = candidateWords(Math.round(VOCABULARY * 1.2), random)
  const lexemes = await sql<{ word: string; lexeme: string | null }[]>`
    select w as word, (select string_agg(lexeme, ' ') from unnest(to_tsvector('english', w))) as lexeme
    from unnest(${candidates}::text[]) as w
  `
  const vocabulary = lexemes
    .filter((r) => r.lexeme === r.word)
    .map((r) => r.word)
    .slice(0, VOCABULARY)
  // Zipf-like weights 1 / (r + 2), as a cumulative table for a binary search.
  const cumulative = new Float64Array(vocabulary.length)
  let sum = 0
  for (let r = 0; r < vocabulary.length; r++) {
    sum += 1 / (r + 2)
    cumulative[r] = sum
  }
  const pickWord = () => {
    const x = random() * sum
    let lo = 0
    let hi = cumulative.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((cumulative[mid] as number) < x) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  // Users: one argon2id hash for all of them, with the parameters the server hashes with (a
  // stronger stored hash is kept, and would make every login in the bench cost more).
  const password = 'bench password 1'
  const passwordHash = await Bun.password.hash(password, PASSWORD_HASH_PARAMS)
  const userRows = Array.from({ length: options.users }, (_, i) => ({
    id: Bun.randomUUIDv7(),
    email: `user${i}@bench.example.com`,
    username: `user${i}`,
  }))
  await sql`
    insert into users (id, email, username, password_hash, first_name, last_name, email_verified)
    select id, email, username, ${passwordHash}, 'Bench', username, true
    from unnest(${userRows.map((u) => u.id)}::uuid[], ${userRows.map((u) => u.email)}::text[],
      ${userRows.map((u) => u.username)}::text[]) as s(id, email, username)
  `
  await sql`
    insert into user_roles (user_id, role_id)
    select u.id, r.id
    from unnest(${userRows.map((u) => u.id)}::uuid[]) with ordinality as u(id, n)
    join roles r on r.name = case when u.n = 1 then 'admin' else 'developer' end
  `
  const users = userRows.map(({ id, email }) => ({ id, email }))
  log(`users ${n(users.length)} (${elapsed(started)})`)

  // Projects, each owned by a user; every user is a member of about PROJECTS_PER_USER of them.
  const projects = Array.from({ length: options.projects }, (_, i) => ({
    id: Bun.randomUUIDv7(),
    ownerId: (users[i % users.length] as { id: string }).id,
  }))
  const memberOf = new Map<string, string[]>(users.map((u) => [u.id, []]))
  const membership = new Set<string>()
  const members: { projectId: string; userId: string; role: string }[] = []
  const addMember = (projectId: string, userId: string, role: string) => {
    if (membership.has(`${projectId} ${userId}`)) return
    membership.add(`${projectId} ${userId}`)
    members.push({ projectId, userId, role })
    memberOf.get(userId)?.push(projectId)
  }
  for (const p of projects) addMember(p.id, p.ownerId, 'owner')
  const perUser = Math.min(PROJECTS_PER_USER, projects.length)
  for (const u of users) {
    while ((memberOf.get(u.id)?.length ?? 0) < perUser) {
      const p = projects[Math.floor(random() * projects.length)] as { id: string }
      addMember(p.id, u.id, random() < 0.2 ? 'manager' : 'member')
    }
  }
  await sql`
    insert into projects (id, name, description, owner_id, created_at)
    select id, 'Project ' || n, 'A benchmark project', owner_id, now() - interval '800 days'
    from unnest(${projects.map((p) => p.id)}::uuid[], ${projects.map((p) => p.ownerId)}::uuid[])
      with ordinality as s(id, owner_id, n)
  `
  await sql`
    insert into project_members (project_id, user_id, role)
    select * from unnest(${members.map((m) => m.projectId)}::uuid[],
      ${members.map((m) => m.userId)}::uuid[], ${members.map((m) => m.role)}::text[])
  `
  log(`projects ${n(projects.length)}, memberships ${n(members.length)} (${elapsed(started)})`)
  const membersOf = new Map<string, string[]>(projects.map((p) => [p.id, []]))
  for (const m of members) membersOf.get(m.projectId)?.push(m.userId)

  // Tasks and comments by COPY, with the secondary indexes dropped during the load and
  // foreign-key triggers off on the loading connection (the rows are consistent by construction).
  const secondary = async (table: string) =>
    sql<{ name: string; definition: string }[]>`
      select i.indexrelid::regclass::text as name, pg_get_indexdef(i.indexrelid) as definition
      from pg_index i
      where i.indrelid = ${table}::regclass
        and not exists (select 1 from pg_constraint c where c.conindid = i.indexrelid)
    `
  const indexes = [...(await secondary('tasks')), ...(await secondary('task_comments'))]
  for (const index of indexes) await sql`drop index ${sql(index.name)}`

  const documentFrequency = new Uint32Array(vocabulary.length)
  const lastSeen = new Int32Array(vocabulary.length).fill(-1)
  const text = (words: number, task: number) => {
    const out: string[] = []
    for (let w = 0; w < words; w++) {
      const r = pickWord()
      if (lastSeen[r] !== task) {
        lastSeen[r] = task
        ;(documentFrequency[r] as number)++
      }
      out.push(vocabulary[r] as string)
    }
    return out.join(' ')
  }
  // Created over the last two years, oldest first; ids are v7 of the same instant.
  const span = 730 * 86_400_000
  const now = Date.now()
  const comments: string[] = []
  let commentCount = 0
  const taskChunks = function* () {
    for (let done = 0; done < options.tasks; done += ROWS_PER_CHUNK) {
      const rows: string[] = []
      const end = Math.min(options.tasks, done + ROWS_PER_CHUNK)
      for (let i = done; i < end; i++) {
        const created = now - span + Math.floor((i / options.tasks) * span)
        const id = Bun.randomUUIDv7('hex', created)
        const project = projects[i % projects.length] as { id: string }
        const people = membersOf.get(project.id) as string[]
        const creator = people[Math.floor(random() * people.length)] as string
        const assignee =
          random() < 0.7 ? (people[Math.floor(random() * people.length)] as string) : '\\N'
        const status = STATUSES[Math.floor(random() * STATUSES.length)] as string
        const priority = PRIORITIES[Math.floor(random() * PRIORITIES.length)] as string
        const tagCount = Math.floor(random() * 4)
        const tags = new Set<string>()
        for (let t = 0; t < tagCount; t++)
          tags.add(TAGS[Math.floor(random() * TAGS.length)] as string)
        const title = text(3 + Math.floor(random() * 6), i)
        const description = text(8 + Math.floor(random() * 18), i)
        const createdAt = new Date(created).toISOString()
        rows.push(
          `${id}\t${title}\t${description}\t${project.id}\t${assignee}\t${creator}\t${status}\t${priority}\t{${[...tags].join(',')}}\t${createdAt}\t${createdAt}\n`,
        )
        // About commentsPerTask comments per task, by members of its project.
        let k = commentsPerTask
        while (random() < k) {
          const author = people[Math.floor(random() * people.length)] as string
          const at = new Date(created + Math.floor(random() * 86_400_000)).toISOString()
          comments.push(
            `${Bun.randomUUIDv7('hex', created)}\t${id}\t${author}\t${vocabulary[pickWord()]} ${vocabulary[pickWord()]} ${vocabulary[pickWord()]}\t${at}\t${at}\n`,
          )
          commentCount++
          k -= 1
        }
      }
      yield rows.join('')
      if (done % 50_000 === 0 || end === options.tasks)
        log(`tasks ${n(end)} / ${n(options.tasks)} (${elapsed(started)})`)
    }
  }
  const loader = await sql.reserve()
  try {
    // Foreign-key triggers off for this session; needs a superuser, else the checks just run.
    await loader`set session_replication_role = replica`.catch(() => {})
    await pipeline(
      Readable.from(taskChunks()),
      await loader`
        copy tasks (id, title, description, project_id, assignee_id, created_by, status, priority,
          tags, created_at, updated_at) from stdin
      `.writable(),
    )
    await pipeline(
      Readable.from(
        (function* () {
          for (let i = 0; i < comments.length; i += ROWS_PER_CHUNK)
            yield comments.slice(i, i + ROWS_PER_CHUNK).join('')
        })(),
      ),
      await loader`
        copy task_comments (id, task_id, user_id, content, created_at, updated_at) from stdin
      `.writable(),
    )
    log(`comments ${n(commentCount)} (${elapsed(started)})`)
    await loader`reset session_replication_role`.catch(() => {})
    await loader`set maintenance_work_mem = '256MB'`
    for (const index of indexes) {
      await loader.unsafe(index.definition)
      log(`index ${index.name} (${elapsed(started)})`)
    }
    // What autovacuum would have done by now: statistics, hint bits and the visibility map (so
    // index-only scans are possible, as on a settled production table).
    await loader`vacuum (analyze) users, projects, project_members, tasks, task_comments`
  } finally {
    loader.release()
  }
  log(`vacuumed and analyzed (${elapsed(started)})`)

  // Search terms: the words whose share of tasks is nearest to each class's target.
  const share = (r: number) => (documentFrequency[r] as number) / Math.max(1, options.tasks)
  const ranks = Array.from(vocabulary, (_, r) => r)
  const nearest = (target: number, count: number, accept: (s: number) => boolean) =>
    ranks
      .filter((r) => accept(share(r)))
      .sort((a, b) => Math.abs(share(a) - target) - Math.abs(share(b) - target))
      .slice(0, count)
      .map((r) => vocabulary[r] as string)
  const terms = {
    veryCommon: nearest(0.2, 1, () => true)[0] as string,
    common: nearest(0.05, 5, () => true),
    mid: nearest(0.007, 5, () => true),
    rare: nearest(0.0002, 5, (s) => s > 0 && s < 0.0005),
  }
  log(
    `terms: ${Object.entries(terms)
      .map(([k, v]) => `${k} ${[v].flat().join(',')}`)
      .join('; ')}`,
  )
  return { password, users, projects, memberOf, terms }
}

if (import.meta.main) {
  const { arg, benchDatabase } = await import('./lib')
  const { default: postgresClient } = await import('postgres')
  const { migrate } = await import('../src/db')
  const db = await benchDatabase('taskapi_seed', 'bench/seed.ts')
  const sql = postgresClient(db.url, { max: 2, onnotice: () => {} })
  try {
    await migrate(sql)
    const result = await seedDataset(sql, {
      users: arg('users', 100),
      projects: arg('projects', 200),
      tasks: arg('tasks', 1_000_000),
      log: (line) => console.log(line),
    })
    console.log(`seeded ${result.users.length} users, ${result.projects.length} projects`)
  } finally {
    await sql.end({ timeout: 5 })
    if (arg('keep', 0) !== 1) await db.drop()
  }
  // benchDatabase keeps its admin connection open until drop(): end the process either way.
  process.exit(0)
}
