import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  lstatSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { mkdir } from 'node:fs/promises'
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
  /** On disk, whether each commit waits for fsync() (default true; EMBEDDED_FSYNC=false). */
  fsync?: boolean
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
 * could sit in the page cache and be lost to a power cut; this one flushes to the disk. It also
 * keeps every file private: Emscripten creates PostgreSQL's files by chmod to 0666 (umask does
 * not apply to chmod), so group and other bits are dropped from every mode it sets.
 */
class PrivateNodeFS extends NodeFS {
  constructor(
    root: string,
    private readonly durable: boolean,
  ) {
    super(root)
  }

  override async init(pg: PGlite, opts: EmscriptenOptions) {
    const { emscriptenOpts } = await super.init(pg, opts)
    const durable = this.durable
    const patch = (mod: PostgresMod) => {
      const nodefs = mod.NODEFS as unknown as NodeFsOps
      for (const ops of [nodefs.node_ops, nodefs.stream_ops]) {
        const setattr = ops.setattr
        if (typeof setattr === 'function')
          ops.setattr = (node: unknown, attr: { mode?: number }) =>
            setattr(node, attr.mode == null ? attr : { ...attr, mode: attr.mode & ~0o077 })
      }
      const mknod = nodefs.node_ops.mknod
      if (typeof mknod === 'function')
        nodefs.node_ops.mknod = (parent: unknown, name: string, mode: number, dev: number) =>
          mknod(parent, name, mode & ~0o077, dev)
      if (durable)
        nodefs.stream_ops.fsync = (stream: { nfd: number }) => {
          fsyncSync(stream.nfd)
          return 0
        }
    }
    return {
      emscriptenOpts: {
        ...emscriptenOpts,
        preRun: [...(emscriptenOpts.preRun ?? []), patch],
      },
    }
  }
}

// biome-ignore lint/suspicious/noExplicitAny: Emscripten's NODEFS operations are untyped
type NodeFsOps = { node_ops: Record<string, any>; stream_ops: Record<string, any> }

// PGlite starts PostgreSQL with -F (fsync off); on disk we want it on, through fsync() itself.
const DURABLE_START_PARAMS = [
  ...PGlite.defaultStartParams.filter((param) => param !== '-F'),
  '-c',
  'wal_sync_method=fsync',
]

const SOCKET_NAME = '.s.PGSQL.5432'
// A Unix socket path holds at most 107 bytes (Linux; 103 on macOS).
const MAX_SOCKET_PATH = 100

export class DataDirError extends Error {}

/** Starts PGlite behind a private Unix socket so the app reaches it through postgres.js. */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedPostgres> {
  let releaseLock = () => {}
  let pgDir: string | undefined
  let dataDir: string | undefined
  const durable = options.fsync ?? true
  if (options.dataDir) {
    dataDir = resolve(options.dataDir)
    // PGlite makes folders with the process umask: only a private folder keeps other local users
    // from reading or rewriting the database (password hashes included).
    process.umask(0o077)
    pgDir = join(dataDir, 'pg')
    await mkdir(pgDir, { recursive: true, mode: 0o700 })
    // A folder that existed with looser modes (or that an earlier version left open) is closed.
    makePrivate(dataDir)
    makePrivate(pgDir)
    releaseLock = takeLock(join(dataDir, 'taskapi.lock'))
  }
  removeStaleSocketFolders()
  let pglite: PGlite | undefined
  let socketDir: string | undefined
  try {
    if (pgDir) makeTreePrivate(pgDir)
    const fresh = pgDir !== undefined && !existsSync(join(pgDir, 'PG_VERSION'))
    pglite = await PGlite.create({
      ...(pgDir
        ? {
            fs: new PrivateNodeFS(pgDir, durable),
            ...(durable ? { startParams: DURABLE_START_PARAMS } : {}),
          }
        : {}),
      ...(options.loadDataDir ? { loadDataDir: options.loadDataDir } : {}),
      ...(await pgliteAssets(pgDir, options.loadDataDir !== undefined)),
    })
    // initdb writes the cluster without a single fsync; flush it once before anything relies on it.
    if (fresh && pgDir && durable) syncTree(pgDir)
    // The socket lives in the private DATA_DIR (under our lock, so a leftover one is stale), and
    // needs no temporary folder; a DATA_DIR too long for a socket path, or none, gets a private
    // (0700) folder in the temporary directory, removed at stop.
    const ownFolder =
      dataDir !== undefined && join(dataDir, SOCKET_NAME).length <= MAX_SOCKET_PATH
        ? dataDir
        : undefined
    if (ownFolder) rmSync(join(ownFolder, SOCKET_NAME), { force: true })
    socketDir = ownFolder ?? mkdtempSync(join(tmpdir(), 'taskapi-pg-'))
    const socketPath = join(socketDir, SOCKET_NAME)
    const server = new PGLiteSocketServer({ db: pglite, path: socketPath })
    await server.start()
    const db = pglite
    const dir = socketDir
    return {
      pglite: db,
      socketDir: dir,
      async stop() {
        await server.stop()
        await db.close()
        if (ownFolder) rmSync(socketPath, { force: true })
        else rmSync(dir, { recursive: true, force: true })
        releaseLock()
      },
    }
  } catch (error) {
    await pglite?.close().catch(() => {})
    if (socketDir && socketDir !== dataDir) rmSync(socketDir, { recursive: true, force: true })
    releaseLock()
    throw error
  }
}

/**
 * DATA_DIR becomes 0700 whatever it was; one this user cannot change (owned by someone else) is
 * refused, since the database and the JWT secret would be open to others.
 */
function makePrivate(dir: string) {
  const mode = statSync(dir).mode & 0o777
  if ((mode & 0o077) === 0) return
  try {
    chmodSync(dir, 0o700)
  } catch (error) {
    throw new DataDirError(
      `DATA_DIR: ${dir} is open to other users (mode ${mode.toString(8)}) and cannot be made private (${(error as NodeJS.ErrnoException).code}); use a folder of your own`,
    )
  }
}

// Files left readable or writable by others (PGlite before this version wrote them 0666).
function makeTreePrivate(path: string) {
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const child = join(path, entry.name)
    if (entry.isSymbolicLink()) continue
    const mode = lstatSync(child).mode & 0o777
    if (mode & 0o077) chmodSync(child, mode & 0o700)
    if (entry.isDirectory()) makeTreePrivate(child)
  }
}

// Earlier versions kept the socket in an mkdtemp folder that a SIGKILL left behind: remove the
// empty ones older than a minute (a live server's folder holds its socket, one being set up is
// seconds old, and rmdir never removes a full folder or another user's in a sticky /tmp).
function removeStaleSocketFolders() {
  try {
    for (const name of readdirSync(tmpdir())) {
      if (!name.startsWith('taskapi-pg-')) continue
      const folder = join(tmpdir(), name)
      try {
        if (Date.now() - lstatSync(folder).mtimeMs > 60_000) rmdirSync(folder)
      } catch {}
    }
  } catch {}
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

/**
 * PGlite does not stop a second process from opening the same folder, which corrupts it. The lock
 * file holds our PID and the kernel's start time of that process, so a PID reused after a crash
 * by an unrelated process is recognised as stale.
 */
function takeLock(path: string): () => void {
  const me = `${process.pid} ${startTimeOf(process.pid) ?? ''}`.trim()
  try {
    writeFileSync(path, me, { flag: 'wx', mode: 0o600 })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    const [pidText, started] = readFileSync(path, 'utf8').trim().split(/\s+/)
    const holder = Number.parseInt(pidText ?? '', 10)
    if (Number.isInteger(holder) && holder !== process.pid && isAlive(holder, started))
      throw new DataDirLockedError(`data folder is in use by process ${holder} (${path})`)
    writeFileSync(path, me, { mode: 0o600 })
    chmodSync(path, 0o600)
  }
  return () => rmSync(path, { force: true })
}

function isAlive(pid: number, started: string | undefined): boolean {
  try {
    process.kill(pid, 0)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  // Alive; the same process only if it started when the lock says (unknown: assume it is).
  const now = startTimeOf(pid)
  return started === undefined || now === undefined || now === started
}

/** The process's start time in clock ticks since boot (Linux /proc), undefined elsewhere. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Field 22; the command name (field 2) may hold spaces and parentheses, so count from its end.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}
