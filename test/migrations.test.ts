import { describe, expect, it, setDefaultTimeout } from 'bun:test'
import { readdir } from 'node:fs/promises'
import postgres from 'postgres'
import { migrate, migrations, openDatabase } from '../src/db'
import { createLogger } from '../src/logger'
import { freshDatabase, scratchDatabase, testConfig } from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

const log = createLogger('silent')

/** Two pools on one new, empty database (two connections to one engine when embedded). */
async function emptyDatabasePair() {
  const config = testConfig()
  if (!config.databaseUrl) {
    const db = await openDatabase(config, log, {})
    return { a: db.sql, b: db.sql, close: () => db.close() }
  }
  const scratch = await scratchDatabase(config.databaseUrl)
  const a = postgres(scratch.url, { max: 2, onnotice: () => {} })
  const b = postgres(scratch.url, { max: 2, onnotice: () => {} })
  return {
    a,
    b,
    async close() {
      await a.end()
      await b.end()
      await scratch.drop()
    },
  }
}

describe('migrations', () => {
  it('embed every file of sql/ in order, numbered from 1', async () => {
    const files = (await readdir(new URL('../sql', import.meta.url)))
      .filter((f) => f.endsWith('.sql'))
      .sort()
    expect(migrations.map((m) => `${m.name}.sql`)).toEqual(files)
    // Each version is its file's number; numbers are reserved per issue, so one may be missing.
    expect(migrations.map((m) => m.version)).toEqual(files.map((f) => Number(f.slice(0, 4))))
  })

  it('apply once when two instances migrate at the same time', async () => {
    const pair = await emptyDatabasePair()
    try {
      const [first, second] = await Promise.all([migrate(pair.a), migrate(pair.b)])
      expect([...first, ...second]).toEqual(migrations.map((m) => m.name))
      const rows = await pair.a<{ version: number }[]>`select version from schema_migrations`
      expect(rows.map((r) => r.version)).toEqual(migrations.map((m) => m.version))
      expect(await migrate(pair.a)).toEqual([])
    } finally {
      await pair.close()
    }
  }, 60_000)

  it('have the tasks table vacuumed after 2% of it changed, not PostgreSQL’s 20%', async () => {
    const db = await freshDatabase(testConfig())
    try {
      const [row] = await db.sql<{ reloptions: string[] | null }[]>`
        select reloptions from pg_class where oid = 'tasks'::regclass
      `
      expect([...(row?.reloptions ?? [])].sort()).toEqual([
        'autovacuum_analyze_scale_factor=0.02',
        'autovacuum_vacuum_insert_scale_factor=0.02',
        'autovacuum_vacuum_scale_factor=0.02',
      ])
    } finally {
      await db.close()
    }
  })

  it('give time-ordered version 7 UUIDs', async () => {
    const db = await freshDatabase(testConfig())
    try {
      const ids: string[] = []
      for (let i = 0; i < 3; i++) {
        const [row] = await db.sql<{ id: string }[]>`select uuid_generate_v7()::text as id`
        ids.push(row?.id as string)
        await Bun.sleep(2)
      }
      for (const id of ids)
        expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
      expect([...ids].sort()).toEqual(ids)
      const embeddedMs = Number.parseInt(ids[0]?.replace(/-/g, '').slice(0, 12) ?? '', 16)
      expect(Math.abs(embeddedMs - Date.now())).toBeLessThan(60_000)
    } finally {
      await db.close()
    }
  }, 60_000)
})
