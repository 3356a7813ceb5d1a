// heysh's GraphiQL page. Everything it loads comes from the api's own origin (no CDN).
//
// Queries and mutations go over HTTP POST to this page's own URL (/graphql); subscriptions go
// over a WebSocket to the same path with graphql-ws (`graphql-transport-ws`). One token serves
// both: the Token field, or an `Authorization` header in the Headers editor, which wins. Over
// HTTP it is the Authorization header; over the WebSocket the api reads it from connection_init's
// payload as {"Authorization": "Bearer <token>"} (exactly that key), so it is sent there.
'use strict';

(function () {
  const TOKEN_KEY = 'heysh.graphiql.token';
  const FORBIDDEN = 4403; // graphql-transport-ws: connection_init refused (a bad or missing token)
  const { GraphQL } = GraphiQL; // the graphql-js that GraphiQL's UMD build bundles

  const httpUrl = window.location.origin + window.location.pathname;
  const wsUrl = httpUrl.replace(/^http/, 'ws'); // http: -> ws:, https: -> wss:

  // The token lives in sessionStorage: it survives a reload but not the tab, and is never
  // written to localStorage where it would outlive the session.
  const tokenInput = document.getElementById('heysh-token');
  tokenInput.value = window.sessionStorage.getItem(TOKEN_KEY) || '';
  tokenInput.addEventListener('input', function () {
    const token = tokenInput.value.trim();
    if (token) window.sessionStorage.setItem(TOKEN_KEY, token);
    else window.sessionStorage.removeItem(TOKEN_KEY);
  });
  document.getElementById('heysh-auth').addEventListener('submit', function (event) {
    event.preventDefault();
  });

  function isAuthorization(name) {
    return name.toLowerCase() === 'authorization';
  }

  /** The Authorization value for an operation: the Headers editor's, else the Token field's. */
  function authorization(headers) {
    for (const [name, value] of Object.entries(headers || {})) {
      if (isAuthorization(name) && typeof value === 'string' && value.trim()) return value.trim();
    }
    const token = tokenInput.value.trim();
    if (!token) return undefined;
    return /^bearer\s/i.test(token) ? token : 'Bearer ' + token;
  }

  // Parsed from the text being sent: GraphiQL's own documentAST can lag behind the editor by a
  // keystroke's debounce, and would send a just-typed subscription over HTTP.
  function operationType(params) {
    let document;
    try {
      document = GraphQL.parse(params.query);
    } catch (error) {
      return 'query'; // the server reports the syntax error
    }
    const operations = document.definitions.filter((d) => d.kind === 'OperationDefinition');
    const chosen = params.operationName
      ? operations.find((d) => d.name && d.name.value === params.operationName)
      : operations[0];
    return chosen ? chosen.operation : 'query';
  }

  // ---- HTTP: GraphiQL's own fetcher, given the one Authorization header.
  const httpFetcher = GraphiQL.createFetcher({ url: httpUrl });

  function fetchOverHttp(params, opts) {
    const headers = {};
    for (const [name, value] of Object.entries((opts && opts.headers) || {})) {
      if (!isAuthorization(name)) headers[name] = value;
    }
    const auth = authorization(opts && opts.headers);
    if (auth) headers.Authorization = auth;
    return httpFetcher(params, Object.assign({}, opts, { headers: headers }));
  }

  // ---- WebSocket: one lazy graphql-ws client per Authorization value. A lazy client opens its
  // socket for the first subscription and closes it when the last one ends, so a client kept for
  // an old token holds no connection.
  const wsClients = new Map();

  function wsClient(auth) {
    let client = wsClients.get(auth);
    if (!client) {
      client = graphqlWs.createClient({
        url: wsUrl,
        lazy: true,
        connectionParams: auth ? { Authorization: auth } : {},
        // Retry a dropped connection (an api restart), never a refused token.
        shouldRetry: (event) => !(event && event.code === FORBIDDEN),
      });
      wsClients.set(auth, client);
    }
    return client;
  }

  // Shaped like a GraphQL error list, which GraphiQL shows as {"errors": [...]}.
  function closeErrors(event) {
    const message =
      event.code === FORBIDDEN
        ? 'The api refused the WebSocket connection (4403 Forbidden): give a valid token in ' +
          'the Token field or as an Authorization header.'
        : 'The WebSocket closed (code ' +
          event.code +
          (event.reason ? ': ' + event.reason : '') +
          ')';
    return [{ message: message }];
  }

  /** An Observable, which GraphiQL subscribes to and unsubscribes from (its Stop button). */
  function subscribeOverWebSocket(params, opts) {
    const client = wsClient(authorization(opts && opts.headers));
    const payload = { query: params.query, variables: params.variables || undefined };
    if (params.operationName) payload.operationName = params.operationName;
    return {
      subscribe: function (observer) {
        const dispose = client.subscribe(payload, {
          next: (result) => observer.next(result),
          // A server `error` message arrives as a list of GraphQL errors; GraphiQL shows it as is.
          error: (error) =>
            observer.error(
              error && typeof error.code === 'number' && 'reason' in error
                ? closeErrors(error)
                : error,
            ),
          complete: () => observer.complete(),
        });
        return { unsubscribe: dispose };
      },
    };
  }

  function fetcher(params, opts) {
    return operationType(params) === 'subscription'
      ? subscribeOverWebSocket(params, opts)
      : fetchOverHttp(params, opts);
  }

  const DEFAULT_QUERY = [
    '# heysh GraphiQL. Paste a token into the Token field above',
    '# (`.venv/bin/heysh token --user alice` while `make dev` runs), then run an',
    '# operation with Ctrl-Enter or the run button. Queries and mutations go over',
    '# HTTP; subscriptions over a WebSocket to the same URL, with the same token.',
    '',
    '{',
    '  viewer {',
    '    id',
    '  }',
    '}',
    '',
  ].join('\n');

  const root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: DEFAULT_QUERY,
      plugins: [GraphiQLPluginExplorer.explorerPlugin()],
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      inputValueDeprecation: true,
    }),
  );
})();
