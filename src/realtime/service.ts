import type { AppContext, Principal } from '../context'
import { authorizeProject } from '../modules/authz/service'
import { HttpProblem } from '../problems'
import { projectTopic } from './hub'
import { selectEventsAfter, selectPrunedThrough } from './queries'

export const replayGap = (since: number) =>
  new HttpProblem(
    410,
    'Gone',
    `Events after ${since} are no longer kept; refetch the project, then read from next_since`,
    { code: 'replay_gap' },
  )

/** A project's kept events after `since`, oldest first: the WebSocket feed over HTTP. */
export async function listEvents(
  ctx: AppContext,
  principal: Principal,
  query: { project_id: string; since?: number; limit?: number },
) {
  await authorizeProject(ctx.sql, principal, query.project_id, 'project.read')
  const prunedThrough = await selectPrunedThrough(ctx.sql, query.project_id)
  if (query.since !== undefined && query.since < prunedThrough) throw replayGap(query.since)
  const since = query.since ?? prunedThrough
  const rows = await selectEventsAfter(ctx.sql, query.project_id, since, query.limit ?? 100)
  const topic = projectTopic(query.project_id)
  return {
    data: rows.map((row) => ({
      id: row.id,
      topic,
      event: row.event,
      data: row.data as Record<string, unknown>,
      at: row.at,
    })),
    next_since: rows.at(-1)?.id ?? since,
  }
}
