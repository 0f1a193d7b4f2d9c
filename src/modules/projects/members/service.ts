import type { AppContext, Principal } from '../../../context'
import type { Executor } from '../../../db'
import { conflict, forbidden, invalid, notFound } from '../../../problems'
import { announceNotifications, recordEvent } from '../../../realtime/events'
import { paged } from '../../../shared/model'
import { insertActivity } from '../../activity/queries'
import { canManageMember, isAdmin, type ProjectRole } from '../../authz/policy'
import { selectProjectAccess } from '../../authz/queries'
import { authorizeProject } from '../../authz/service'
import { requireTokenProject } from '../../authz/token-scopes'
import type { AnswerInTransaction } from '../../idempotency/middleware'
import { insertNotifications } from '../../notifications/queries'
import type { Member } from './model'
import {
  countMembers,
  deleteMember,
  demoteOwners,
  insertMemberIfAbsent,
  listMembers as listMemberRows,
  lockProjectMembership,
  selectActiveUsername,
  selectMember,
  selectMemberRoleForUpdate,
  selectProjectName,
  unassignMemberTasks,
  updateMemberRole,
  updateProjectOwner,
} from './queries'

const ownerProtected = () =>
  conflict('The owner keeps the role until ownership is handed to another member (role: owner)')

export async function listMembers(
  ctx: AppContext,
  principal: Principal,
  projectId: string,
  query: { page?: number; limit?: number },
) {
  await authorizeProject(ctx.sql, principal, projectId, 'project.read')
  return paged(
    query,
    (limit, offset) => listMemberRows(ctx.sql, projectId, limit, offset),
    () => countMembers(ctx.sql, projectId),
  )
}

/**
 * Adds an active user (not as owner: see changeMemberRole) and notifies them; `finish`
 * (answerInTransaction) runs last in the transaction, storing the idempotent answer.
 */
export async function addMember(
  ctx: AppContext,
  principal: Principal,
  projectId: string,
  input: { user_id: string; role?: ProjectRole },
  finish?: AnswerInTransaction<Member>,
) {
  const role = input.role ?? 'member'
  if (role === 'owner')
    throw invalid([
      { path: '/role', message: 'must not be owner; hand ownership over by changing a role' },
    ])
  return ctx.sql.begin(async (tx) => {
    await lockProjectMembership(tx, projectId)
    await authorizeProject(tx, principal, projectId, 'members.manage')
    const username = await selectActiveUsername(tx, input.user_id)
    if (!username) throw invalid([{ path: '/user_id', message: 'is not an active user' }])
    if (!(await insertMemberIfAbsent(tx, projectId, input.user_id, role)))
      throw conflict('This user is already a member of the project')
    await insertActivity(tx, {
      user_id: principal.userId,
      project_id: projectId,
      action: 'member.added',
      entity_type: 'member',
      entity_id: input.user_id,
      details: { user_id: input.user_id, username, role },
    })
    if (input.user_id !== principal.userId) {
      const name = await selectProjectName(tx, projectId)
      const stored = await insertNotifications(tx, [
        {
          user_id: input.user_id,
          type: 'project_member_added',
          title: `Added to project ${name}`,
          message: `You were added to the project “${name}” as ${role}.`,
          entity_type: 'project',
          entity_id: projectId,
        },
      ])
      await announceNotifications(tx, stored)
    }
    const member = (await selectMember(tx, projectId, input.user_id)) as Member
    await recordEvent(tx, {
      project_id: projectId,
      event: 'member.added',
      data: { member, actor_id: principal.userId },
    })
    await finish?.(tx, member)
    return member
  })
}

async function roleChanged(
  tx: Executor,
  actorId: string,
  projectId: string,
  userId: string,
  from: ProjectRole,
  to: ProjectRole,
) {
  await insertActivity(tx, {
    user_id: actorId,
    project_id: projectId,
    action: 'member.role_changed',
    entity_type: 'member',
    entity_id: userId,
    details: { user_id: userId, role: { old: from, new: to } },
  })
}

/**
 * Changes a member's role. Setting `owner` hands ownership over (the owner or an admin only):
 * the previous owner becomes a manager. The owner's own role changes only that way.
 */
export async function changeMemberRole(
  ctx: AppContext,
  principal: Principal,
  projectId: string,
  userId: string,
  role: ProjectRole,
) {
  return ctx.sql.begin(async (tx) => {
    await lockProjectMembership(tx, projectId)
    const actorRole = await authorizeProject(tx, principal, projectId, 'members.manage')
    const current = await selectMemberRoleForUpdate(tx, projectId, userId)
    if (!current) throw notFound('No such member')
    if (current === 'owner' && role !== 'owner') {
      if (actorRole !== 'owner' && !isAdmin(principal))
        throw forbidden('Only the owner or an admin can touch the owner')
      throw ownerProtected()
    }
    if (role === 'owner' && current !== 'owner') {
      if (actorRole !== 'owner' && !isAdmin(principal))
        throw forbidden('Only the owner or an admin can hand ownership over')
      for (const previous of await demoteOwners(tx, projectId))
        await roleChanged(tx, principal.userId, projectId, previous, 'owner', 'manager')
      await updateMemberRole(tx, projectId, userId, 'owner')
      await updateProjectOwner(tx, projectId, userId)
      await roleChanged(tx, principal.userId, projectId, userId, current, 'owner')
    } else if (role !== current) {
      if (!canManageMember(principal, actorRole, current, projectId))
        throw forbidden('Your project role does not allow this')
      await updateMemberRole(tx, projectId, userId, role)
      await roleChanged(tx, principal.userId, projectId, userId, current, role)
    }
    return (await selectMember(tx, projectId, userId)) as Member
  })
}

/**
 * Removes a member: anyone may remove themselves, owners and managers others; the owner stays
 * (hand ownership over first). The member's task assignments in the project are cleared.
 */
export async function removeMember(
  ctx: AppContext,
  principal: Principal,
  projectId: string,
  userId: string,
) {
  await ctx.sql.begin(async (tx) => {
    await lockProjectMembership(tx, projectId)
    const self = userId === principal.userId
    let actorRole: ProjectRole | undefined
    if (self) {
      const access = await selectProjectAccess(tx, projectId, principal.userId)
      if (!access) throw notFound('No such project')
      requireTokenProject(principal, projectId)
      if (!access.role && !isAdmin(principal))
        throw forbidden('You are not a member of this project')
      actorRole = access.role
    } else {
      actorRole = await authorizeProject(tx, principal, projectId, 'members.manage')
    }
    const current = await selectMemberRoleForUpdate(tx, projectId, userId)
    if (!current) throw notFound('No such member')
    if (current === 'owner') {
      if (!self && !canManageMember(principal, actorRole, current, projectId))
        throw forbidden('Only the owner or an admin can touch the owner')
      throw conflict('The owner cannot leave or be removed; hand ownership over first')
    }
    if (!self && !canManageMember(principal, actorRole, current, projectId))
      throw forbidden('Your project role does not allow this')
    await deleteMember(tx, projectId, userId)
    const unassigned = await unassignMemberTasks(tx, projectId, userId)
    await insertActivity(tx, {
      user_id: principal.userId,
      project_id: projectId,
      action: 'member.removed',
      entity_type: 'member',
      entity_id: userId,
      details: { user_id: userId, role: current, left: self, unassigned_tasks: unassigned },
    })
    await recordEvent(tx, {
      project_id: projectId,
      event: 'member.removed',
      data: {
        user_id: userId,
        role: current,
        left: self,
        unassigned_tasks: unassigned,
        actor_id: principal.userId,
      },
    })
  })
}
