import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { noteUser } from '../../http'
import { authenticate } from './service'

/** `{ auth: true }` on a route requires a live bearer session and resolves `principal`. */
export function authGuard(ctx: AppContext) {
  return new Elysia({ name: 'auth-guard', seed: ctx }).macro({
    auth: {
      detail: { security: [{ bearerAuth: [] }] },
      async resolve({ request }) {
        const principal = await authenticate(ctx, request.headers.get('authorization'))
        noteUser(request, principal.userId)
        return { principal }
      },
    },
  })
}

export type AuthGuard = ReturnType<typeof authGuard>
