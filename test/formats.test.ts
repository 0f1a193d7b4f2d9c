import { describe, expect, it, setDefaultTimeout } from 'bun:test'
import { FormatRegistry } from '@sinclair/typebox'
import '../src/app'
import { fastFormats } from '../src/formats'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

describe('string formats', () => {
  it('are the plain checks, not the per-call pipelines @elysiajs/openapi installs', () => {
    expect(FormatRegistry.Get('uuid')).toBe(fastFormats.uuid)
    expect(FormatRegistry.Get('email')).toBe(fastFormats.email)
  })

  it('accept and refuse what they should', () => {
    expect(fastFormats.uuid('01a21d72-0000-7000-8000-000000000000')).toBe(true)
    expect(fastFormats.uuid('01a21d72-0000-7000-8000-00000000000')).toBe(false)
    expect(fastFormats.uuid('not-a-uuid')).toBe(false)
    expect(fastFormats.email('ada@example.com')).toBe(true)
    expect(fastFormats.email('ada@')).toBe(false)
    expect(fastFormats.email('a b@example.com')).toBe(false)
  })
})
