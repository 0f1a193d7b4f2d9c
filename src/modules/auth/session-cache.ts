import type { Principal } from '../../context'

/** `userId`: whose session the database said it is (none for one ended by `forget`). */
type Entry = { principal: Principal | null; userId?: string; until: number }

/**
 * Sessions checked on every request, kept for a few seconds so a token costs no query each time.
 * `null` remembers an ended session, or one the database refused (an API token of a deactivated
 * user). Revocation on this instance takes effect at once; other instances see it when their
 * entry expires (SESSION_CACHE_TTL_MS).
 */
export class SessionCache {
  private readonly entries = new Map<string, Entry>()
  // When each user's sessions were last revoked or changed here (forgetUser): a lookup that read
  // the database before that moment must not put the old state back into the cache.
  private readonly userRevokedAt = new Map<string, number>()

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  get(sessionId: string): Principal | null | undefined {
    const entry = this.entries.get(sessionId)
    if (!entry) return undefined
    if (entry.until < performance.now()) {
      this.entries.delete(sessionId)
      return undefined
    }
    return entry.principal
  }

  /**
   * Caches what a lookup started at `readAt` found for a session of `userId` (live, or refused:
   * null), unless the session ended or the user changed since.
   */
  set(
    sessionId: string,
    principal: Principal | null,
    readAt: number,
    userId: string | undefined = principal?.userId,
  ) {
    if (this.ttlMs === 0) return
    if (this.entries.get(sessionId)?.principal === null) return
    if (userId !== undefined && (this.userRevokedAt.get(userId) ?? -1) >= readAt) return
    this.remember(sessionId, principal, userId)
  }

  /** The session has ended: remember it as ended, whatever a lookup in flight finds. */
  forget(sessionId: string) {
    this.remember(sessionId, null)
  }

  /**
   * Every session of the user but `keepSessionId` has ended, or the user changed (roles,
   * deactivation, reactivation): what is cached of them is read again, refusals included, so a
   * reactivated user's API tokens work at once.
   */
  forgetUser(userId: string, keepSessionId?: string) {
    const now = performance.now()
    for (const [sessionId, entry] of this.entries)
      if (entry.userId === userId && sessionId !== keepSessionId) this.entries.delete(sessionId)
    if (this.userRevokedAt.size >= this.maxEntries) this.userRevokedAt.clear()
    this.userRevokedAt.set(userId, now)
  }

  private remember(sessionId: string, principal: Principal | null, userId?: string) {
    this.entries.delete(sessionId)
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next()
      if (!oldest.done) this.entries.delete(oldest.value)
    }
    this.entries.set(sessionId, { principal, userId, until: performance.now() + this.ttlMs })
  }
}

type Verify = (token: string) => Promise<{ sub: string; sid: string } | undefined>

/**
 * Access tokens whose signature and claims were checked, by the token string, until the token's
 * own `exp`: an HMAC check and jose's key import are the largest cost of an authenticated read,
 * and the same token comes back on every request. Only good tokens are kept (a forged one is
 * checked again each time, so the map cannot be filled with garbage); the map holds at most
 * `maxEntries` tokens, the oldest going first. The session behind a token is still looked up
 * (through SessionCache) on every request, so logout and revocation work as before.
 */
export function cacheVerifiedTokens<T extends { verify: Verify }>(
  tokens: T,
  maxEntries = 10_000,
): T {
  const verified = new Map<string, { claims: { sub: string; sid: string }; expiresAt: number }>()
  const verify: Verify = async (token) => {
    const hit = verified.get(token)
    if (hit) {
      if (hit.expiresAt > Date.now()) return hit.claims
      verified.delete(token)
    }
    const claims = await tokens.verify(token)
    const exp = claims ? expOf(token) : undefined
    if (!claims || exp === undefined) return claims
    if (verified.size >= maxEntries) {
      const oldest = verified.keys().next()
      if (!oldest.done) verified.delete(oldest.value)
    }
    // Kept until exp, without the verifier's clock tolerance: never longer than jose accepts it.
    verified.set(token, { claims, expiresAt: exp * 1000 })
    return claims
  }
  return { ...tokens, verify }
}

/** The `exp` claim (seconds) of a JWT whose signature was already checked. */
function expOf(token: string): number | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString())
    return typeof payload.exp === 'number' ? payload.exp : undefined
  } catch {
    return undefined
  }
}
