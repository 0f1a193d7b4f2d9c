import { mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { join, resolve, sep } from 'node:path'
import type { Config } from '../../config'

/**
 * Files live at UPLOAD_DIR/<project id>/<task id>/<attachment id>: generated names only, one
 * folder per task and per project so deleting either removes its files in one call. Folders are
 * 0700, files 0600.
 */
export function attachmentPath(projectId: string, taskId: string, attachmentId: string) {
  return join(projectId, taskId, attachmentId)
}

/** The absolute path of a stored relative path, refusing anything that would leave UPLOAD_DIR. */
export function absolutePath(config: Pick<Config, 'uploadDir'>, relativePath: string) {
  const root = resolve(config.uploadDir)
  const full = resolve(root, relativePath)
  if (!full.startsWith(root + sep)) throw new Error('attachment path outside UPLOAD_DIR')
  return full
}

/** Writes the bytes under a temporary name beside their final place; returns both paths. */
export async function writeTemporary(
  config: Pick<Config, 'uploadDir'>,
  relativePath: string,
  bytes: Uint8Array,
) {
  const final = absolutePath(config, relativePath)
  const temporary = `${final}.part`
  await mkdir(resolve(final, '..'), { recursive: true, mode: 0o700 })
  await writeFile(temporary, bytes, { mode: 0o600, flag: 'wx' })
  return { temporary, final }
}

export const moveIntoPlace = (paths: { temporary: string; final: string }) =>
  rename(paths.temporary, paths.final)

/** Removes files or folders, ignoring those already gone. */
export async function removeQuietly(...paths: string[]) {
  await Promise.all(paths.map((p) => rm(p, { force: true, recursive: true })))
}

/** Removes every stored file of a task; call it after the task's deletion has committed. */
export async function removeTaskFiles(
  config: Pick<Config, 'uploadDir'>,
  projectId: string,
  taskId: string,
) {
  await removeQuietly(absolutePath(config, join(projectId, taskId)))
}

/** Removes every stored file of a project; call it after the project's deletion has committed. */
export async function removeProjectFiles(config: Pick<Config, 'uploadDir'>, projectId: string) {
  await removeQuietly(absolutePath(config, projectId))
}
