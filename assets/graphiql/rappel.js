// Rappel's start-up code for the vendored GraphiQL (MIT, like Rappel). The page's settings come
// from the JSON in <script id="rappel-settings" type="application/json">: no inline script, so the
// Content-Security-Policy can forbid every script that is not one of these files.
(function () {
  'use strict';
  var settings = JSON.parse(document.getElementById('rappel-settings').textContent);
  var wsUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + settings.subscriptionEndpoint;
  // Queries and mutations go over HTTP; subscriptions over the WebSocket, whose connection
  // payload GraphiQL fills with the Headers tab's content (that is how Rappel authenticates it).
  var fetcher = GraphiQL.createFetcher({ url: settings.endpoint, subscriptionUrl: wsUrl });

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
