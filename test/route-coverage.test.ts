import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { expectProblemShape, startServer, type TestServer } from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

let server: TestServer
beforeAll(async () => {
  server = await startServer()
}, 60_000)
afterAll(() => server.close(), 30_000)

/**
 * Where each route's authorization is tested. A route that no entry claims fails here, so a
 * route added later needs a row in one of these matrices (or a matrix of its own) first.
 */
const MATRICES: [RegExp, string][] = [
  [/^\/api\/v1\/tasks\/:id\/(comments|attachments)/, 'test/access-matrix-7c.test.ts'],
  // Each user's own tokens (another user's: 404); any token on them: 403; scopes × routes.
  [/^\/api\/v1\/tokens(\/|$)/, 'test/tokens.test.ts'],
  // Owner, manager, admin; member, viewer and outsider 403; API tokens need webhooks:manage.
  [/^\/api\/v1\/projects\/:id\/webhooks/, 'test/webhooks.test.ts, test/tokens.test.ts'],
  [/^\/api\/v1\/notifications/, 'test/access-matrix-7c.test.ts'],
  [/^\/api\/v1\/(projects|admin)|^\/api\/v1\/tasks\/:id\/activity$/, 'test/projects.test.ts'],
  [/^\/api\/v1\/tasks/, 'test/tasks.test.ts'],
  // Members only (outsider 403, viewer reads), upgrade refused without a live token.
  [/^\/api\/v1\/events$|^\/ws$/, 'test/realtime.test.ts'],
  // The caller's own account and sessions, and public profiles: no project, no other owner.
  [/^\/api\/v1\/(auth|users)(\/|$)/, 'test/auth.test.ts, test/users.test.ts'],
  [/^\/(health|docs)(\/|$)/, 'public: test/health-docs.test.ts'],
]

// Routes reachable without a token; every other route must answer 401 to an anonymous caller.
const PUBLIC = new Set([
  'POST /api/v1/auth/register',
  'POST /api/v1/auth/login',
  'POST /api/v1/auth/refresh',
])

const routes = () =>
  server.app.routes
    .filter((r) => r.method !== 'HEAD' && r.method !== 'OPTIONS')
    .map((r) => ({ method: r.method, path: r.path }))

describe('every route', () => {
  it('is claimed by an authorization matrix', () => {
    const unclaimed = routes()
      .filter((r) => !MATRICES.some(([pattern]) => pattern.test(r.path)))
      .map((r) => `${r.method} ${r.path}`)
    expect(unclaimed).toEqual([])
  })

  it('answers 401 to an anonymous caller, whatever the params and body, unless public', async () => {
    const guarded = routes().filter(
      (r) => r.path.startsWith('/api/v1/') && !PUBLIC.has(`${r.method} ${r.path}`),
    )
    expect(guarded.length).toBeGreaterThan(40)
    for (const route of guarded) {
      // Malformed ids and an invalid body: a validation error here would mean 422 before 401.
      const path = route.path.replace(/:[a-z_]+/g, 'not-a-uuid')
      const body = ['GET', 'DELETE'].includes(route.method) ? undefined : { bogus: [1, { x: 2 }] }
      const res = await server.request(route.method, `${path}?limit=100000`, { body })
      try {
        expectProblemShape(res, 401)
      } catch (error) {
        throw new Error(`${route.method} ${route.path}: ${(error as Error).message}`)
      }
    }
  })
})
