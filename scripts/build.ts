/**
 * `bun run build`: compiles src/index.ts into the standalone executable dist/taskapi.
 *
 * - The compiler runs as a child process with a scrubbed environment (PATH, HOME, TMPDIR only)
 *   and without .env files, and with `--env=disable`, so no value of the build environment can
 *   be inlined (stack-pitfalls B6). Only `process.env.NODE_ENV` is defined, as "production":
 *   without it Bun inlines "development".
 * - Whitespace and syntax minification only: minified identifiers break Elysia's AOT code
 *   generation (E9).
 * - The executable does not read .env or bunfig.toml from its working folder at run time: its
 *   configuration is its process environment, and a stray bunfig.toml could preload code.
 * - Afterwards the build is checked: the metafile must list the PGlite assets, the docs page's
 *   Scalar bundle and every migration (they are embedded, B7), and the binary must contain no secret-looking value of this
 *   process's environment (TASKAPI_BUILD_CANARY included).
 *
 * Options: --outfile=<path> (default dist/taskapi), --no-sourcemap, --bytecode (precompiled
 * bytecode: about 5 MiB larger and 0.1 to 0.2 s faster to start here; off by default because
 * Elysia reads handlers' source text and this mode has had less testing).
 */
import { readdirSync, rmSync, statSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { dirname, join, relative, resolve } from 'node:path'

const root = resolve(import.meta.dir, '..')
const args = process.argv.slice(2)
const outfile = resolve(
  root,
  args.find((a) => a.startsWith('--outfile='))?.slice('--outfile='.length) ?? 'dist/taskapi',
)
const sourcemap = !args.includes('--no-sourcemap')
const bytecode = args.includes('--bytecode')
const known = /^(--outfile=.+|--no-sourcemap|--bytecode)$/
const unknown = args.filter((a) => !known.test(a))
const metafile = `${outfile}.meta.json`

function fail(message: string): never {
  console.error(`build: ${message}`)
  process.exit(1)
}

if (unknown.length > 0) fail(`unknown option(s): ${unknown.join(' ')}`)
await mkdir(dirname(outfile), { recursive: true })
rmSync(outfile, { force: true })
rmSync(`${outfile}.map`, { force: true })

// Only what the compiler needs to find itself and a temporary folder; nothing else leaks in.
const cleanEnv: Record<string, string> = { NODE_ENV: 'production' }
for (const key of ['PATH', 'HOME', 'TMPDIR']) {
  const value = process.env[key]
  if (value) cleanEnv[key] = value
}

const command = [
  process.execPath,
  '--no-env-file',
  'build',
  'src/index.ts',
  '--compile',
  '--target=bun',
  `--outfile=${outfile}`,
  `--metafile=${metafile}`,
  '--env=disable',
  '--define=process.env.NODE_ENV:"production"',
  '--minify-whitespace',
  '--minify-syntax',
  '--no-compile-autoload-dotenv',
  '--no-compile-autoload-bunfig',
  // Fail on computed imports such as `./x/${name}` (B7); fully opaque ones (file-type's import
  // of Node built-ins) pass through.
  '--allow-unresolved=',
  ...(sourcemap ? ['--sourcemap=linked'] : []),
  ...(bytecode ? ['--bytecode', '--format=esm'] : []),
]

const started = performance.now()
const child = Bun.spawn(command, { cwd: root, env: cleanEnv, stdout: 'inherit', stderr: 'inherit' })
if ((await child.exited) !== 0) fail(`bun build exited with ${child.exitCode}`)
// The source map is embedded in the executable (stack traces show src/ positions); the copy
// written beside it is not needed.
rmSync(`${outfile}.map`, { force: true })

// 1. Everything the binary loads at run time must be inside it.
type Metafile = { inputs: Record<string, unknown> }
const meta = (await Bun.file(metafile).json()) as Metafile
const inputs = Object.keys(meta.inputs)
const migrations = readdirSync(join(root, 'sql'))
  .filter((f) => f.endsWith('.sql'))
  .map((f) => `sql/${f}`)
const required = [
  '@electric-sql/pglite/dist/pglite.wasm',
  '@electric-sql/pglite/dist/initdb.wasm',
  '@electric-sql/pglite/dist/pglite.data',
  // The docs page's Scalar bundle (src/docs-ui.ts).
  '@scalar/api-reference/dist/browser/standalone.js',
  ...migrations,
]
const missing = required.filter((want) => !inputs.some((input) => input.endsWith(want)))
if (missing.length > 0) fail(`not embedded in the binary: ${missing.join(', ')}`)

// 2. No secret of the build environment may appear in the binary (belt and braces for 1.).
const SECRET_NAME = /SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|API_?KEY|CANARY|DATABASE_URL/i
const secrets = Object.entries(process.env).filter(
  (entry): entry is [string, string] =>
    SECRET_NAME.test(entry[0]) && typeof entry[1] === 'string' && entry[1].length >= 8,
)
const binary = Buffer.from(await Bun.file(outfile).arrayBuffer())
const leaked = secrets.filter(([, value]) => binary.includes(value)).map(([name]) => name)
if (leaked.length > 0) {
  rmSync(outfile, { force: true })
  fail(`the binary contained the value of ${leaked.join(', ')}; it was deleted`)
}

const size = statSync(outfile).size
const seconds = ((performance.now() - started) / 1000).toFixed(1)
console.log(
  `build: ${relative(root, outfile)} ${size} bytes (${(size / 1024 / 1024).toFixed(1)} MiB) in ${seconds} s; ` +
    `embedded: ${required.length} assets and migrations; secret scan: ${secrets.length} build env value(s), none found`,
)
