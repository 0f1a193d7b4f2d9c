import { rm, rmdir } from 'node:fs/promises'
import { dirname, join, resolve, sep } from 'node:path'
import type { Config } from '../../config'
import { describeError, type Logger } from '../../logger'

/** Where attachments live (UPLOAD_DIR, by default DATA_DIR/uploads). */
export function uploadDirOf(config: Config): string {
  return resolve(config.uploadDir)
}

export type StoredFile = { task_id: string; file_path: string }

/**
 * Removes attachment files whose rows are gone (after the commit that deleted them): each stored
 * path (relative to the upload folder or to DATA_DIR, or absolute), and each task's folder
 * (`<upload folder>/<task id>`) if the files were kept per task. Missing files are fine; nothing
 * outside the upload folder is ever touched. Folders left empty are removed too.
 */
export async function removeStoredFiles(config: Config, log: Logger, files: StoredFile[]) {
  const root = uploadDirOf(config)
  const inside = (path: string) => path.startsWith(root + sep)
  const folders = new Set<string>()
  for (const file of files) {
    const candidates = [resolve(root, file.file_path), resolve(config.dataDir, file.file_path)]
    const paths = [...new Set(candidates.filter(inside))]
    if (paths.length === 0)
      log.warn('attachment path outside the upload folder left alone', { path: file.file_path })
    for (const path of paths) {
      try {
        await rm(path, { force: true })
        if (inside(dirname(path))) folders.add(dirname(path))
      } catch (error) {
        log.warn('attachment file not removed', { path: file.file_path, ...describeError(error) })
      }
    }
  }
  for (const taskId of new Set(files.map((f) => f.task_id)))
    await rm(join(root, taskId), { recursive: true, force: true }).catch((error: unknown) =>
      log.warn('attachment folder not removed', { task_id: taskId, ...describeError(error) }),
    )
  // Only empty folders go; anything else in them stays.
  for (const folder of folders) await rmdir(folder).catch(() => {})
}
