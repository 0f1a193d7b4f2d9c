import { describe, expect, it, setDefaultTimeout } from 'bun:test'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

// No Docker engine runs the tests: what the image build needs from the context is checked here.
const root = join(import.meta.dir, '..')
const read = (name: string) => readFileSync(join(root, name), 'utf8')

/** Whether .dockerignore leaves `path` in the build context (its last matching rule decides). */
function inContext(path: string, rules: string[]) {
  let kept = true
  for (const rule of rules) {
    const negated = rule.startsWith('!')
    const pattern = (negated ? rule.slice(1) : rule).replace(/\/$/, '')
    if (new Bun.Glob(pattern).match(path)) kept = negated
  }
  return kept
}

describe('Dockerfile', () => {
  it('copies from the build context only what exists and what .dockerignore lets in', () => {
    const rules = read('.dockerignore')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'))
    const sources = read('Dockerfile')
      .split('\n')
      .filter((line) => /^COPY\s/.test(line) && !line.includes('--from='))
      .flatMap((line) => line.trim().split(/\s+/).slice(1, -1))
      .filter((word) => !word.startsWith('--'))
    expect(sources).toContain('patches')
    for (const source of sources) {
      expect({ source, exists: existsSync(join(root, source)) }).toEqual({ source, exists: true })
      expect({ source, inContext: inContext(source, rules) }).toEqual({ source, inContext: true })
    }
  })
})

describe('docker-compose.yml', () => {
  type Service = {
    environment?: Record<string, string>
    volumes?: string[]
  }
  const compose = Bun.YAML.parse(read('docker-compose.yml')) as {
    services: Record<string, Service>
    volumes?: Record<string, unknown>
  }
  const instances = Object.entries(compose.services).filter(
    ([, service]) => service.environment?.DATABASE_URL,
  )

  it('gives every instance the same attachment folder, writable by the image’s user', () => {
    expect(instances.length).toBeGreaterThan(1)
    // An upload answered by one instance is downloaded through another behind the balancer.
    const mounts = instances.map(([name, service]) => {
      const uploadDir = service.environment?.UPLOAD_DIR ?? '/data/uploads'
      const mount = (service.volumes ?? []).find((v) => v.split(':')[1] === uploadDir)
      return { name, volume: mount?.split(':')[0] }
    })
    const volume = mounts[0]?.volume
    expect(volume).toBeString()
    expect(compose.volumes ?? {}).toHaveProperty(volume as string)
    for (const mount of mounts) expect(mount).toEqual({ name: mount.name, volume })
    // A named volume takes the owner of the image's folder at its mount point: it must exist.
    expect(read('Dockerfile')).toMatch(
      /mkdir -p \/data\/uploads[\s\S]*chown -R taskapi:taskapi \/data/,
    )
  })
})
