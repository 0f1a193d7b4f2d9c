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
  if (!tokenAllowsProject(principal, projectId)) return false
  if (isAdmin(principal)) return true
  const rule = PROJECT_RULES[action]
  if (!hasPermission(principal, rule.permission) || projectRole === undefined) return false
  return (rule.roles as readonly ProjectRole[]).includes(projectRole)
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
