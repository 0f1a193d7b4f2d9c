import type { Config } from './config'
import type { Sql } from './db'
import type { Logger } from './logger'
import type { PasswordHasher } from './modules/auth/passwords'
import type { SessionCache } from './modules/auth/session-cache'
import type { AccessTokens } from './modules/auth/tokens'

/** What services need from the running server; built once in app.ts, never Elysia's Context. */
export type AppContext = {
  config: Config
  sql: Sql
  log: Logger
  tokens: AccessTokens
  passwords: PasswordHasher
  sessions: SessionCache
}

/** The authenticated caller, as read (through a short cache) from its session row. */
export type Principal = {
  userId: string
  sessionId: string
  roles: string[]
  permissions: ReadonlySet<string>
  /** Set when the caller is an API token (then `sessionId` is the token's id). */
  token?: TokenGrant
}

/** What an API token adds to its owner's rights: limits, never more. */
export type TokenGrant = {
  scopes: ReadonlySet<string>
  /** Lower-case project ids the token is limited to; undefined for every project. */
  projectIds?: readonly string[]
  /** When the token expires (epoch milliseconds); undefined for never. */
  expiresAt?: number
}
