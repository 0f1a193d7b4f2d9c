import { setDefaultTimeout } from 'bun:test'

// Bun 1.4.4 ignores `[test] timeout` in bunfig.toml. Tests here start servers and databases
// (initdb, argon2), which a cold 2-core machine needs well over the 5 s default for.
setDefaultTimeout(60_000)
// It reaches only the first test file of a run (neither does `[test] timeout` in bunfig.toml, nor a
// preloaded beforeAll): every test file calls setDefaultTimeout(60_000) itself, and
// `bun test --timeout 60000` would do the same for the whole run.
// It does not reach hooks: every beforeAll/afterAll/beforeEach/afterEach passes its own timeout
// (60 s, or 30 s for a close), else a server close under load fails at 5 s.
