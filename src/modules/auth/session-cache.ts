import type { Principal } from '../../context'

type Entry = { principal: Principal | null; until: number }

/**
 * Sessions checked on every request, kept for a few seconds so a token costs no query each time.
 * `null` remembers an ended session. Revocation on this instance takes effect at once; other
 * instances see it when their entry expires (SESSION_CACHE_TTL_MS).
 */
export class SessionCache {
  private readonly entries = new Map<string, Entry>()
  // When each user's sessions were last revoked here: a lookup that read the database before
  // that moment must not put the old state back into the cache.
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

  /** Caches what a lookup started at `readAt` found, unless a revocation happened since. */
  set(sessionId: string, principal: Principal | null, readAt: number) {
    if (this.ttlMs === 0) return
    if (this.entries.get(sessionId)?.principal === null) return
    if (principal && (this.userRevokedAt.get(principal.userId) ?? -1) >= readAt) return
    this.remember(sessionId, principal)
  }

  /** The session has ended: remember it as ended, whatever a lookup in flight finds. */
  forget(sessionId: string) {
    this.remember(sessionId, null)
  }

  /** Every session of the user but `keepSessionId` has ended. */
  forgetUser(userId: string, keepSessionId?: string) {
    const now = performance.now()
    for (const [sessionId, entry] of this.entries)
      if (entry.principal?.userId === userId && sessionId !== keepSessionId)
        this.entries.delete(sessionId)
    if (this.userRevokedAt.size >= this.maxEntries) this.userRevokedAt.clear()
    this.userRevokedAt.set(userId, now)
  }

  private remember(sessionId: string, principal: Principal | null) {
    this.entries.delete(sessionId)
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next()
      if (!oldest.done) this.entries.delete(oldest.value)
    }
    this.entries.set(sessionId, { principal, until: performance.now() + this.ttlMs })
  }
}
