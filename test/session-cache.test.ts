import { describe, expect, it, setDefaultTimeout } from 'bun:test'
import type { Principal } from '../src/context'
import { cacheVerifiedTokens, SessionCache } from '../src/modules/auth/session-cache'
import { createAccessTokens } from '../src/modules/auth/tokens'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

const principal = (userId = 'u1', sessionId = 's1'): Principal => ({
  userId,
  sessionId,
  roles: ['developer'],
  permissions: new Set(['tasks.read']),
})

describe('SessionCache', () => {
  it('keeps a live session for its TTL', () => {
    const cache = new SessionCache(60_000)
    cache.set('s1', principal(), performance.now())
    expect(cache.get('s1')?.userId).toBe('u1')
    expect(cache.get('s2')).toBeUndefined()
  })

  it('does not let a lookup that started before a logout put the session back', () => {
    const cache = new SessionCache(60_000)
    const readAt = performance.now()
    cache.forget('s1')
    cache.set('s1', principal(), readAt)
    expect(cache.get('s1')).toBeNull()
  })

  it('does not let a lookup that started before logout-all cache the old state', () => {
    const cache = new SessionCache(60_000)
    const before = performance.now()
    cache.forgetUser('u1')
    cache.set('s1', principal(), before)
    expect(cache.get('s1')).toBeUndefined()
    cache.set('s1', principal(), performance.now())
    expect(cache.get('s1')?.userId).toBe('u1')
  })

  it('forgets every session of a user but the one kept', () => {
    const cache = new SessionCache(60_000)
    const t = performance.now()
    cache.set('s1', principal('u1', 's1'), t)
    cache.set('s2', principal('u1', 's2'), t)
    cache.set('s3', principal('u2', 's3'), t)
    cache.forgetUser('u1', 's2')
    expect(cache.get('s1')).toBeUndefined()
    expect(cache.get('s2')?.sessionId).toBe('s2')
    expect(cache.get('s3')?.sessionId).toBe('s3')
  })

  it('drops a refusal read from the database when its user changes, not a session ended here', () => {
    const cache = new SessionCache(60_000)
    cache.set('token', null, performance.now(), 'u1')
    cache.forget('s1')
    // A refusal read before the change must not be cached after it either.
    const before = performance.now()
    cache.forgetUser('u1')
    cache.set('token2', null, before, 'u1')
    expect(cache.get('token')).toBeUndefined()
    expect(cache.get('token2')).toBeUndefined()
    expect(cache.get('s1')).toBeNull()
  })

  it('stays within its size bound', () => {
    const cache = new SessionCache(60_000, 3)
    for (let i = 0; i < 10; i++) cache.set(`s${i}`, principal('u', `s${i}`), performance.now())
    const kept = Array.from({ length: 10 }, (_, i) => cache.get(`s${i}`)).filter(Boolean)
    expect(kept).toHaveLength(3)
    expect(cache.get('s9')?.sessionId).toBe('s9')
  })

  it('caches nothing with a TTL of 0', () => {
    const cache = new SessionCache(0)
    cache.set('s1', principal(), performance.now())
    expect(cache.get('s1')).toBeUndefined()
  })
})

describe('cacheVerifiedTokens', () => {
  const claims = { sub: crypto.randomUUID(), sid: crypto.randomUUID() }
  // A verifier that counts its calls around the real one.
  const counted = (ttlSeconds: number) => {
    const real = createAccessTokens('a test secret that is long enough for HS256', ttlSeconds)
    const calls = { n: 0 }
    const tokens = cacheVerifiedTokens({
      sign: real.sign,
      verify: (token: string) => {
        calls.n += 1
        return real.verify(token)
      },
    })
    return { tokens, calls }
  }

  it('checks a good token once, then answers from the cache', async () => {
    const { tokens, calls } = counted(900)
    const token = await tokens.sign(claims)
    expect(await tokens.verify(token)).toEqual(claims)
    expect(await tokens.verify(token)).toEqual(claims)
    expect(calls.n).toBe(1)
  })

  it('never caches a forged token', async () => {
    const { tokens, calls } = counted(900)
    const token = await tokens.sign(claims)
    const [head, body] = token.split('.')
    const forged = `${head}.${body}.${'A'.repeat(43)}`
    expect(await tokens.verify(forged)).toBeUndefined()
    expect(await tokens.verify(forged)).toBeUndefined()
    expect(calls.n).toBe(2)
  })

  it('keeps a token no longer than its exp', async () => {
    // A TTL of 1 s: the cache entry ends at exp; the verifier (5 s tolerance) is asked again.
    const { tokens, calls } = counted(1)
    const token = await tokens.sign(claims)
    expect(await tokens.verify(token)).toEqual(claims)
    await Bun.sleep(2_100)
    await tokens.verify(token)
    expect(calls.n).toBe(2)
  })
})
