import type { Principal } from '../../context'
import { forbidden } from '../../problems'
import { tokenAllowsProject } from './token-scopes'

export type Permission =
  | 'users.read'
  | 'users.write'
  | 'users.delete'
  | 'projects.read'
  | 'projects.write'
  | 'projects.delete'
  | 'tasks.read'
  | 'tasks.write'
  | 'tasks.delete'
  | 'admin.access'

export type ProjectRole = 'owner' | 'manager' | 'member' | 'viewer'

/**
 * What may be done inside a project. Each action needs a global permission AND one of the
 * project roles; `admin.access` passes every project check.
 */
export const PROJECT_RULES = {
  'project.read': { permission: 'projects.read', roles: ['owner', 'manager', 'member', 'viewer'] },
  'project.update': { permission: 'projects.write', roles: ['owner', 'manager'] },
  'project.delete': { permission: 'projects.write', roles: ['owner'] },
  'members.manage': { permission: 'projects.write', roles: ['owner', 'manager'] },
  'task.read': { permission: 'tasks.read', roles: ['owner', 'manager', 'member', 'viewer'] },
  // Create and edit tasks, assign, change status, comment, upload.
  'task.write': { permission: 'tasks.write', roles: ['owner', 'manager', 'member'] },
  // Delete any task or anyone's comment; creators and authors may always remove their own.
  'task.moderate': { permission: 'tasks.write', roles: ['owner', 'manager'] },
} as const satisfies Record<string, { permission: Permission; roles: readonly ProjectRole[] }>

export type ProjectAction = keyof typeof PROJECT_RULES

export const isAdmin = (principal: Principal) => principal.permissions.has('admin.access')

export const hasPermission = (principal: Principal, permission: Permission) =>
  principal.permissions.has(permission)

export function requirePermission(principal: Principal, permission: Permission) {
  if (!hasPermission(principal, permission))
    throw forbidden(`This needs the ${permission} permission`)
}

/**
 * Decides an action on a project from the caller's global permissions and membership role; an API
 * token limited to other projects may do nothing in this one, whatever its owner may.
 */
export function canOnProject(
  principal: Principal,
  action: ProjectAction,
  projectRole: ProjectRole | undefined,
  projectId: string,
): boolean {
  const allowed = projectRolesAllowed(principal, action, projectId)
  return allowed === 'any' || (projectRole !== undefined && allowed.includes(projectRole))
}

/**
 * The project roles with which the caller may do `action` in the project (canOnProject's rule
 * before the role is known, for a statement that checks the role itself): 'any' for admins, even
 * when they are not members; none when the caller lacks the permission or a token of theirs is
 * limited to other projects.
 */
export function projectRolesAllowed(
  principal: Principal,
  action: ProjectAction,
  projectId: string,
): 'any' | readonly ProjectRole[] {
  if (!tokenAllowsProject(principal, projectId)) return []
  if (isAdmin(principal)) return 'any'
  const rule = PROJECT_RULES[action]
  return hasPermission(principal, rule.permission) ? rule.roles : []
}

/** May a project's owner or manager demote or remove this member? Nobody but admins touches the owner. */
export function canManageMember(
  principal: Principal,
  actorRole: ProjectRole | undefined,
  targetRole: ProjectRole,
  projectId: string,
): boolean {
  if (!canOnProject(principal, 'members.manage', actorRole, projectId)) return false
  return targetRole !== 'owner' || isAdmin(principal)
}
