import { t } from 'elysia'
import { Problem } from '../problems'

const titles: Record<number, string> = {
  400: 'Malformed JSON body',
  401: 'Missing, invalid, expired or revoked token; or bad credentials',
  403: 'Authenticated but not allowed',
  404: 'No such resource',
  409: 'Conflicts with an existing resource',
  412: 'If-Match does not match the current ETag',
  413: 'Body over its limit',
  415: 'Unsupported Content-Type',
  422: 'Validation failed; `errors` lists each field',
  429: 'Rate limited; see Retry-After',
}

/** Problem+json response schemas for the given error statuses, for a route's `response`. */
export function problems<S extends number>(...statuses: S[]) {
  return Object.fromEntries(
    statuses.map((s) => [s, t.Composite([Problem], { description: titles[s] })]),
  ) as Record<S, typeof Problem>
}

export const NoContent = t.Void({ description: 'No content' })
