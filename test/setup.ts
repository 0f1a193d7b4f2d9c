import { setDefaultTimeout } from 'bun:test'

// Bun 1.4.4 ignores `[test] timeout` in bunfig.toml. Tests here start servers and databases
// (initdb, argon2), which a cold 2-core machine needs well over the 5 s default for.
setDefaultTimeout(60_000)
