import { Elysia } from 'elysia'
import type { AppContext, Principal } from '../../context'
import { noteUser } from '../../http'
import { requireTokenRoute } from '../authz/token-scopes'
import { authenticate } from './service'

/** Authenticates a request at most once, however many hooks ask; the answer is kept per request. */
export function requestAuthenticator(ctx: AppContext) {
  const principals = new WeakMap<Request, Promise<Principal>>()
  return (request: Request): Promise<Principal> => {
    let principal = principals.get(request)
    if (!principal) {
      principal = authenticate(ctx, request.headers.get('authorization')).then((found) => {
        noteUser(request, found.userId)
        return found
      })
      principals.set(request, principal)
    }
    return principal
  }
}

export type RequestAuthenticator = ReturnType<typeof requestAuthenticator>

/**
 * `{ auth: true }` on a route requires a live bearer session and resolves `principal`.
 * The check runs in `transform`, before Elysia validates params, query and body, so an anonymous
 * caller gets 401, never a 422 (the app also runs it before the body is parsed: see app.ts).
 */
export function authGuard(authenticateRequest: RequestAuthenticator) {
  return new Elysia({ name: 'auth-guard' }).macro({
    auth: {
      detail: { security: [{ bearerAuth: [] }, { apiToken: [] }] },
      async transform({ request, route }) {
        // An API token outside its scopes, or on a route closed to tokens, gets 403 here.
        requireTokenRoute(await authenticateRequest(request), request.method, route)
      },
      async resolve({ request }) {
        return { principal: await authenticateRequest(request) }
      },
    },
  })
}

export type AuthGuard = ReturnType<typeof authGuard>
