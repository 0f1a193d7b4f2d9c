import type { Principal } from '../../context'

type Entry = { principal: Principal | null; until: number }

/**
 * Sessions checked on every request, kept for a few seconds so a token costs no query each time.
 * `null` remembers an ended session. Revocation on this instance forgets entries at once; other
 * instances see it when their entry expires (SESSION_CACHE_TTL_MS).
 */
export class SessionCache {
  private readonly entries = new Map<string, Entry>()

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

  set(sessionId: string, principal: Principal | null) {
    if (this.ttlMs === 0) return
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next()
      if (!oldest.done) this.entries.delete(oldest.value)
    }
    this.entries.set(sessionId, { principal, until: performance.now() + this.ttlMs })
  }

  forget(sessionId: string) {
    this.entries.delete(sessionId)
  }

  forgetUser(userId: string) {
    for (const [sessionId, entry] of this.entries)
      if (entry.principal?.userId === userId) this.entries.delete(sessionId)
  }
}
