import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { created, noContent } from '../../http'
import { NoContent, problems } from '../../shared/docs'
import { IdParams } from '../../shared/model'
import type { AuthGuard } from '../auth/guard'
import { answerInTransaction } from '../idempotency/middleware'
import { type Attachment, AttachmentList, AttachmentModel } from './model'
import {
  downloadAttachment,
  listTaskAttachments,
  removeAttachment,
  uploadAttachment,
} from './service'
import { uploadHeaderProblem } from './upload'

// Marks the body as left for the handler, so Elysia's own multipart parser (which buffers
// everything) does not run; the handler reads it with a byte count after authentication.
const DEFERRED = { deferred: true } as const

export const attachmentRoutes = (ctx: AppContext, guard: AuthGuard) =>
  new Elysia({ prefix: '/tasks', detail: { tags: ['Attachments'] } })
    .use(guard)
    .get(
      '/:id/attachments',
      ({ principal, params, query }) => listTaskAttachments(ctx, principal, params.id, query),
      {
        auth: true,
        params: IdParams,
        query: AttachmentModel.listQuery,
        response: { 200: AttachmentList, ...problems(401, 403, 404, 422) },
        detail: { summary: 'A task’s attachments, oldest first (any project member)' },
      },
    )
    .post(
      '/:id/attachments',
      async ({ principal, params, request, set }) => {
        const respond = (attachment: Attachment) =>
          created(set, `/api/v1/tasks/${params.id}/attachments/${attachment.id}`, attachment)
        const result = await uploadAttachment(
          ctx,
          principal,
          params.id,
          request,
          answerInTransaction(request, set, respond),
        )
        // A retry of an upload already answered: the stored answer, as the key's replay.
        return result instanceof Response ? result : respond(result)
      },
      {
        auth: true,
        params: IdParams,
        // A Content-Length over the limit is refused here, before anything is read; a call
        // without credentials is left to the guard, so it gets its 401 first.
        parse: ({ request }) => {
          if (!request.headers.has('authorization')) return DEFERRED
          const problem = uploadHeaderProblem(request, ctx.config.maxUploadBytes)
          if (problem && problem.status === 413) throw problem
          return DEFERRED
        },
        response: {
          201: AttachmentModel.attachment,
          ...problems(400, 401, 403, 404, 413, 415, 422),
        },
        detail: {
          summary: 'Upload a file to a task',
          description: `Needs \`task.write\` (project owner, manager or member). \`multipart/form-data\` with one part named \`file\`, at most MAX_UPLOAD_BYTES (default 10 MiB; more is a 413 problem). The filename is kept only for display, sanitised (no path parts or control characters, at most 255 characters); the bytes are stored under a generated name.`,
          requestBody: {
            required: true,
            content: {
              'multipart/form-data': {
                schema: {
                  type: 'object',
                  required: ['file'],
                  properties: { file: { type: 'string', format: 'binary' } },
                },
              },
            },
          },
        },
      },
    )
    .get(
      '/:id/attachments/:attachment_id',
      ({ principal, params }) =>
        downloadAttachment(ctx, principal, params.id, params.attachment_id),
      {
        auth: true,
        params: AttachmentModel.params,
        response: { 200: AttachmentModel.bytes, ...problems(401, 403, 404, 422) },
        detail: {
          summary: 'Download an attachment’s bytes',
          description:
            'Answers with the stored media type, `Content-Disposition: attachment` (with an RFC 8187 `filename*` for non-ASCII names) and `X-Content-Type-Options: nosniff`.',
        },
      },
    )
    .delete(
      '/:id/attachments/:attachment_id',
      ({ principal, params, set }) =>
        removeAttachment(ctx, principal, params.id, params.attachment_id).then(() =>
          noContent(set),
        ),
      {
        auth: true,
        params: AttachmentModel.params,
        response: { 204: NoContent, ...problems(401, 403, 404, 422) },
        detail: {
          summary: 'Delete an attachment and its file',
          description: 'Its uploader, a project owner or manager, or an admin.',
        },
      },
    )
