import { createProject } from './factories'
import { registerUser, type TestServer } from './helpers'

export type Person = Awaited<ReturnType<typeof registerUser>>

/**
 * The cast of an authorization test on a fresh database: the first account (an admin who is not a
 * member), a project owner, manager, member and viewer, an outsider, and their project.
 */
export async function createTeam(server: TestServer) {
  const admin = await registerUser(server)
  const [owner, manager, member, viewer, outsider] = await Promise.all([
    registerUser(server),
    registerUser(server),
    registerUser(server),
    registerUser(server),
    registerUser(server),
  ])
  if (!admin.body.user.roles.includes('admin')) throw new Error('the first account is not admin')
  const project = await createProject(server, owner, [
    [manager, 'manager'],
    [member, 'member'],
    [viewer, 'viewer'],
  ])
  return { admin, owner, manager, member, viewer, outsider, project }
}

export type Team = Awaited<ReturnType<typeof createTeam>>
