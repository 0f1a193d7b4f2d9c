import { SessionCache } from '../modules/auth/session-cache'

/** Sessions that ended: one, or every session of a user but `keepSessionId`. */
export type Ended = { sessionId: string } | { userId: string; keepSessionId?: string }

/**
 * The session cache, telling the real-time hub whenever sessions end here (logout, logout-all,
 * password change, deactivation, refresh-token reuse), so it closes their sockets and tells the
 * other instances, which drop the sessions at once instead of after SESSION_CACHE_TTL_MS.
 */
export class AnnouncingSessionCache extends SessionCache {
  onEnded?: (ended: Ended) => void

  override forget(sessionId: string) {
    super.forget(sessionId)
    this.onEnded?.({ sessionId })
  }

  override forgetUser(userId: string, keepSessionId?: string) {
    super.forgetUser(userId, keepSessionId)
    this.onEnded?.({ userId, keepSessionId })
  }

  /** Applies an end announced by another instance, without announcing it again. */
  applyRemote(ended: Ended) {
    if ('sessionId' in ended) super.forget(ended.sessionId)
    else super.forgetUser(ended.userId, ended.keepSessionId)
  }
}
