import { Elysia } from 'elysia'
// The package's exports map hides its browser build, so it is imported by path. As a file import
// it is embedded in the compiled binary, like the PGlite assets (scripts/build.ts checks it), and
// its value is the file's path: the bundle itself has no type declarations.
// @ts-expect-error TS7016: a browser bundle without declarations, used as a path only.
import scalarBundle from '../node_modules/@scalar/api-reference/dist/browser/standalone.js' with {
  type: 'file',
}
import scalarPkg from '../node_modules/@scalar/api-reference/package.json'

/** Where the page's own files are served; the page loads nothing else. */
export const DOCS_ASSETS = {
  bundle: `/docs/assets/scalar-${scalarPkg.version}.js`,
  init: '/docs/assets/init.js',
}

// Nothing from another origin: scripts are files of this server, no inline script runs, requests
// go back to this server only. Scalar injects its styles at run time, hence 'unsafe-inline' for
// styles (styles cannot run code); fonts fall back to the system's (withDefaultFonts: false).
export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

// Scalar's configuration: the features that call Scalar's hosted services (agent chat, MCP,
// deploy/share toolbar, registry, telemetry, its request proxy, its web fonts) are off.
function scalarConfig(specPath: string) {
  return {
    url: specPath,
    withDefaultFonts: false,
    telemetry: false,
    agent: { disabled: true },
    mcp: { disabled: true },
    showToolbar: 'never',
    showDeveloperTools: 'never',
    hideClientButton: true,
    persistAuth: false,
    documentDownloadType: 'json',
    defaultOpenFirstTag: true,
    operationTitleSource: 'summary',
  }
}

const securityHeaders = {
  'content-security-policy': DOCS_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
}

/** GET /docs: the Scalar API reference, with its bundle and start script served from here. */
export function docsUi({ title, specPath }: { title: string; specPath: string }) {
  const page = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>${escapeHtml(title)} API reference</title>
  </head>
  <body>
    <div id="app"></div>
    <script src="${DOCS_ASSETS.bundle}"></script>
    <script src="${DOCS_ASSETS.init}"></script>
  </body>
</html>
`
  const init = `Scalar.createApiReference('#app', ${JSON.stringify(scalarConfig(specPath))})\n`
  const hide = { detail: { hide: true } }
  return new Elysia({ name: 'docs-ui' })
    .get(
      '/docs',
      () =>
        new Response(page, {
          headers: { 'content-type': 'text/html; charset=utf-8', ...securityHeaders },
        }),
      hide,
    )
    .get(
      DOCS_ASSETS.init,
      () =>
        new Response(init, {
          headers: { 'content-type': 'text/javascript; charset=utf-8', ...securityHeaders },
        }),
      hide,
    )
    .get(
      DOCS_ASSETS.bundle,
      () =>
        new Response(Bun.file(scalarBundle as string), {
          headers: {
            'content-type': 'text/javascript; charset=utf-8',
            // The name carries the version, so a browser may keep it.
            'cache-control': 'public, max-age=31536000, immutable',
            ...securityHeaders,
          },
        }),
      hide,
    )
}
