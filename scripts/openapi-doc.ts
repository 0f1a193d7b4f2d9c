/**
 * `bun scripts/openapi-doc.ts [FILE]`: writes the OpenAPI document the server serves at
 * /docs/json (to FILE, or standard output). The app is built as src/index.ts builds it and asked
 * through its own request handler; the document does not depend on the database, so none is
 * opened.
 */
import { createApp } from '../src/app'
import { loadConfig } from '../src/config'
import type { Database } from '../src/db'
import { createLogger } from '../src/logger'

const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', JWT_SECRET: 'x'.repeat(48) })
const noDatabase: Database = {
  sql: (() => {
    throw new Error('no database while generating the OpenAPI document')
  }) as unknown as Database['sql'],
  mode: 'embedded',
  ping: async () => false,
  close: async () => {},
}
const app = await createApp({
  config,
  db: noDatabase,
  log: createLogger('silent'),
  jwtSecret: config.jwtSecret as string,
})
const res = await app.handle(new Request('http://127.0.0.1:8080/docs/json'))
if (res.status !== 200) throw new Error(`/docs/json answered ${res.status}`)
const text = `${JSON.stringify(await res.json(), null, 2)}\n`
const out = process.argv[2]
if (out) await Bun.write(out, text)
else process.stdout.write(text)
