// Copies the browser-ready builds that index.html loads out of node_modules (installed by `npm ci`
// from the committed lock file) into vendor/, which the api serves under /graphiql/assets/.
// Only these files leave node_modules: the api image carries vendor/, not 58 MB of packages.
//
//   cd web/graphiql && npm ci && node collect.mjs
//
// Every file is a UMD build that defines a global (React, ReactDOM, GraphiQL, graphqlWs,
// GraphiQLPluginExplorer), so the page needs no bundler and no module loader.
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const FILES = {
  'react.production.min.js': 'react/umd/react.production.min.js',
  'react-dom.production.min.js': 'react-dom/umd/react-dom.production.min.js',
  // GraphiQL's UMD build bundles its own graphql, exposed as GraphiQL.GraphQL.
  'graphiql.min.js': 'graphiql/graphiql.min.js',
  'graphiql.min.css': 'graphiql/graphiql.min.css',
  'graphql-ws.min.js': 'graphql-ws/umd/graphql-ws.min.js',
  'plugin-explorer.umd.js': '@graphiql/plugin-explorer/dist/index.umd.js',
  'plugin-explorer.css': '@graphiql/plugin-explorer/dist/style.css',
};

const installed = (path) => existsSync(join(here, 'node_modules', path));
const missing = Object.values(FILES).filter((path) => !installed(path));
if (missing.length) {
  console.error(`collect.mjs: not in node_modules (run npm ci first): ${missing.join(', ')}`);
  process.exit(1);
}
const vendor = join(here, 'vendor');
rmSync(vendor, { recursive: true, force: true });
mkdirSync(vendor);
for (const [name, path] of Object.entries(FILES)) {
  copyFileSync(join(here, 'node_modules', path), join(vendor, name));
}
