/// The web UI's Mustache templates: server-rendered, no JavaScript, one stylesheet.
enum WebTemplates {
    static let layout = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · PullSketch</title>
        <style>
        :root { --ink: #1c2230; --muted: #5f6b7f; --line: #e3e7ee; --accent: #2563eb; --warn: #a15c07; --bg: #f7f8fb; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: var(--bg); }
        header { background: #111827; color: #fff; padding: 14px 32px; display: flex; align-items: baseline; gap: 16px; }
        header a { color: #fff; text-decoration: none; font-weight: 650; font-size: 17px; }
        header span { color: #9ca3af; font-size: 13px; }
        main { max-width: 1080px; margin: 28px auto; padding: 0 24px; }
        h1 { font-size: 22px; margin: 0 0 4px; word-break: break-all; }
        .sub { color: var(--muted); margin: 0 0 20px; }
        form.search { display: flex; gap: 8px; margin-bottom: 20px; }
        input[type=search], input[type=password] { flex: 1; padding: 9px 12px; border: 1px solid var(--line); border-radius: 8px; font: inherit; }
        button { padding: 9px 16px; border: 0; border-radius: 8px; background: var(--accent); color: #fff; font: inherit; cursor: pointer; }
        table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid var(--line); border-radius: 10px; overflow: hidden; }
        table + table { margin-top: 20px; }
        th, td { text-align: left; padding: 10px 14px; border-bottom: 1px solid var(--line); }
        th { background: #f1f4f9; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
        th a { color: inherit; text-decoration: none; }
        th a.active { color: var(--ink); }
        tr:last-child td { border-bottom: 0; }
        td.num { text-align: right; font-variant-numeric: tabular-nums; }
        th.num { text-align: right; }
        code { font: 13px ui-monospace, SFMono-Regular, Menlo, monospace; background: #f1f4f9; padding: 2px 6px; border-radius: 5px; }
        a { color: var(--accent); }
        .never { color: var(--muted); }
        .approx { color: var(--warn); font-size: 12px; margin-left: 6px; cursor: help; }
        .empty { background: #fff; border: 1px dashed var(--line); border-radius: 10px; padding: 36px; text-align: center; color: var(--muted); }
        .legend { color: var(--muted); font-size: 13px; margin-top: 12px; }
        nav.pager { display: flex; gap: 14px; align-items: baseline; margin-top: 14px; }
        nav.pager span { color: var(--muted); }
        dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 6px 18px; background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 16px 20px; margin: 0 0 20px; }
        dl.facts dt { color: var(--muted); }
        dl.facts dd { margin: 0; }
        .unattributed { color: var(--warn); background: #fff7ed; border: 1px solid #fed7aa; border-radius: 8px; padding: 8px 12px; }
        </style>
        </head>
        <body>
        <header><a href="/">PullSketch</a><span>when each image was last pulled, and how often</span></header>
        <main>
        {{{content}}}
        </main>
        </body>
        </html>
        """

    static let search = """
        <h1>Repositories</h1>
        <p class="sub">Search by part of a name; statistics are as of the last reconcile.</p>
        <form class="search" method="get" action="/">
          <input type="search" name="q" value="{{query}}" placeholder="team/app" autofocus>
          <button type="submit">Search</button>
        </form>
        {{#hasRepositories}}
        <table>
          <thead><tr><th>Repository</th><th class="num">Tags</th><th>Last pulled</th></tr></thead>
          <tbody>
          {{#repositories}}
            <tr><td><a href="/repository/{{name}}">{{name}}</a></td><td class="num">{{tags}}</td>
            <td>{{#lastPulled}}<span title="{{utc}}">{{relative}}</span>{{/lastPulled}}{{^lastPulled}}<span class="never">never</span>{{/lastPulled}}</td></tr>
          {{/repositories}}
          </tbody>
        </table>
        {{/hasRepositories}}
        {{^repositories}}<div class="empty">No repository matches{{#query}} “{{query}}”{{/query}}.</div>{{/repositories}}
        """

    static let repository = """
        <h1>{{repository}}</h1>
        <p class="sub">{{shown}} · sorted by {{sortLabel}} · <a href="{{csv}}">download CSV</a> · {{#knownSince}}<span title="pulls before then are unknown to PullSketch: “never” means not since then">pulls known from <span title="{{utc}}">{{relative}}</span></span>{{/knownSince}}{{^knownSince}}no live pulls counted yet{{/knownSince}}</p>
        {{#unattributed}}<p class="unattributed" title="{{exact}} pulls">{{count}} pulls of this repository reached no tag's count: the node saw more new tags at once than it could name. Tags pulled in that burst may show fewer pulls than they had.</p>{{/unattributed}}
        {{#hasTags}}
        <table id="tags">
          <thead><tr>
            <th><a class="{{nameActive}}" href="?sort=name&amp;order={{nameOrder}}&amp;limit={{limit}}">Tag</a></th>
            <th>Manifest</th>
            <th><a class="{{lastActive}}" href="?sort=last_pulled&amp;order={{lastOrder}}&amp;limit={{limit}}">Last pulled</a></th>
            <th title="the latest GET or HEAD of the tag or its manifest, by tag or by digest">Last used</th>
            <th class="num"><a class="{{countActive}}" href="?sort=pull_count&amp;order={{countOrder}}&amp;limit={{limit}}">Pulls</a></th>
          </tr></thead>
          <tbody>
          {{#tags}}
            <tr>
              <td><code>{{tag}}</code></td>
              <td>{{#digest}}<a href="{{link}}"><code title="{{full}}">{{short}}</code></a>{{/digest}}{{^digest}}<span class="never">—</span>{{/digest}}</td>
              <td>{{#lastPulled}}<span title="{{utc}}">{{relative}}</span>{{/lastPulled}}{{^lastPulled}}<span class="never">never</span>{{/lastPulled}}</td>
              <td>{{#lastUsed}}<span title="{{utc}}">{{relative}}</span>{{/lastUsed}}{{^lastUsed}}<span class="never">never</span>{{/lastUsed}}</td>
              <td class="num"><span class="count" title="{{exactCount}} pulls">{{count}}</span>{{#approximate}}<span class="approx" title="approximate: between {{low}} and {{high}} pulls">≈ ±{{error}}</span>{{/approximate}}</td>
            </tr>
          {{/tags}}
          </tbody>
        </table>
        {{#pages}}<nav class="pager"><a href="{{first}}">first</a>{{#previous}}<a href="{{previous}}" rel="prev">previous</a>{{/previous}}<span>page {{current}} of {{last}} · {{total}}</span>{{#next}}<a href="{{next}}" rel="next">next</a>{{/next}}<a href="{{final}}">last</a></nav>{{/pages}}
        <p class="legend">Times in UTC on hover. Last used counts every request that resolved the tag or its manifest — a HEAD, or a pull by digest — and is what pruning reads. ≈ marks a count estimated from the sketch: an upper bound, with the most it may exceed the truth.</p>
        {{/hasTags}}
        {{^tags}}<div class="empty">No tags known for this repository yet. Tags appear once the registry reports a push or a pull.</div>{{/tags}}
        """

    static let manifest = """
        <h1>{{repository}}</h1>
        <p class="sub"><code>{{digest}}</code>{{#ownPlatform}} · <span id="platform">{{ownPlatform}}</span>{{/ownPlatform}}{{#untagged}}{{^hasIndexes}} · untagged{{/hasIndexes}}{{/untagged}}</p>
        {{#hasIndexes}}<p class="sub" id="indexes">Platform manifest of {{#indexes}}<a href="{{link}}" title="{{full}}"><code>{{short}}</code></a> {{/indexes}}— in use while any of them is.</p>{{/hasIndexes}}
        <dl class="facts">
          <dt>Pulls</dt><dd><span class="count" title="{{exactCount}} pulls">{{count}}</span>{{#approximate}}<span class="approx" title="approximate: between {{low}} and {{high}} pulls">≈ ±{{error}}</span>{{/approximate}}</dd>
          <dt>Last pulled</dt><dd>{{#manifestLastPulled}}<span title="{{utc}}">{{relative}}</span>{{/manifestLastPulled}}{{^manifestLastPulled}}<span class="never">never</span>{{/manifestLastPulled}}</dd>
          <dt>Last used</dt><dd>{{#manifestLastUsed}}<span title="{{utc}}">{{relative}}</span>{{/manifestLastUsed}}{{^manifestLastUsed}}<span class="never">never</span>{{/manifestLastUsed}}</dd>
          <dt>Last pulled by tag</dt><dd>{{#lastTagPulled}}<code>{{lastTagPulled}}</code>{{/lastTagPulled}}{{^lastTagPulled}}<span class="never">—</span>{{/lastTagPulled}}</dd>
          <dt>Pushed</dt><dd>{{#pushed}}<span title="{{utc}}">{{relative}}</span>{{/pushed}}{{^pushed}}<span class="never">unknown</span>{{/pushed}}</dd>
        </dl>
        {{#hasTags}}
        <table id="manifest-tags">
          <thead><tr><th>Tag pointing here</th><th>Last pulled</th><th class="num">Pulls</th></tr></thead>
          <tbody>
          {{#tags}}
            <tr><td><code>{{tag}}</code></td>
            <td>{{#lastPulled}}<span title="{{utc}}">{{relative}}</span>{{/lastPulled}}{{^lastPulled}}<span class="never">never</span>{{/lastPulled}}</td>
            <td class="num">{{count}}</td></tr>
          {{/tags}}
          </tbody>
        </table>
        {{/hasTags}}
        {{#hasPlatforms}}
        <table id="manifest-platforms">
          <thead><tr><th>Platform</th><th>Manifest</th><th>Last pulled</th><th class="num">Pulls</th></tr></thead>
          <tbody>
          {{#platforms}}
            <tr><td>{{#platformName}}<code>{{platformName}}</code>{{/platformName}}{{^platformName}}<span class="never">unknown</span>{{/platformName}}</td>
            <td><a href="{{digestLink}}" title="{{digestFull}}"><code>{{digestShort}}</code></a></td>
            <td>{{#lastPulled}}<span title="{{utc}}">{{relative}}</span>{{/lastPulled}}{{^lastPulled}}<span class="never">never</span>{{/lastPulled}}</td>
            <td class="num">{{count}}</td></tr>
          {{/platforms}}
          </tbody>
        </table>
        <p class="legend">An image index is in use, for pruning, while any platform manifest it lists is.</p>
        {{/hasPlatforms}}
        {{^tags}}{{^hasIndexes}}<div class="empty">No tag points at this manifest: it is untagged.</div>{{/hasIndexes}}{{/tags}}
        <p class="legend"><a href="/repository/{{repository}}">All tags of {{repository}}</a></p>
        """

    /// A page the UI cannot show: what was wrong with the request, and the way back.
    static let problem = """
        <h1>{{heading}}</h1>
        <div class="empty">{{message}}</div>
        <p class="legend"><a href="/">Repositories</a></p>
        """

    static let login = """
        <h1>Sign in</h1>
        <p class="sub">Statistics need a reader token{{#failed}} — that token is not valid{{/failed}}{{#retryAfter}} — too many failed sign-ins from this address: try again in {{retryAfter}} s{{/retryAfter}}.</p>
        <form class="search" method="post" action="/login">
          <input type="password" name="token" placeholder="reader token" autofocus>
          <button type="submit">Sign in</button>
        </form>
        """
}
