import { describe, expect, it, setDefaultTimeout } from 'bun:test'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, loadConfig, resolveJwtSecret, SETTINGS } from '../src/config'
import { freshDatabase, testConfig } from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

const problemsOf = (env: Record<string, string>) => {
  try {
    loadConfig(env)
  } catch (error) {
    if (error instanceof ConfigError) return error.problems
    throw error
  }
  return []
}

describe('loadConfig', () => {
  it('gives every setting its documented default', () => {
    const config = loadConfig({})
    expect(config).toMatchObject({
      env: 'development',
      host: '0.0.0.0',
      port: 8080,
      databaseUrl: undefined,
      dataDir: './data',
      accessTokenTtl: 900,
      refreshTokenTtl: 2_592_000,
      logLevel: 'info',
      corsOrigins: '*',
      trustProxy: false,
    })
  })

  it('converts numbers, booleans and origin lists', () => {
    const config = loadConfig({
      PORT: '9000',
      TRUST_PROXY: 'true',
      CORS_ORIGINS: 'https://a.example, https://b.example',
      DATABASE_URL: 'postgres://u@db:5432/app',
    })
    expect(config.port).toBe(9000)
    expect(config.trustProxy).toBe(true)
    expect(config.corsOrigins).toEqual(['https://a.example', 'https://b.example'])
    expect(config.databaseUrl).toBe('postgres://u@db:5432/app')
  })

  it('reads REUSE_PORT (off by default) and EMBEDDED_FSYNC (on by default)', () => {
    expect(loadConfig({})).toMatchObject({ reusePort: false, embeddedFsync: true })
    expect(loadConfig({ REUSE_PORT: 'true', EMBEDDED_FSYNC: 'false' })).toMatchObject({
      reusePort: true,
      embeddedFsync: false,
    })
    expect(problemsOf({ EMBEDDED_FSYNC: 'no' })).toEqual(['EMBEDDED_FSYNC: must be true or false'])
  })

  it('reports a short JWT_SECRET together with the other bad values', () => {
    expect(problemsOf({ PORT: '1e3', JWT_SECRET: 'short' })).toEqual([
      'PORT: must be a whole number from 0 to 65535',
      'JWT_SECRET: must be at least 32 bytes',
    ])
    expect(
      problemsOf({
        NODE_ENV: 'production',
        ACCESS_TOKEN_TTL: '1e6',
        DATABASE_URL: 'postgres://db.example/taskapi',
      }),
    ).toEqual([
      'ACCESS_TOKEN_TTL: must be a whole number from 1 to 31536000',
      'JWT_SECRET: required when NODE_ENV=production and DATABASE_URL is set',
    ])
  })

  it('names every bad value at once', () => {
    const problems = problemsOf({ PORT: 'eighty', LOG_LEVEL: 'loud', ACCESS_TOKEN_TTL: '0' })
    expect(problems.some((p) => p.startsWith('PORT'))).toBe(true)
    expect(problems.some((p) => p.startsWith('LOG_LEVEL'))).toBe(true)
    expect(problems.some((p) => p.startsWith('ACCESS_TOKEN_TTL'))).toBe(true)
  })

  it('reads numbers only as plain decimal digits, never truncating or guessing', () => {
    for (const bad of '1e3 80.5 80.0 0x1F 0b101 +80 -1 1_000 true 80abc'.split(' ')) {
      expect(`${bad}: ${problemsOf({ PORT: bad })}`).toBe(
        `${bad}: PORT: must be a whole number from 0 to 65535`,
      )
    }
    expect(loadConfig({ PORT: ' 08080 ', MAX_BODY_BYTES: '20480' })).toMatchObject({
      port: 8080,
      maxBodyBytes: 20480,
    })
    expect(problemsOf({ SHUTDOWN_TIMEOUT_MS: '9'.repeat(30) })).toEqual([
      'SHUTDOWN_TIMEOUT_MS: must be a whole number from 0 to 3600000',
    ])
  })

  it('reads DATABASE_RANDOM_PAGE_COST as a decimal number: 1.1 by default, 0 to keep the database’s', () => {
    expect(loadConfig({}).db.randomPageCost).toBe(1.1)
    expect(loadConfig({ DATABASE_RANDOM_PAGE_COST: '4' }).db.randomPageCost).toBe(4)
    expect(loadConfig({ DATABASE_RANDOM_PAGE_COST: '0' }).db.randomPageCost).toBe(0)
    expect(loadConfig({ DATABASE_RANDOM_PAGE_COST: '1.25' }).db.randomPageCost).toBe(1.25)
    for (const bad of '1e3 -1 1. .5 101 abc 1,1'.split(' ')) {
      expect(`${bad}: ${problemsOf({ DATABASE_RANDOM_PAGE_COST: bad })}`).toBe(
        `${bad}: DATABASE_RANDOM_PAGE_COST: must be a decimal number from 0 to 100`,
      )
    }
  })

  it('reads booleans as true/false/1/0 in any case and names the allowed values otherwise', () => {
    expect(loadConfig({ TRUST_PROXY: 'TRUE', DATABASE_PREPARE: '0' })).toMatchObject({
      trustProxy: true,
      db: { prepare: false },
    })
    expect(problemsOf({ TRUST_PROXY: 'yes' })).toEqual(['TRUST_PROXY: must be true or false'])
    expect(problemsOf({ NODE_ENV: 'prod', LOG_LEVEL: 'loud' })).toEqual([
      'NODE_ENV: must be one of development, production, test',
      'LOG_LEVEL: must be one of debug, info, warn, error, silent',
    ])
  })

  it('rejects a DATABASE_URL that is not a postgres URL', () => {
    expect(problemsOf({ DATABASE_URL: 'mysql://x' })[0]).toStartWith('DATABASE_URL')
  })

  it('requires a JWT_SECRET of at least 32 bytes in production on PostgreSQL', () => {
    const url = 'postgres://u@db:5432/taskapi'
    expect(problemsOf({ NODE_ENV: 'production', DATABASE_URL: url })).toEqual([
      'JWT_SECRET: required when NODE_ENV=production and DATABASE_URL is set',
    ])
    expect(problemsOf({ NODE_ENV: 'production', JWT_SECRET: 'short' })[0]).toContain('32 bytes')
    expect(problemsOf({ NODE_ENV: 'production', JWT_SECRET: 's'.repeat(32) })).toEqual([])
  })

  it('lets production on the embedded database start without JWT_SECRET', () => {
    expect(problemsOf({ NODE_ENV: 'production' })).toEqual([])
    expect(loadConfig({ NODE_ENV: 'production' }).jwtSecret).toBeUndefined()
  })
})

describe('database sessions', () => {
  it('plan with DATABASE_RANDOM_PAGE_COST, or with the database’s own setting when it is 0', async () => {
    const cases: [Record<string, string>, string][] = [
      [{}, '1.1'],
      [{ DATABASE_RANDOM_PAGE_COST: '2.5' }, '2.5'],
      // PostgreSQL's (and PGlite's) own default.
      [{ DATABASE_RANDOM_PAGE_COST: '0' }, '4'],
    ]
    for (const [env, expected] of cases) {
      const db = await freshDatabase(testConfig(env))
      try {
        const rows = await db.sql<{ random_page_cost: string }[]>`show random_page_cost`
        expect(rows[0]?.random_page_cost).toBe(expected)
      } finally {
        await db.close()
      }
    }
  })
})

describe('resolveJwtSecret', () => {
  it('generates the secret of production on the embedded database into DATA_DIR, mode 0600', async () => {
    const root = await mkdtemp(join(tmpdir(), 'taskapi-cfg-'))
    const config = loadConfig({ NODE_ENV: 'production', DATA_DIR: root })
    const { secret, generated } = await resolveJwtSecret(config)
    expect(generated).toBe(true)
    expect(Buffer.byteLength(secret)).toBeGreaterThanOrEqual(32)
    expect((await stat(join(root, 'jwt-secret'))).mode & 0o777).toBe(0o600)
    expect((await resolveJwtSecret(config)).secret).toBe(secret)
    await rm(root, { recursive: true })
  })

  it('generates a secret once outside production and keeps it in DATA_DIR', async () => {
    const root = await mkdtemp(join(tmpdir(), 'taskapi-cfg-'))
    const dataDir = join(root, 'nested')
    const config = loadConfig({ DATA_DIR: dataDir })
    const first = await resolveJwtSecret(config)
    const second = await resolveJwtSecret(config)
    expect(first.generated).toBe(true)
    expect(first.secret.length).toBeGreaterThanOrEqual(32)
    expect(second.secret).toBe(first.secret)
    expect((await readFile(join(dataDir, 'jwt-secret'), 'utf8')).trim()).toBe(first.secret)
    expect((await stat(join(dataDir, 'jwt-secret'))).mode & 0o077).toBe(0)
    await rm(root, { recursive: true })
  })

  it('uses JWT_SECRET when it is set', async () => {
    const secret = 'x'.repeat(40)
    expect(await resolveJwtSecret(loadConfig({ JWT_SECRET: secret }))).toEqual({
      secret,
      generated: false,
    })
  })
})

describe('documentation of settings', () => {
  it('lists every setting in .env.example and the README', async () => {
    const root = new URL('..', import.meta.url)
    const example = await Bun.file(new URL('.env.example', root)).text()
    const readme = await Bun.file(new URL('README.md', root)).text()
    for (const name of SETTINGS) {
      expect(`${name}:${example.includes(`${name}=`)}`).toBe(`${name}:true`)
      expect(`${name}:${readme.includes(`\`${name}\``)}`).toBe(`${name}:true`)
    }
  })
})
