import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import type { Principal } from '../src/context'
import {
  canManageMember,
  canOnProject,
  type ProjectAction,
  type ProjectRole,
} from '../src/modules/authz/policy'
import { authorizeProject } from '../src/modules/authz/service'
import { HttpProblem } from '../src/problems'
import { registerUser, startServer, type TestServer } from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

// The pure policy checks do not read the project; any id stands for it.
const PROJECT = '00000000-0000-4000-8000-000000000000'

let server: TestServer
beforeAll(async () => {
  server = await startServer()
}, 60_000)
afterAll(() => server.close(), 30_000)

/** The permissions each global role has, read from the seeded tables (not restated here). */
async function principalWithRole(role: string): Promise<Principal> {
  const rows = await server.db.sql<{ name: string }[]>`
    select p.name
    from roles r
    join role_permissions rp on rp.role_id = r.id
    join permissions p on p.id = rp.permission_id
    where r.name = ${role}
  `
  return {
    userId: crypto.randomUUID(),
    sessionId: crypto.randomUUID(),
    roles: [role],
    permissions: new Set(rows.map((r) => r.name)),
  }
}

describe('seeded global roles', () => {
  it('give each role the permissions of the contract', async () => {
    const perms = async (role: string) => [...(await principalWithRole(role)).permissions].sort()
    expect(await perms('admin')).toHaveLength(10)
    expect(await perms('manager')).toEqual([
      'projects.delete',
      'projects.read',
      'projects.write',
      'tasks.delete',
      'tasks.read',
      'tasks.write',
      'users.read',
    ])
    expect(await perms('developer')).toEqual([
      'projects.read',
      'projects.write',
      'tasks.read',
      'tasks.write',
      'users.read',
    ])
    expect(await perms('viewer')).toEqual(['projects.read', 'tasks.read', 'users.read'])
  })
})

describe('canOnProject', () => {
  const allowedFor: Record<ProjectAction, ProjectRole[]> = {
    'project.read': ['owner', 'manager', 'member', 'viewer'],
    'project.update': ['owner', 'manager'],
    'project.delete': ['owner'],
    'members.manage': ['owner', 'manager'],
    'task.read': ['owner', 'manager', 'member', 'viewer'],
    'task.write': ['owner', 'manager', 'member'],
    'task.moderate': ['owner', 'manager'],
  }
  const roles: ProjectRole[] = ['owner', 'manager', 'member', 'viewer']

  it('lets a developer do exactly what the project role allows', async () => {
    const developer = await principalWithRole('developer')
    for (const [action, allowed] of Object.entries(allowedFor) as [ProjectAction, ProjectRole[]][])
      for (const role of roles)
        expect(`${action}/${role}:${canOnProject(developer, action, role, PROJECT)}`).toBe(
          `${action}/${role}:${allowed.includes(role)}`,
        )
  })

  it('keeps a global viewer read-only even as project owner', async () => {
    const viewer = await principalWithRole('viewer')
    expect(canOnProject(viewer, 'project.read', 'owner', PROJECT)).toBe(true)
    expect(canOnProject(viewer, 'task.read', 'owner', PROJECT)).toBe(true)
    expect(canOnProject(viewer, 'task.write', 'owner', PROJECT)).toBe(false)
    expect(canOnProject(viewer, 'project.update', 'owner', PROJECT)).toBe(false)
  })

  it('refuses everything to a non-member and allows everything to an admin', async () => {
    const manager = await principalWithRole('manager')
    const admin = await principalWithRole('admin')
    for (const action of Object.keys(allowedFor) as ProjectAction[]) {
      expect(canOnProject(manager, action, undefined, PROJECT)).toBe(false)
      expect(canOnProject(admin, action, undefined, PROJECT)).toBe(true)
    }
  })

  it('lets managers manage members but never the owner, unless admin', async () => {
    const developer = await principalWithRole('developer')
    const admin = await principalWithRole('admin')
    expect(canManageMember(developer, 'manager', 'member', PROJECT)).toBe(true)
    expect(canManageMember(developer, 'manager', 'owner', PROJECT)).toBe(false)
    expect(canManageMember(developer, 'member', 'viewer', PROJECT)).toBe(false)
    expect(canManageMember(admin, undefined, 'owner', PROJECT)).toBe(true)
  })
})

describe('authorizeProject', () => {
  async function projectOwnedBy(ownerId: string) {
    const [project] = await server.db.sql<{ id: string }[]>`
      insert into projects (name, owner_id) values ('Apollo', ${ownerId}) returning id
    `
    const id = project?.id as string
    await server.db.sql`
      insert into project_members (project_id, user_id, role) values (${id}, ${ownerId}, 'owner')
    `
    return id
  }
  const statusOf = (promise: Promise<unknown>) =>
    promise.then(
      () => 200,
      (error: unknown) => (error instanceof HttpProblem ? error.status : 500),
    )

  it('answers 403 to a user outside the project, 404 for a missing one, and the role to a member', async () => {
    const owner = await registerUser(server)
    const outsider = await registerUser(server)
    const projectId = await projectOwnedBy(owner.id)
    const developer = await principalWithRole('developer')
    const asOwner = { ...developer, userId: owner.id }
    const asOutsider = { ...developer, userId: outsider.id }
    expect(await authorizeProject(server.db.sql, asOwner, projectId, 'project.delete')).toBe(
      'owner',
    )
    expect(
      await statusOf(authorizeProject(server.db.sql, asOutsider, projectId, 'project.read')),
    ).toBe(403)
    expect(
      await statusOf(authorizeProject(server.db.sql, asOwner, crypto.randomUUID(), 'project.read')),
    ).toBe(404)
  })

  it('answers 403 when the member’s role is too low for the action', async () => {
    const owner = await registerUser(server)
    const reader = await registerUser(server)
    const projectId = await projectOwnedBy(owner.id)
    await server.db.sql`
      insert into project_members (project_id, user_id, role) values (${projectId}, ${reader.id}, 'viewer')
    `
    const asReader = { ...(await principalWithRole('developer')), userId: reader.id }
    expect(await authorizeProject(server.db.sql, asReader, projectId, 'task.read')).toBe('viewer')
    expect(await statusOf(authorizeProject(server.db.sql, asReader, projectId, 'task.write'))).toBe(
      403,
    )
  })
})
