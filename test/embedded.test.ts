import { afterAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { mkdtemp, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startEmbeddedPostgres } from '../src/embedded'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

const folders: string[] = []
afterAll(async () => {
  for (const folder of folders) await rm(folder, { recursive: true, force: true })
}, 60_000)

type StreamOps = { fsync?: (stream: unknown) => number }
const streamOps = (pglite: { Module: { NODEFS: unknown } }) =>
  (pglite.Module.NODEFS as { stream_ops: StreamOps }).stream_ops

describe('the embedded database on disk', () => {
  it('runs with fsync on and flushes every commit through fsync()', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'taskapi-embedded-'))
    folders.push(dataDir)
    const first = await startEmbeddedPostgres({ dataDir })
    const settings = await first.pglite.query<{ name: string; setting: string }>(
      `select name, setting from pg_settings
       where name in ('fsync', 'wal_sync_method', 'synchronous_commit') order by name`,
    )
    expect(settings.rows).toEqual([
      { name: 'fsync', setting: 'on' },
      { name: 'synchronous_commit', setting: 'on' },
      { name: 'wal_sync_method', setting: 'fsync' },
    ])

    // Count the flushes PostgreSQL asks the filesystem for while three transactions commit.
    const ops = streamOps(first.pglite)
    const flush = ops.fsync
    expect(typeof flush).toBe('function')
    let flushes = 0
    ops.fsync = (stream) => {
      flushes += 1
      return (flush as NonNullable<StreamOps['fsync']>)(stream)
    }
    await first.pglite.exec('create table kept (n int)')
    for (const n of [1, 2]) await first.pglite.query('insert into kept values ($1)', [n])
    expect(flushes).toBeGreaterThanOrEqual(3)
    await first.stop()

    const again = await startEmbeddedPostgres({ dataDir })
    const kept = await again.pglite.query<{ n: number }>('select n from kept order by n')
    expect(kept.rows).toEqual([{ n: 1 }, { n: 2 }])
    await again.stop()
  }, 120_000)

  it('with fsync false (EMBEDDED_FSYNC=false) commits without waiting for the disk', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'taskapi-embedded-'))
    folders.push(dataDir)
    // Socket folders a SIGKILL left behind in earlier versions: an empty one older than a minute
    // goes; one still holding something (a live server's socket) stays.
    const stale = await mkdtemp(join(tmpdir(), 'taskapi-pg-'))
    const full = await mkdtemp(join(tmpdir(), 'taskapi-pg-'))
    folders.push(stale, full)
    await writeFile(join(full, '.s.PGSQL.5432'), '')
    const past = new Date(Date.now() - 120_000)
    for (const folder of [stale, full]) await utimes(folder, past, past)
    const db = await startEmbeddedPostgres({ dataDir, fsync: false })
    expect(await stat(stale).catch(() => 'gone')).toBe('gone')
    expect((await stat(full)).isDirectory()).toBe(true)
    const fsync = await db.pglite.query<{ setting: string }>(
      `select setting from pg_settings where name = 'fsync'`,
    )
    expect(fsync.rows).toEqual([{ setting: 'off' }])
    await db.pglite.exec('create table fast (n int); insert into fast values (1)')
    // Still private, and the socket sits in the data folder, gone after stop.
    expect(db.socketDir).toBe(dataDir)
    expect((await stat(join(dataDir, '.s.PGSQL.5432'))).isSocket()).toBe(true)
    await db.stop()
    expect(await stat(join(dataDir, '.s.PGSQL.5432')).catch(() => 'gone')).toBe('gone')
  }, 120_000)
})
