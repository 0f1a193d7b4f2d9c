import { afterEach, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { createLogger } from '../src/logger'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

// The logger writes to the process streams; these tests catch what it writes.
const written = { stdout: [] as string[], stderr: [] as string[] }
const originals = { stdout: process.stdout.write, stderr: process.stderr.write }
function capture() {
  written.stdout = []
  written.stderr = []
  process.stdout.write = ((chunk: string) => written.stdout.push(chunk) > 0) as never
  process.stderr.write = ((chunk: string) => written.stderr.push(chunk) > 0) as never
}
afterEach(() => {
  process.stdout.write = originals.stdout
  process.stderr.write = originals.stderr
}, 60_000)
const lines = (chunks: string[]) => chunks.map((c) => JSON.parse(c))

describe('createLogger', () => {
  it('writes one JSON line per call, led by level, time and msg, warnings and errors on stderr', () => {
    capture()
    const log = createLogger('info', { service: 'taskapi' })
    log.debug('hidden')
    log.info('shown', { n: 1 })
    log.error('failed')
    expect(written.stdout.every((c) => c.endsWith('}\n'))).toBe(true)
    const [info] = lines(written.stdout)
    expect(Object.keys(info)).toEqual(['level', 'time', 'msg', 'service', 'n'])
    expect(info).toMatchObject({ level: 'info', msg: 'shown', service: 'taskapi', n: 1 })
    expect(new Date(info.time).toISOString()).toBe(info.time)
    expect(written.stdout).toHaveLength(1)
    expect(lines(written.stderr)).toMatchObject([{ level: 'error', msg: 'failed' }])
  })

  it('does not let a field overwrite the level, time or message', () => {
    capture()
    createLogger('info').info('real', { level: 'error', msg: 'forged', time: 'then' })
    const [line] = lines(written.stdout)
    expect(line.level).toBe('info')
    expect(line.msg).toBe('real')
    expect(line.time).not.toBe('then')
    expect(written.stderr).toEqual([])
  })

  it('never throws, whatever the fields hold', () => {
    capture()
    const cyclic: Record<string, unknown> = { name: 'loop' }
    cyclic.self = cyclic
    const log = createLogger('debug')
    log.info('odd fields', { big: 2n ** 64n, cyclic, cause: new TypeError('boom') })
    const [line] = lines(written.stdout)
    expect(line.big).toBe('18446744073709551616')
    expect(line.cyclic).toEqual({ name: 'loop', self: '[repeated]' })
    expect(line.cause).toEqual({ name: 'TypeError', message: 'boom' })
  })

  it('writes nothing at all when silent', () => {
    capture()
    const log = createLogger('silent')
    log.error('quiet')
    log.info('quiet')
    expect([...written.stdout, ...written.stderr]).toEqual([])
  })
})
