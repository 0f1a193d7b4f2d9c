/**
 * `bun scripts/openapi-doc.ts [FILE]`: writes the OpenAPI document the server serves at
 * /docs/json (to FILE, or standard output). The app is built as src/index.ts builds it, on an
 * in-memory embedded database (the real-time hub needs one to start), and asked through its own
 * request handler.
 */
import { createApp } from '../src/app'
import { loadConfig } from '../src/config'
import { migrate, openDatabase } from '../src/db'
import { createLogger } from '../src/logger'

const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', JWT_SECRET: 'x'.repeat(48) })
const log = createLogger('silent')
// No data folder: the database lives in memory and is gone when this script ends.
const db = await openDatabase(config, log, {})
await migrate(db.sql)
const app = await createApp({ config, db, log, jwtSecret: config.jwtSecret as string })
const res = await app.handle(new Request('http://127.0.0.1:8080/docs/json'))
if (res.status !== 200) throw new Error(`/docs/json answered ${res.status}`)
const text = `${JSON.stringify(await res.json(), null, 2)}\n`
const out = process.argv[2]
if (out) await Bun.write(out, text)
else process.stdout.write(text)
// The real-time hub keeps timers and a listener; nothing else is left to do.
process.exit(0)
