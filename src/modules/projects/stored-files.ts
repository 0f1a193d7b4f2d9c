import { rm, rmdir } from 'node:fs/promises'
import { dirname, join, resolve, sep } from 'node:path'
import type { Config } from '../../config'
import { describeError, type Logger } from '../../logger'

/** Where attachments live: UPLOAD_DIR when the config has it, else DATA_DIR/uploads. */
export function uploadDirOf(config: Config): string {
  const configured = (config as Config & { uploadDir?: string }).uploadDir
  return resolve(configured ?? join(config.dataDir, 'uploads'))
}

/**
 * Removes attachment files whose rows are gone (after the commit that deleted them). Missing
 * files are fine; a path that resolves outside the upload folder is never touched. Per-task
 * folders left empty are removed too.
 */
export async function removeStoredFiles(config: Config, log: Logger, paths: string[]) {
  const root = uploadDirOf(config)
  const inside = (path: string) => path.startsWith(root + sep)
  const folders = new Set<string>()
  for (const stored of paths) {
    const path = resolve(root, stored)
    if (!inside(path)) {
      log.warn('attachment path outside the upload folder left alone', { path: stored })
      continue
    }
    try {
      await rm(path, { force: true })
      if (inside(dirname(path))) folders.add(dirname(path))
    } catch (error) {
      log.warn('attachment file not removed', { path: stored, ...describeError(error) })
    }
  }
  // Only empty folders go; anything else in them (another task's files) stays.
  for (const folder of folders) await rmdir(folder).catch(() => {})
}
