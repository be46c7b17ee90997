// Rappel's start-up code for the vendored GraphiQL (MIT, like Rappel). The page's settings come
// from the JSON in <script id="rappel-settings" type="application/json">: no inline script, so the
// Content-Security-Policy can forbid every script that is not one of these files.
(function () {
  'use strict';
  var settings = JSON.parse(document.getElementById('rappel-settings').textContent);
  var httpFetcher = GraphiQL.createFetcher({ url: settings.endpoint });
  var wsUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + settings.subscriptionEndpoint;

  // Subscriptions authenticate in the WebSocket's connection payload, not in HTTP headers: each
  // subscription opens a socket whose payload is the Headers tab's content.
  function fetcher(params, options) {
    var headers = (options && options.headers) || {};
    var isSubscription = /^\s*subscription\b/m.test(params.query || '') &&
      (!params.operationName || new RegExp('subscription\\s+' + params.operationName + '\\b').test(params.query));
    if (isSubscription) {
      return GraphiQL.createFetcher({ url: settings.endpoint, subscriptionUrl: wsUrl, wsConnectionParams: headers })(params, options);
    }
    return httpFetcher(params, options);
  }

  var plugins = [];
  if (window.GraphiQLPluginExplorer) {
    plugins.push(GraphiQLPluginExplorer.explorerPlugin());
  }
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, {
    fetcher: fetcher,
    defaultQuery: settings.defaultQuery,
    defaultHeaders: settings.defaultHeaders,
    isHeadersEditorEnabled: true,
    shouldPersistHeaders: false,
    defaultEditorToolsVisibility: 'headers',
    plugins: plugins,
  }));
})();
