import { createHash } from 'node:crypto'
import type { AppContext, Principal } from '../../context'
import { forbidden, notFound } from '../../problems'
import { paged } from '../../shared/model'
import { insertActivity } from '../activity/queries'
import { canOnProject } from '../authz/policy'
import { authorizeTask, taskDeletedMeanwhile } from '../authz/service'
import { type AnswerInTransaction, bindStreamedBody } from '../idempotency/middleware'
import type { Attachment, AttachmentListQuery } from './model'
import { contentDisposition, sanitizeFilename, storedMediaType } from './names'
import {
  countAttachments,
  deleteAttachment,
  insertAttachment,
  listAttachments,
  selectAttachment,
} from './queries'
import {
  absolutePath,
  attachmentPath,
  moveIntoPlace,
  removeQuietly,
  writeTemporary,
} from './storage'
import { readUploadedFile } from './upload'

const noSuchAttachment = () => notFound('No such attachment on this task')

export async function listTaskAttachments(
  ctx: AppContext,
  principal: Principal,
  taskId: string,
  query: AttachmentListQuery,
) {
  await authorizeTask(ctx.sql, principal, taskId, 'task.read')
  return paged(
    query,
    (limit, offset) => listAttachments(ctx.sql, taskId, limit, offset),
    () => countAttachments(ctx.sql, taskId),
  )
}

/**
 * Stores an upload: the bytes go to a temporary file, the row and its activity entry are written
 * in one transaction whose last step moves the file into place. If anything fails, both the
 * temporary and the final file are removed, so no file outlives a failed insert.
 *
 * With an Idempotency-Key the key is bound to the file (name, type and SHA-256 of the bytes) once
 * it is read: a retry with the same file gets the stored answer (the Response returned here),
 * another file 422; `finish` (answerInTransaction) stores the answer in the transaction.
 */
export async function uploadAttachment(
  ctx: AppContext,
  principal: Principal,
  taskId: string,
  request: Request,
  finish?: AnswerInTransaction<Attachment>,
): Promise<Attachment | Response> {
  const access = await authorizeTask(ctx.sql, principal, taskId, 'task.write')
  const file = await readUploadedFile(request, ctx.config.maxUploadBytes)
  const bytes = await file.bytes()
  const digest = createHash('sha256')
    .update(JSON.stringify({ name: file.name, type: file.type, size: file.size }))
    .update(bytes)
    .digest('hex')
  const replay = bindStreamedBody(request, digest)
  if (replay) return replay
  const id = Bun.randomUUIDv7()
  const relativePath = attachmentPath(access.projectId, taskId, id)
  const paths = await writeTemporary(ctx.config, relativePath, bytes)
  try {
    return await ctx.sql.begin(async (tx) => {
      const attachment = await insertAttachment(tx, {
        id,
        task_id: taskId,
        // Bun gives a part sent with `filename=""` no name at all.
        filename: sanitizeFilename(file.name ?? ''),
        file_path: relativePath,
        file_size: file.size,
        mime_type: storedMediaType(file.type),
        uploaded_by: principal.userId,
      })
      await insertActivity(tx, {
        user_id: principal.userId,
        project_id: access.projectId,
        action: 'attachment.created',
        entity_type: 'attachment',
        entity_id: id,
        details: {
          task_id: taskId,
          filename: attachment.filename,
          file_size: attachment.file_size,
          mime_type: attachment.mime_type,
        },
      })
      await moveIntoPlace(paths)
      await finish?.(tx, attachment)
      return attachment
    })
  } catch (error) {
    await removeQuietly(paths.temporary, paths.final)
    throw taskDeletedMeanwhile(error, 'task_attachments_task_id_fkey')
  }
}

/** The stored bytes as a download: never rendered inline, never sniffed. */
export async function downloadAttachment(
  ctx: AppContext,
  principal: Principal,
  taskId: string,
  attachmentId: string,
) {
  await authorizeTask(ctx.sql, principal, taskId, 'task.read')
  const attachment = await selectAttachment(ctx.sql, taskId, attachmentId)
  if (!attachment) throw noSuchAttachment()
  const file = Bun.file(absolutePath(ctx.config, attachment.file_path), {
    type: attachment.mime_type,
  })
  if (!(await file.exists())) {
    ctx.log.error('attachment file missing', { attachment_id: attachmentId })
    throw notFound('The attachment’s file is no longer stored')
  }
  return new Response(file, {
    headers: {
      'content-type': attachment.mime_type,
      'content-length': String(file.size),
      'content-disposition': contentDisposition(attachment.filename),
      'x-content-type-options': 'nosniff',
      'content-security-policy': "default-src 'none'; sandbox",
      'cache-control': 'private, no-store',
    },
  })
}

/** The uploader, a project owner or manager (task.moderate), or an admin deletes an attachment. */
export async function removeAttachment(
  ctx: AppContext,
  principal: Principal,
  taskId: string,
  attachmentId: string,
) {
  const access = await authorizeTask(ctx.sql, principal, taskId, 'task.read')
  const mayModerate = canOnProject(principal, 'task.moderate', access.role, access.projectId)
  const removed = await ctx.sql.begin(async (tx) => {
    const attachment = await selectAttachment(tx, taskId, attachmentId)
    if (!attachment) throw noSuchAttachment()
    if (attachment.uploaded_by !== principal.userId && !mayModerate)
      throw forbidden('Only the uploader, a project owner or manager, or an admin may delete it')
    const row = await deleteAttachment(tx, taskId, attachmentId)
    if (!row) throw noSuchAttachment()
    await insertActivity(tx, {
      user_id: principal.userId,
      project_id: access.projectId,
      action: 'attachment.deleted',
      entity_type: 'attachment',
      entity_id: attachmentId,
      details: { task_id: taskId, filename: row.filename, uploaded_by: row.uploaded_by },
    })
    return row
  })
  // After the commit: a failed transaction must not have lost the file.
  await removeQuietly(absolutePath(ctx.config, removed.file_path))
}
