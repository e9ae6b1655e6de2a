//! The page's only style sheet.

/// Print-friendly, readable without any external font or script.
pub(super) const CSS: &str = r#"
:root { --valid: #1a7f37; --invalid: #cf222e; --unknown: #9a6700; --error: #6e40c9; --muted: #57606a; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 80rem; padding: 1.5rem; color: #1f2328; line-height: 1.45; }
header { border-bottom: 2px solid var(--line); margin-bottom: 1rem; padding-bottom: 1rem; }
h1 { margin: 0 0 .5rem; font-size: 1.8rem; word-break: break-all; }
h2 { border-bottom: 1px solid var(--line); padding-bottom: .2rem; margin-top: 2rem; }
.badges { display: flex; gap: .6rem; align-items: center; }
.badge { display: inline-block; color: #fff; font-weight: 700; border-radius: .4rem; padding: .35rem 1.1rem; font-size: 1.6rem; letter-spacing: .05em; }
.badge.small { font-size: .75rem; padding: .1rem .5rem; text-transform: uppercase; vertical-align: middle; }
.badge.valid { background: var(--valid); } .badge.invalid { background: var(--invalid); }
.badge.unknown { background: var(--unknown); } .badge.error { background: var(--error); }
.badge.interrupted { background: var(--muted); font-size: 1rem; }
.headline { font-size: 1.15rem; margin: .6rem 0 0; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid var(--line); padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
table.kv th { width: 8rem; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.bar { height: 0.8em; min-width: 1px; background: #4a7; }
.bar.late { background: #c33; }
tr.late td { color: #a00; }
td.stats { font-size: .85rem; color: var(--muted); }
.box { border-radius: .4rem; padding: .6rem 1rem; margin: .8rem 0; }
.box.error { background: #fbefff; border: 1px solid var(--error); }
.box.interrupted { background: #f6f8fa; border: 1px solid var(--muted); }
pre { white-space: pre-wrap; margin: .3rem 0 0; }
.anomaly { border-left: 4px solid var(--invalid); padding: .2rem 1rem; margin: 1rem 0; background: #fff8f8; }
.anomaly.possible { border-left-color: var(--unknown); background: #fffbeb; }
.explain { font-weight: 600; }
.explain.brief { font-weight: normal; margin: .2rem 0; }
ol.timeline { list-style: none; padding-left: 0; }
ol.timeline li { padding: .15rem 0 .15rem .6rem; border-left: 3px solid var(--line); margin-left: .2rem; }
ol.timeline li.fault { border-left-color: var(--error); }
ol.timeline li.expiry { border-left-color: var(--unknown); }
ol.timeline li.stale { border-left-color: var(--invalid); font-weight: 600; }
.t { display: inline-block; min-width: 7rem; font-variant-numeric: tabular-nums; color: var(--muted); }
.ev { font-size: .8rem; color: var(--muted); }
.fenced { border-left: 4px solid var(--valid); padding: .4rem 1rem; background: #f0fff4; }
.note { color: var(--muted); font-size: .9rem; }
table.history { font-size: .8rem; width: 100%; }
table.history code { word-break: break-all; }
tr.fail td { color: #8c1d18; } tr.info td { color: var(--unknown); } tr.invoke td { color: var(--muted); }
tr.evidence td { background: #fff1b8; }
tr.cut td { text-align: center; font-style: italic; color: var(--muted); }
tr:target td { outline: 2px solid var(--invalid); }
footer { margin-top: 2rem; color: var(--muted); font-size: .8rem; }
"#;
