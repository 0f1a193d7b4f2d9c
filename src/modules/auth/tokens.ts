import { createHash, randomBytes } from 'node:crypto'
import { jwt } from '@elysiajs/jwt'

const ISSUER = 'taskapi'
const AUDIENCE = 'taskapi'
// RFC 9068 access-token type; other signed tokens must use another typ so they cannot stand in.
const ACCESS_TYP = 'at+jwt'

export type AccessClaims = { sub: string; sid: string }

export type AccessTokens = {
  sign(claims: AccessClaims): Promise<string>
  /** The claims of a valid token, or undefined for anything else (garbage, expired, forged). */
  verify(token: string): Promise<AccessClaims | undefined>
}

export function createAccessTokens(secret: string, ttlSeconds: number): AccessTokens {
  const plugin = jwt({
    name: 'accessToken',
    secret,
    alg: 'HS256',
    typ: ACCESS_TYP,
    iss: ISSUER,
    aud: AUDIENCE,
    exp: `${ttlSeconds}s`,
  })
  const signer = plugin.decorator.accessToken
  return {
    sign: (claims) => signer.sign({ sub: claims.sub, sid: claims.sid, jti: crypto.randomUUID() }),
    async verify(token) {
      const payload = await signer.verify(token, {
        algorithms: ['HS256'],
        issuer: ISSUER,
        audience: AUDIENCE,
        typ: ACCESS_TYP,
        requiredClaims: ['exp', 'iat', 'sub', 'sid'],
        clockTolerance: 5,
      })
      if (!payload || !isUuid(payload.sub) || !isUuid(payload.sid)) return undefined
      return { sub: payload.sub, sid: payload.sid }
    },
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const isUuid = (value: unknown): value is string => typeof value === 'string' && UUID.test(value)

/** An opaque refresh token: 32 random bytes; only its SHA-256 is stored. */
export function newRefreshToken(): { token: string; hash: string } {
  const token = randomBytes(32).toString('base64url')
  return { token, hash: hashRefreshToken(token) }
}

export const hashRefreshToken = (token: string) => createHash('sha256').update(token).digest('hex')
