import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { chmod, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import initdbWasm from '@electric-sql/pglite/initdb.wasm' with { type: 'file' }
import { NodeFS } from '@electric-sql/pglite/nodefs'
import pgliteData from '@electric-sql/pglite/pglite.data' with { type: 'file' }
import pgliteWasm from '@electric-sql/pglite/pglite.wasm' with { type: 'file' }
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'

export type EmbeddedOptions = {
  /** Folder that holds the database; undefined keeps it in memory. */
  dataDir?: string
  /** A dump from PGlite.dumpDataDir() to start from (tests use a migrated template). */
  loadDataDir?: Blob
}

export type EmbeddedPostgres = {
  pglite: PGlite
  /** Folder of the Unix socket, usable as postgres.js `host` with port 5432. */
  socketDir: string
  stop(): Promise<void>
}

// The three assets are imported as files so that `bun build --compile` embeds them; PGlite's own
// lookup beside its module fails inside a compiled binary. initdb runs only for a new database
// (PGlite resumes a folder that has PG_VERSION, and a dump is loaded as it is), so its module is
// compiled only then: reading and compiling it is wasted work on every other start.
async function pgliteAssets(pgDir: string | undefined, fromDump: boolean) {
  const needsInitdb = !fromDump && !(pgDir && existsSync(join(pgDir, 'PG_VERSION')))
  const [pgliteWasmModule, initdbWasmModule] = await Promise.all([
    WebAssembly.compile(await Bun.file(pgliteWasm).arrayBuffer()),
    needsInitdb
      ? WebAssembly.compile(await Bun.file(initdbWasm).arrayBuffer())
      : Promise.resolve(undefined),
  ])
  return {
    pgliteWasmModule,
    ...(initdbWasmModule ? { initdbWasmModule } : {}),
    fsBundle: Bun.file(pgliteData),
  }
}

type EmscriptenOptions = Parameters<NodeFS['init']>[1]
type PostgresMod = Parameters<NonNullable<EmscriptenOptions['preRun']>[number]>[0]

/**
 * PGlite's Node filesystem has no fsync (Emscripten's fdatasync is a no-op as well), so a commit
 * could sit in the page cache and be lost to a power cut; this one flushes to the disk.
 */
class DurableNodeFS extends NodeFS {
  override async init(pg: PGlite, opts: EmscriptenOptions) {
    const { emscriptenOpts } = await super.init(pg, opts)
    const flushToDisk = (mod: PostgresMod) => {
      const ops = (mod.NODEFS as unknown as { stream_ops: Record<string, unknown> }).stream_ops
      ops.fsync = (stream: { nfd: number }) => {
        fsyncSync(stream.nfd)
        return 0
      }
    }
    return {
      emscriptenOpts: {
        ...emscriptenOpts,
        preRun: [...(emscriptenOpts.preRun ?? []), flushToDisk],
      },
    }
  }
}

// PGlite starts PostgreSQL with -F (fsync off); on disk we want it on, through fsync() itself.
const DURABLE_START_PARAMS = [
  ...PGlite.defaultStartParams.filter((param) => param !== '-F'),
  '-c',
  'wal_sync_method=fsync',
]

/** Starts PGlite behind a private Unix socket so the app reaches it through postgres.js. */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedPostgres> {
  let releaseLock = () => {}
  let pgDir: string | undefined
  if (options.dataDir) {
    const dataDir = resolve(options.dataDir)
    // PGlite makes folders with the process umask and its files 0666: only a private folder keeps
    // other local users from reading or rewriting the database (password hashes included).
    process.umask(0o077)
    pgDir = join(dataDir, 'pg')
    await mkdir(pgDir, { recursive: true, mode: 0o700 })
    // A folder left open by an earlier version is closed too.
    await chmod(pgDir, 0o700)
    releaseLock = takeLock(join(dataDir, 'taskapi.lock'))
  }
  let pglite: PGlite | undefined
  try {
    const fresh = pgDir !== undefined && !existsSync(join(pgDir, 'PG_VERSION'))
    pglite = await PGlite.create({
      ...(pgDir ? { fs: new DurableNodeFS(pgDir), startParams: DURABLE_START_PARAMS } : {}),
      ...(options.loadDataDir ? { loadDataDir: options.loadDataDir } : {}),
      ...(await pgliteAssets(pgDir, options.loadDataDir !== undefined)),
    })
    // initdb writes the cluster without a single fsync; flush it once before anything relies on it.
    if (fresh && pgDir) syncTree(pgDir)
    // mkdtemp creates the folder with mode 0700: only this user can reach the socket.
    const socketDir = mkdtempSync(join(tmpdir(), 'taskapi-pg-'))
    const server = new PGLiteSocketServer({ db: pglite, path: join(socketDir, '.s.PGSQL.5432') })
    await server.start()
    const db = pglite
    return {
      pglite: db,
      socketDir,
      async stop() {
        await server.stop()
        await db.close()
        rmSync(socketDir, { recursive: true, force: true })
        releaseLock()
      },
    }
  } catch (error) {
    await pglite?.close().catch(() => {})
    releaseLock()
    throw error
  }
}

function syncTree(path: string) {
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const child = join(path, entry.name)
    if (entry.isDirectory()) syncTree(child)
    else if (entry.isFile()) syncPath(child)
  }
  syncPath(path)
}

function syncPath(path: string) {
  const fd = openSync(path, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

export class DataDirLockedError extends Error {}

// PGlite does not stop a second process from opening the same folder, which corrupts it.
function takeLock(path: string): () => void {
  try {
    writeFileSync(path, String(process.pid), { flag: 'wx', mode: 0o600 })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    const holder = Number.parseInt(readFileSync(path, 'utf8'), 10)
    if (Number.isInteger(holder) && holder !== process.pid && isAlive(holder))
      throw new DataDirLockedError(`data folder is in use by process ${holder} (${path})`)
    writeFileSync(path, String(process.pid), { mode: 0o600 })
  }
  return () => rmSync(path, { force: true })
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}
