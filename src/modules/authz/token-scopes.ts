import type { Principal } from '../../context'
import { forbidden } from '../../problems'

/** What an API token may be given; each opens the routes listed for it in TOKEN_ROUTES. */
export const SCOPES = [
  'projects:read',
  'projects:write',
  'tasks:read',
  'tasks:write',
  'comments:write',
  'notifications:read',
  'users:read',
  'webhooks:manage',
] as const

export type Scope = (typeof SCOPES)[number]

/** `any`: every token; `closed`: no token (403), whatever its scopes. */
export type RouteAccess = Scope | 'any' | 'closed'

/**
 * Every guarded route ("METHOD /path" as Elysia registers it) and what an API token needs for it.
 * A route missing here is closed to tokens; test/tokens.test.ts fails for any guarded route that is
 * not listed, so a route added later must be given a scope (or be closed) on purpose.
 */
export const TOKEN_ROUTES: Record<string, RouteAccess> = {
  // Account and session management, and the tokens themselves: people only.
  'POST /api/v1/auth/logout': 'closed',
  'POST /api/v1/auth/logout-all': 'closed',
  'GET /api/v1/auth/sessions': 'closed',
  'DELETE /api/v1/auth/sessions/:id': 'closed',
  'PATCH /api/v1/users/me': 'closed',
  'PUT /api/v1/users/me': 'closed',
  'PUT /api/v1/users/me/password': 'closed',
  'GET /api/v1/tokens': 'closed',
  'POST /api/v1/tokens': 'closed',
  'DELETE /api/v1/tokens/:id': 'closed',
  'GET /api/v1/admin/users': 'closed',
  'PATCH /api/v1/admin/users/:id': 'closed',
  'GET /api/v1/admin/metrics': 'closed',
  'GET /api/v1/admin/logs': 'closed',

  'GET /api/v1/users/me': 'any',
  'GET /api/v1/users': 'users:read',
  'GET /api/v1/users/:id': 'users:read',

  'GET /api/v1/projects': 'projects:read',
  'GET /api/v1/projects/:id': 'projects:read',
  'GET /api/v1/projects/:id/members': 'projects:read',
  'GET /api/v1/projects/:id/activity': 'projects:read',
  'GET /api/v1/events': 'projects:read',
  'GET /ws': 'projects:read',
  'POST /api/v1/projects': 'projects:write',
  'PATCH /api/v1/projects/:id': 'projects:write',
  'PUT /api/v1/projects/:id': 'projects:write',
  'DELETE /api/v1/projects/:id': 'projects:write',
  'POST /api/v1/projects/:id/members': 'projects:write',
  'PATCH /api/v1/projects/:id/members/:user_id': 'projects:write',
  'PUT /api/v1/projects/:id/members/:user_id': 'projects:write',
  'DELETE /api/v1/projects/:id/members/:user_id': 'projects:write',

  'GET /api/v1/tasks': 'tasks:read',
  'GET /api/v1/tasks/search': 'tasks:read',
  'GET /api/v1/tasks/:id': 'tasks:read',
  'GET /api/v1/tasks/:id/activity': 'tasks:read',
  'GET /api/v1/tasks/:id/comments': 'tasks:read',
  'GET /api/v1/tasks/:id/attachments': 'tasks:read',
  'GET /api/v1/tasks/:id/attachments/:attachment_id': 'tasks:read',
  'POST /api/v1/tasks': 'tasks:write',
  'PATCH /api/v1/tasks/:id': 'tasks:write',
  'PUT /api/v1/tasks/:id': 'tasks:write',
  'DELETE /api/v1/tasks/:id': 'tasks:write',
  'PUT /api/v1/tasks/:id/assign': 'tasks:write',
  'PUT /api/v1/tasks/:id/status': 'tasks:write',
  'POST /api/v1/tasks/:id/attachments': 'tasks:write',
  'DELETE /api/v1/tasks/:id/attachments/:attachment_id': 'tasks:write',

  'POST /api/v1/tasks/:id/comments': 'comments:write',
  'PATCH /api/v1/tasks/:id/comments/:comment_id': 'comments:write',
  'PUT /api/v1/tasks/:id/comments/:comment_id': 'comments:write',
  'DELETE /api/v1/tasks/:id/comments/:comment_id': 'comments:write',

  'GET /api/v1/projects/:id/webhooks': 'webhooks:manage',
  'POST /api/v1/projects/:id/webhooks': 'webhooks:manage',
  'GET /api/v1/projects/:id/webhooks/:webhook_id': 'webhooks:manage',
  'PATCH /api/v1/projects/:id/webhooks/:webhook_id': 'webhooks:manage',
  'PUT /api/v1/projects/:id/webhooks/:webhook_id': 'webhooks:manage',
  'DELETE /api/v1/projects/:id/webhooks/:webhook_id': 'webhooks:manage',
  'POST /api/v1/projects/:id/webhooks/:webhook_id/rotate-secret': 'webhooks:manage',
  'POST /api/v1/projects/:id/webhooks/:webhook_id/ping': 'webhooks:manage',
  'GET /api/v1/projects/:id/webhooks/:webhook_id/deliveries': 'webhooks:manage',
  'POST /api/v1/projects/:id/webhooks/:webhook_id/deliveries/:delivery_id/redeliver':
    'webhooks:manage',

  'GET /api/v1/notifications': 'notifications:read',
  'GET /api/v1/notifications/unread-count': 'notifications:read',
  'PUT /api/v1/notifications/read-all': 'notifications:read',
  'PUT /api/v1/notifications/:id/read': 'notifications:read',
  'DELETE /api/v1/notifications/:id': 'notifications:read',
}

/** Throws 403 when the caller is an API token that may not use this route (sessions pass). */
export function requireTokenRoute(principal: Principal, method: string, route: string) {
  const token = principal.token
  if (!token) return
  const access = TOKEN_ROUTES[`${method === 'HEAD' ? 'GET' : method} ${route}`] ?? 'closed'
  if (access === 'any') return
  if (access === 'closed') throw forbidden('API tokens cannot use this route; sign in instead')
  if (!token.scopes.has(access)) throw forbidden(`This token lacks the ${access} scope`)
}

/** Throws 403 when the caller is an API token limited to projects that do not include this one. */
export function requireTokenProject(principal: Principal, projectId: string) {
  if (!tokenAllowsProject(principal, projectId))
    throw forbidden('This token is not allowed in this project')
}

export const tokenAllowsProject = (principal: Principal, projectId: string) => {
  const projectIds = principal.token?.projectIds
  return !projectIds || projectIds.includes(projectId.toLowerCase())
}
