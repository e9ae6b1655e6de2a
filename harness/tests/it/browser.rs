//! Headless Chromium opens generated reports — a valid run's, an invalid
//! run's, one of a 100,000-op history, one full of hostile strings and an
//! empty one — and finds no console error, no uncaught exception, no CSP
//! violation and no injected element; the timeline draws, zooms, pans and
//! links as the history says it should; a screenshot of each is saved under
//! `$CARGO_TARGET_TMPDIR/browser/`. Tampered copies of a report show that the
//! checks would notice a string let through.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use headless_chrome::browser::tab::point::Point;
use headless_chrome::protocol::cdp::types::Event as CdpEvent;
use headless_chrome::protocol::cdp::{Input, Log, Page};
use headless_chrome::{Browser, LaunchOptions, Tab};
use leasehold_checker::{Event, History, Op, Outcome, Process};
use serde_json::{Value, json};

use crate::*;

/// How long a page may take to load and draw before a test gives up.
const PAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// The most op bars the timeline draws at once (the contract's limit).
const MAX_BARS: usize = 5000;

/// The strings an attacker would put in a history: each would run script,
/// load an image or add an element if any part of the report pasted it into
/// the page as markup or ended an element with it.
const HOSTILE: [&str; 4] = [
    "<script>window.__pwned=1</script>",
    r#""'><img src=x onerror="window.__pwned=2">"#,
    "</style><b id=injected>",
    "</script><script>window.__pwned=3</script>",
];

/// The browser to use: `LEASEHOLD_CHROMIUM`, else Debian's. Missing, it fails
/// the test in CI and skips it elsewhere.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("LEASEHOLD_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if path.is_file() {
        return Some(path);
    }
    assert!(
        !in_ci(),
        "CI=true but no Chromium at {} (apt-get install chromium, or set LEASEHOLD_CHROMIUM)",
        path.display()
    );
    eprintln!(
        "no Chromium at {}: skipping a browser test (apt-get install chromium, or set LEASEHOLD_CHROMIUM)",
        path.display()
    );
    None
}

/// Installed before any script of the page runs: records what the CDP events
/// might not name as such (CSP violations, failed resource loads).
const WATCHER: &str = r#"
window.__lhProblems = [];
document.addEventListener('securitypolicyviolation', e =>
  window.__lhProblems.push('CSP violation: ' + e.violatedDirective + ' blocked ' + e.blockedURI));
window.addEventListener('error', e =>
  window.__lhProblems.push('error event: ' + (e.message || (e.target && e.target.tagName))), true);
// When the timeline first drew, and the frame after that, in ms since
// navigation started; and when the page finished loading. The section comes
// with data-drawn="0" in the markup: the draw is when the SVG got its content
// and data-drawn was set.
new MutationObserver((_, seen) => {
  const t = document.getElementById('timeline');
  const svg = document.getElementById('timeline-svg');
  if (t && t.hasAttribute('data-drawn') && svg && svg.childElementCount > 0) {
    seen.disconnect();
    window.__lhDrawnAt = performance.now();
    requestAnimationFrame(() => setTimeout(() => { window.__lhPaintedAt = performance.now(); }));
  }
}).observe(document, {subtree: true, childList: true, attributes: true, attributeFilter: ['data-drawn']});
window.addEventListener('load', () => { window.__lhLoadedAt = performance.now(); });
"#;

/// One headless Chromium with one tab, and every problem its page reported.
struct Chrome {
    tab: Arc<Tab>,
    problems: Arc<Mutex<Vec<String>>>,
    // Dropped last: the browser process ends with it.
    _browser: Browser,
}

impl Chrome {
    fn launch(path: PathBuf) -> Chrome {
        let options = LaunchOptions::default_builder()
            .path(Some(path))
            // The tests run as root, where Chromium's sandbox cannot start.
            .sandbox(false)
            .headless(true)
            .window_size(Some((1400, 1000)))
            .idle_browser_timeout(Duration::from_secs(300))
            .args(vec![
                OsStr::new("--disable-gpu"),
                OsStr::new("--hide-scrollbars"),
            ])
            .build()
            .unwrap();
        let browser = Browser::new(options).expect("Chromium starts");
        let tab = browser.new_tab().expect("a tab");
        tab.set_default_timeout(PAGE_TIMEOUT);
        let problems = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&problems);
        tab.add_event_listener(Arc::new(move |event: &CdpEvent| {
            let problem = match event {
                CdpEvent::RuntimeExceptionThrown(e) => {
                    let d = &e.params.exception_details;
                    let what = d
                        .exception
                        .as_ref()
                        .and_then(|x| x.description.clone())
                        .unwrap_or_default();
                    Some(format!("uncaught exception: {} {what}", d.text))
                }
                // The timeline logs nothing on a valid page: any console call
                // is a problem, an error above all.
                CdpEvent::RuntimeConsoleAPICalled(e) => {
                    let args: Vec<String> = e
                        .params
                        .args
                        .iter()
                        .map(|a| {
                            a.value
                                .as_ref()
                                .map(Value::to_string)
                                .or_else(|| a.description.clone())
                                .unwrap_or_default()
                        })
                        .collect();
                    Some(format!("console.{:?}: {}", e.params.Type, args.join(" ")))
                }
                CdpEvent::LogEntryAdded(e) if e.params.entry.level == Log::LogEntryLevel::Error => {
                    Some(format!(
                        "log error ({:?}): {} {}",
                        e.params.entry.source,
                        e.params.entry.text,
                        e.params.entry.url.clone().unwrap_or_default()
                    ))
                }
                _ => None,
            };
            if let Some(p) = problem {
                sink.lock().unwrap().push(p);
            }
        }))
        .unwrap();
        tab.enable_log().unwrap();
        tab.enable_runtime().unwrap();
        tab.call_method(Page::AddScriptToEvaluateOnNewDocument {
            source: WATCHER.to_owned(),
            world_name: None,
            include_command_line_api: None,
            run_immediately: None,
        })
        .unwrap();
        Chrome {
            tab,
            problems,
            _browser: browser,
        }
    }

    /// Evaluates `body` (the body of a function) and returns what it returned,
    /// through JSON.
    fn js(&self, body: &str) -> Value {
        let expr = format!("JSON.stringify((() => {{ {body} }})() ?? null)");
        let r = self
            .tab
            .evaluate(&expr, false)
            .unwrap_or_else(|e| panic!("evaluate {body}: {e}"));
        match r.value {
            Some(Value::String(s)) => serde_json::from_str(&s).unwrap(),
            _ => panic!("evaluate {body}: {:?}", r.description),
        }
    }

    /// Waits until `body` returns true.
    fn wait_for(&self, what: &str, body: &str) {
        let start = Instant::now();
        while self.js(body) != Value::Bool(true) {
            assert!(
                start.elapsed() < PAGE_TIMEOUT,
                "timed out waiting for {what}; problems: {:?}",
                self.problems()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Loads `url` afresh and waits until the timeline has drawn and the page
    /// has loaded; returns when that happened.
    fn open(&self, url: &str) -> Opened {
        // From a blank page, so that a URL differing only in its fragment is a
        // new load, not a hash change. Not `wait_until_navigated`: it waits for
        // the network to be idle half a second.
        let start = self.load(url);
        self.wait_for(
            "the timeline to draw",
            "return location.protocol === 'file:' && document.readyState === 'complete' \
               && window.leaseholdTimeline !== undefined \
               && window.__lhPaintedAt !== undefined && window.__lhLoadedAt !== undefined;",
        );
        let waited = start.elapsed();
        let t = self.js("return [window.__lhDrawnAt, window.__lhPaintedAt, window.__lhLoadedAt];");
        let ms = |i: usize| t[i].as_f64().unwrap();
        Opened {
            drawn_ms: ms(0),
            painted_ms: ms(1),
            loaded_ms: ms(2),
            waited,
        }
    }

    /// Navigates to `url` from a blank page and returns when it started.
    fn load(&self, url: &str) -> Instant {
        self.tab.navigate_to("about:blank").unwrap();
        self.wait_for("a blank page", "return location.href === 'about:blank';");
        let start = Instant::now();
        self.tab.navigate_to(url).unwrap();
        start
    }

    /// What the CDP listeners and the in-page watcher recorded.
    fn problems(&self) -> Vec<String> {
        let mut all = self.problems.lock().unwrap().clone();
        if let Value::Array(a) = self.js("return window.__lhProblems || [];") {
            all.extend(a.iter().map(|p| p.as_str().unwrap_or_default().to_owned()));
        }
        all
    }

    /// Forgets what the listeners recorded so far.
    fn clear_problems(&self) {
        self.problems.lock().unwrap().clear();
    }

    fn assert_no_problems(&self, what: &str) {
        let problems = self.problems();
        assert!(problems.is_empty(), "{what}: {problems:#?}");
    }

    /// Nothing from the history became markup or script: no flag set, no
    /// image, no injected element, no inline handler, only our two scripts.
    fn assert_nothing_injected(&self, what: &str) {
        let found = self.injected();
        assert!(found.is_empty(), "{what}: {found:#?}");
    }

    /// What [`Chrome::assert_nothing_injected`] looks for, found on the page.
    fn injected(&self) -> Vec<String> {
        let found = self.js(
            r#"
            const scripts = [...document.scripts].map(s => ({type: s.type, id: s.id, src: s.src}));
            return {
              pwned: typeof window.__pwned,
              img: document.querySelectorAll('img').length,
              injected: document.querySelectorAll('#injected, b[id]').length,
              handlers: [...document.querySelectorAll('*')]
                .filter(e => [...e.attributes].some(a => a.name === 'onerror' || a.name === 'onload'))
                .map(e => e.tagName),
              scripts,
              // Our style sheets: the page's, in the head, and the timeline's; CSS
              // of ours has no '<', a style ended early by a history string would.
              styles: [...document.querySelectorAll('style')]
                .filter(s => !(s.parentNode === document.head || s.closest('#timeline')) || s.textContent.includes('<')).length,
            };"#,
        );
        let mut bad = Vec::new();
        if found["pwned"] != "undefined" {
            bad.push(format!("window.__pwned is set: {}", found["pwned"]));
        }
        if found["img"] != 0 {
            bad.push(format!("{} img elements", found["img"]));
        }
        if found["injected"] != 0 {
            bad.push(format!("{} injected b elements", found["injected"]));
        }
        if found["handlers"] != json!([]) {
            bad.push(format!("inline handlers on {}", found["handlers"]));
        }
        if found["styles"] != 0 {
            bad.push(format!("{} style elements not ours", found["styles"]));
        }
        let scripts = found["scripts"].as_array().unwrap();
        let data = scripts
            .iter()
            .filter(|s| s["type"] == "application/json" && s["id"] == "timeline-data")
            .count();
        let code = scripts
            .iter()
            .filter(|s| s["type"] == "" && s["src"] == "")
            .count();
        if !(scripts.len() == 2 && data == 1 && code == 1) {
            bad.push(format!(
                "the scripts are not just the timeline's data and code: {}",
                found["scripts"]
            ));
        }
        bad
    }

    /// A PNG of the whole `#timeline` section, saved as a test artifact.
    fn screenshot(&self, name: &str) -> PathBuf {
        let b = self.js(r#"const t = document.getElementById('timeline');
               t.scrollIntoView();
               const r = t.getBoundingClientRect();
               return {x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height};"#);
        let f = |k: &str| b[k].as_f64().unwrap();
        let png = self
            .tab
            .call_method(Page::CaptureScreenshot {
                format: Some(Page::CaptureScreenshotFormatOption::Png),
                quality: None,
                clip: Some(Page::Viewport {
                    x: f("x"),
                    y: f("y"),
                    width: f("w").max(1.0),
                    height: f("h").max(1.0),
                    scale: 1.0,
                }),
                from_surface: Some(true),
                capture_beyond_viewport: Some(true),
                optimize_for_speed: None,
            })
            .unwrap()
            .data;
        use base64::Engine as _;
        let png = base64::engine::general_purpose::STANDARD
            .decode(png)
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        println!("screenshot of the {name} report: {}", path.display());
        path
    }

    /// The timeline as drawn: its attributes, `view()` and every op bar.
    fn drawn(&self) -> Drawn {
        let v = self.js(
            r#"
            const t = document.getElementById('timeline');
            const bars = [...document.querySelectorAll('#timeline-svg rect.op')].map(r => {
              const b = r.getBoundingClientRect();
              return [Number(r.dataset.op), b.left, b.width, b.top + b.height / 2, r.getAttribute('class'),
                      !!r.closest('#timeline-ops')];
            });
            return {
              t0: Number(t.dataset.t0), t1: Number(t.dataset.t1),
              drawn: Number(t.dataset.drawn), ops: Number(t.dataset.ops),
              view: window.leaseholdTimeline ? window.leaseholdTimeline.view() : null,
              dense: document.querySelectorAll('#timeline-svg rect.dense').length,
              bars,
            };"#,
        );
        let bars = v["bars"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| Bar {
                op: b[0].as_u64().unwrap_or(u64::MAX),
                left: b[1].as_f64().unwrap(),
                width: b[2].as_f64().unwrap(),
                mid_y: b[3].as_f64().unwrap(),
                classes: b[4]
                    .as_str()
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect(),
                in_ops_group: b[5] == true,
            })
            .collect();
        let num = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        Drawn {
            t0: num("t0"),
            t1: num("t1"),
            drawn: num("drawn") as usize,
            ops: num("ops") as usize,
            view: v["view"].clone(),
            dense: v["dense"].as_u64().unwrap() as usize,
            bars,
        }
    }

    /// Clicks the element `selector` like a user: scrolled into view, a mouse
    /// press and release on its middle.
    fn click(&self, selector: &str) {
        self.tab
            .find_element(selector)
            .unwrap_or_else(|e| panic!("{selector}: {e}"))
            .click()
            .unwrap();
    }

    /// The middle of the timeline's drawing in the viewport, scrolled into
    /// view.
    fn svg_middle(&self) -> Point {
        let c = self.js(r#"const s = document.getElementById('timeline-svg');
               s.scrollIntoView({block: 'center'});
               const r = s.getBoundingClientRect();
               return {x: r.left + r.width / 2, y: r.top + r.height / 2};"#);
        Point {
            x: c["x"].as_f64().unwrap(),
            y: c["y"].as_f64().unwrap(),
        }
    }

    /// One mouse event at `at`, with the left button for presses and
    /// releases.
    fn mouse(&self, kind: Input::DispatchMouseEventTypeOption, at: Point, delta_y: f64) {
        let pressing = matches!(
            kind,
            Input::DispatchMouseEventTypeOption::MousePressed
                | Input::DispatchMouseEventTypeOption::MouseReleased
        );
        let wheel = kind == Input::DispatchMouseEventTypeOption::MouseWheel;
        self.tab
            .call_method(Input::DispatchMouseEvent {
                Type: kind,
                x: at.x,
                y: at.y,
                modifiers: None,
                timestamp: None,
                button: pressing.then_some(Input::MouseButton::Left),
                buttons: None,
                click_count: pressing.then_some(1),
                force: None,
                tangential_pressure: None,
                tilt_x: None,
                tilt_y: None,
                twist: None,
                delta_x: wheel.then_some(0.0),
                delta_y: wheel.then_some(delta_y),
                pointer_Type: None,
            })
            .unwrap();
    }

    /// A wheel turn over the middle of the timeline's drawing.
    fn wheel(&self, delta_y: f64) {
        use Input::DispatchMouseEventTypeOption::{MouseMoved, MouseWheel};
        let at = self.svg_middle();
        self.mouse(MouseMoved, at, 0.0);
        self.mouse(MouseWheel, at, delta_y);
    }

    /// A drag across the timeline's drawing, `dx` pixels to the right.
    fn drag(&self, dx: f64) {
        use Input::DispatchMouseEventTypeOption::{MouseMoved, MousePressed, MouseReleased};
        let from = self.svg_middle();
        let to = |f: f64| Point {
            x: from.x + dx * f,
            y: from.y,
        };
        self.mouse(MouseMoved, from, 0.0);
        self.mouse(MousePressed, from, 0.0);
        for f in [0.25, 0.5, 1.0] {
            self.mouse(MouseMoved, to(f), 0.0);
        }
        self.mouse(MouseReleased, to(1.0), 0.0);
    }

    /// The middle of the op bar `op` in the viewport, scrolled into view.
    fn bar_middle(&self, op: u64) -> Point {
        let p = self.js(&format!(
            r#"const r = document.querySelector('#timeline-svg rect.op[data-op="{op}"]');
               r.scrollIntoView({{block: 'center', inline: 'nearest'}});
               const b = r.getBoundingClientRect();
               return {{x: b.left + b.width / 2, y: b.top + b.height / 2}};"#
        ));
        Point {
            x: p["x"].as_f64().unwrap(),
            y: p["y"].as_f64().unwrap(),
        }
    }
}

/// When a page showed its timeline, by the page's clock (ms since its
/// navigation started), and how long the test waited for it.
struct Opened {
    drawn_ms: f64,
    painted_ms: f64,
    loaded_ms: f64,
    waited: Duration,
}

impl std::fmt::Display for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The first frame with the timeline in it is when a reader sees it.
        write!(
            f,
            "{:.0} ms (timeline drawn at {:.0} ms, page loaded at {:.0} ms; the test saw it after {} ms)",
            self.painted_ms,
            self.drawn_ms,
            self.loaded_ms,
            self.waited.as_millis()
        )
    }
}

/// One `rect.op` as drawn.
#[derive(Debug)]
struct Bar {
    op: u64,
    left: f64,
    width: f64,
    mid_y: f64,
    classes: Vec<String>,
    in_ops_group: bool,
}

/// The timeline's state after a draw.
#[derive(Debug)]
struct Drawn {
    t0: f64,
    t1: f64,
    drawn: usize,
    ops: usize,
    view: Value,
    dense: usize,
    bars: Vec<Bar>,
}

impl Drawn {
    fn span(&self) -> f64 {
        self.t1 - self.t0
    }
}

/// The ops of a history as the timeline should show them: start, end (the end
/// of the history for an op that never completed), outcome and lane.
struct Ops {
    by_index: HashMap<u64, Op>,
    end_of_history: u64,
}

impl Ops {
    fn of(events: &[Event]) -> Ops {
        let end_of_history = events.iter().map(|e| e.time).max().unwrap_or(0);
        let by_index = History::new(events.to_vec())
            .ops()
            .into_iter()
            .map(|o| (o.invoke_index, o))
            .collect();
        Ops {
            by_index,
            end_of_history,
        }
    }

    fn len(&self) -> usize {
        self.by_index.len()
    }

    fn end(&self, op: &Op) -> u64 {
        op.complete_time.unwrap_or(self.end_of_history)
    }

    /// Ops overlapping `[t0, t1]`.
    fn overlapping(&self, t0: f64, t1: f64) -> impl Iterator<Item = &Op> {
        self.by_index
            .values()
            .filter(move |o| o.invoke_time as f64 <= t1 && self.end(o) as f64 >= t0)
    }
}

fn read_history(path: &Path) -> Vec<Event> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Everything the contract says of a draw, checked against the history: the
/// counts, one bar per op in view (density marks past [`MAX_BARS`], for the
/// narrowest), the bars' classes, lanes and order in time.
fn assert_draw(d: &Drawn, ops: &Ops, what: &str) {
    assert_eq!(d.ops, ops.len(), "{what}: data-ops is the number of ops");
    assert!(d.t1 > d.t0, "{what}: an empty window {} .. {}", d.t0, d.t1);
    assert_eq!(
        d.bars.len(),
        d.drawn,
        "{what}: data-drawn counts the op bars"
    );
    assert!(d.drawn <= MAX_BARS, "{what}: {} bars", d.drawn);
    assert!(
        d.bars.iter().all(|b| b.in_ops_group),
        "{what}: every op bar is in #timeline-ops"
    );
    // view() says what the attributes say.
    let close =
        |a: f64, b: &Value| (a - b.as_f64().unwrap_or(f64::NAN)).abs() <= 1.0 + a.abs() * 1e-9;
    assert!(
        close(d.t0, &d.view["t0"])
            && close(d.t1, &d.view["t1"])
            && d.view["drawn"].as_u64() == Some(d.drawn as u64),
        "{what}: view() {} against data-t0 {} data-t1 {} data-drawn {}",
        d.view,
        d.t0,
        d.t1,
        d.drawn
    );
    // Slack for rounding to pixels (and any context a draw adds).
    let slack = d.span() * 0.02;
    let mut lanes: HashMap<&Process, f64> = HashMap::new();
    let mut drawn_ops = HashSet::new();
    for b in &d.bars {
        let op = ops
            .by_index
            .get(&b.op)
            .unwrap_or_else(|| panic!("{what}: a bar for op {}, which is not an op", b.op));
        assert!(drawn_ops.insert(b.op), "{what}: two bars for op {}", b.op);
        let outcome = match op.outcome {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
        };
        assert!(
            b.classes.iter().any(|c| c == outcome)
                && !["ok", "fail", "info"]
                    .iter()
                    .any(|c| *c != outcome && b.classes.iter().any(|k| k == c)),
            "{what}: op {} ended {outcome}, its bar has class {:?}",
            b.op,
            b.classes
        );
        assert!(
            op.invoke_time as f64 <= d.t1 + slack && ops.end(op) as f64 >= d.t0 - slack,
            "{what}: op {} ({} .. {}) is drawn but not in view {} .. {}",
            b.op,
            op.invoke_time,
            ops.end(op),
            d.t0,
            d.t1
        );
        assert!(b.width >= 0.0, "{what}: op {} has width {}", b.op, b.width);
        // One lane per process: every bar of a process at one height.
        let y = *lanes.entry(&op.process).or_insert(b.mid_y);
        assert!(
            (y - b.mid_y).abs() <= 1.5,
            "{what}: process {}'s bars at heights {y} and {}",
            op.process,
            b.mid_y
        );
    }
    let mut heights: Vec<f64> = lanes.values().copied().collect();
    heights.sort_by(f64::total_cmp);
    assert!(
        heights.windows(2).all(|w| w[1] - w[0] >= 2.0),
        "{what}: each process has a lane of its own: {lanes:?}"
    );
    // Left to right in time: a bar that starts later is not further left.
    let mut by_start: Vec<(&Op, &Bar)> = d.bars.iter().map(|b| (&ops.by_index[&b.op], b)).collect();
    by_start.sort_by_key(|(o, _)| o.invoke_time);
    for w in by_start.windows(2) {
        let ((a, ba), (b, bb)) = (w[0], w[1]);
        if a.invoke_time as f64 >= d.t0 && b.invoke_time > a.invoke_time {
            assert!(
                bb.left + 1.0 >= ba.left,
                "{what}: op {} starts after op {} but is drawn left of it ({} < {})",
                b.invoke_index,
                a.invoke_index,
                bb.left,
                ba.left
            );
        }
    }
    // Every op inside the window has its bar, unless there were too many:
    // then the narrowest became density marks.
    let in_view: Vec<&Op> = ops.overlapping(d.t0, d.t1).collect();
    let inside: Vec<&Op> = in_view
        .iter()
        .copied()
        .filter(|o| o.invoke_time as f64 >= d.t0 + slack && ops.end(o) as f64 <= d.t1 - slack)
        .collect();
    if in_view.len() <= MAX_BARS {
        let missing: Vec<u64> = inside
            .iter()
            .filter(|o| !drawn_ops.contains(&o.invoke_index))
            .map(|o| o.invoke_index)
            .take(10)
            .collect();
        assert!(
            missing.is_empty(),
            "{what}: {} ops in view, these have no bar: {missing:?}",
            in_view.len()
        );
        assert_eq!(
            d.dense,
            0,
            "{what}: density marks with {} ops in view",
            in_view.len()
        );
    } else {
        assert!(
            d.dense > 0,
            "{what}: {} ops in view, {} bars and no density mark",
            in_view.len(),
            d.drawn
        );
        let duration = |o: &Op| ops.end(o) - o.invoke_time;
        let narrowest_bar = inside
            .iter()
            .filter(|o| drawn_ops.contains(&o.invoke_index))
            .map(|o| duration(o))
            .min();
        let widest_mark = inside
            .iter()
            .filter(|o| !drawn_ops.contains(&o.invoke_index))
            .map(|o| duration(o))
            .max();
        if let (Some(bar), Some(mark)) = (narrowest_bar, widest_mark) {
            // Within about a pixel: the draw may compare rounded widths.
            let pixel = d.span() / 1000.0;
            assert!(
                mark as f64 <= bar as f64 + pixel,
                "{what}: an op of {mark} ns became a density mark while one of {bar} ns got a bar"
            );
        }
    }
}

/// The zoom controls and the wheel narrow and widen the window, each draw
/// stays true to the history, and reset brings back the first view.
fn assert_zoom(c: &Chrome, ops: &Ops, what: &str) {
    let full = c.drawn();
    assert_draw(&full, ops, &format!("{what}, as opened"));
    c.click("#tl-zoom-in");
    c.wait_for(
        "zoom in",
        &format!(
            "const t = document.getElementById('timeline'); return t.dataset.t1 - t.dataset.t0 < {};",
            full.span() * 0.95
        ),
    );
    let zoomed = c.drawn();
    assert_draw(&zoomed, ops, &format!("{what}, zoomed in"));
    let in_full = ops.overlapping(full.t0, full.t1).count();
    let in_zoomed = ops.overlapping(zoomed.t0, zoomed.t1).count();
    assert!(
        in_zoomed <= in_full,
        "{what}: {in_zoomed} ops in the zoomed view, {in_full} in all"
    );
    if in_full <= MAX_BARS && in_zoomed < in_full {
        assert!(
            zoomed.drawn < full.drawn,
            "{what}: {} bars zoomed in, {} before",
            zoomed.drawn,
            full.drawn
        );
    }
    c.click("#tl-zoom-out");
    c.wait_for(
        "zoom out",
        &format!(
            "const t = document.getElementById('timeline'); return t.dataset.t1 - t.dataset.t0 > {};",
            zoomed.span() * 1.05
        ),
    );
    assert_draw(&c.drawn(), ops, &format!("{what}, zoomed out"));

    // The wheel zooms too: one turn either way changes the window.
    let before = c.drawn();
    c.wheel(-300.0);
    c.wait_for(
        "the wheel to zoom in",
        &format!(
            "const t = document.getElementById('timeline'); return t.dataset.t1 - t.dataset.t0 < {};",
            before.span() * 0.99
        ),
    );
    let wheeled = c.drawn();
    assert_draw(&wheeled, ops, &format!("{what}, zoomed in by the wheel"));

    // Dragging to the left pans to later times, the span kept, and is no
    // click: no op gets linked.
    let hash = c.js("return location.hash;");
    c.drag(-200.0);
    c.wait_for(
        "a drag to pan",
        &format!(
            "const t = document.getElementById('timeline'); return Number(t.dataset.t0) > {};",
            wheeled.t0 + wheeled.span() * 0.01
        ),
    );
    let panned = c.drawn();
    assert!(
        (panned.span() - wheeled.span()).abs() <= wheeled.span() * 0.001 + 1.0,
        "{what}: a drag changed the span from {} to {}",
        wheeled.span(),
        panned.span()
    );
    assert_eq!(
        c.js("return location.hash;"),
        hash,
        "{what}: a drag is no click"
    );
    assert_draw(&panned, ops, &format!("{what}, panned"));

    c.click("#tl-reset");
    c.wait_for(
        "reset",
        &format!(
            "const t = document.getElementById('timeline'); return Math.abs(t.dataset.t0 - {}) <= 1 && Math.abs(t.dataset.t1 - {}) <= 1;",
            full.t0, full.t1
        ),
    );
    let reset = c.drawn();
    assert_eq!(
        reset.drawn, full.drawn,
        "{what}: reset draws what was drawn first"
    );

    // zoom(t0, t1) shows that window: the middle tenth of the run.
    let (a, b) = (full.t0 + full.span() * 0.45, full.t0 + full.span() * 0.55);
    c.js(&format!(
        "window.leaseholdTimeline.zoom({a}, {b}); return null;"
    ));
    c.wait_for(
        "zoom(t0, t1)",
        &format!(
            "const v = window.leaseholdTimeline.view(); return Math.abs(v.t0 - {a}) <= {tol} && Math.abs(v.t1 - {b}) <= {tol};",
            tol = full.span() * 0.001 + 1.0
        ),
    );
    assert_draw(&c.drawn(), ops, &format!("{what}, zoom({a}, {b})"));
    c.assert_no_problems(&format!("{what}, after zooming"));
}

/// `#op-N` in the URL selects op N on load, and so does a hash change; the
/// view then holds the op and the timeline is on screen.
fn assert_linked(c: &Chrome, url: &str, ops: &Ops, n: u64, m: u64, what: &str) {
    c.open(&format!("{url}#op-{n}"));
    assert_selected(c, ops, n, what);
    c.js(&format!("location.hash = 'op-{m}'; return null;"));
    assert_selected(c, ops, m, what);
    c.assert_no_problems(&format!("{what}, after following links"));
}

fn assert_selected(c: &Chrome, ops: &Ops, n: u64, what: &str) {
    c.wait_for(
        &format!("op {n} to be selected"),
        &format!(
            "const r = document.getElementById('op-{n}'); return !!r && r.classList.contains('selected') && r.classList.contains('op');"
        ),
    );
    let d = c.drawn();
    let op = &ops.by_index[&n];
    assert!(
        d.t0 <= op.invoke_time as f64 && ops.end(op) as f64 <= d.t1,
        "{what}: op {n} ({} .. {}) selected but the view is {} .. {}",
        op.invoke_time,
        ops.end(op),
        d.t0,
        d.t1
    );
    let selected: Vec<u64> = d
        .bars
        .iter()
        .filter(|b| b.classes.iter().any(|c| c == "selected"))
        .map(|b| b.op)
        .collect();
    assert_eq!(selected, [n], "{what}: one op selected");
    assert_draw(&d, ops, &format!("{what}, op {n} selected"));
    let on_screen = c.js(
        "const r = document.getElementById('timeline').getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight;",
    );
    assert_eq!(
        on_screen, true,
        "{what}: the timeline is scrolled into view"
    );
}

/// Hovering a bar shows its op in the tooltip, as text; clicking it links it.
fn assert_hover_and_click(c: &Chrome, ops: &Ops, what: &str) {
    let d = c.drawn();
    let widest = d
        .bars
        .iter()
        .max_by(|a, b| a.width.total_cmp(&b.width))
        .expect("a bar");
    let op = &ops.by_index[&widest.op];
    let at = c.bar_middle(widest.op);
    c.tab.move_mouse_to_point(at).unwrap();
    c.wait_for(
        "the tooltip",
        "const t = document.getElementById('tl-tip'); return !!t && t.textContent.length > 0 && getComputedStyle(t).display !== 'none' && getComputedStyle(t).visibility !== 'hidden';",
    );
    let tip = c.js("return document.getElementById('tl-tip').textContent;");
    let tip = tip.as_str().unwrap().to_owned();
    let f = match &op.call {
        leasehold_checker::Call::Acquire { .. } => "acquire",
        leasehold_checker::Call::Renew { .. } => "renew",
        leasehold_checker::Call::Release { .. } => "release",
        leasehold_checker::Call::Write { .. } => "write",
        leasehold_checker::Call::Read { .. } => "read",
        leasehold_checker::Call::Other { f } => f.as_str(),
    };
    assert!(
        tip.contains(f),
        "{what}: hovering op {} ({f}) shows {tip:?}",
        widest.op
    );
    let markup = c.js("return document.getElementById('tl-tip').querySelectorAll('img, script, style, b#injected').length;");
    assert_eq!(
        markup, 0,
        "{what}: the tooltip holds no markup from the history"
    );
    c.tab.click_point(at).unwrap();
    c.wait_for(
        "a click to link the op",
        &format!("return location.hash === '#op-{}';", widest.op),
    );
    assert_selected(c, ops, widest.op, &format!("{what}, clicked"));
    c.assert_no_problems(&format!("{what}, after hovering and clicking"));
}

/// Runs an example in a fresh store and returns its run folder and its exit
/// code.
fn run(store: &Path, name: &str) -> (PathBuf, i32) {
    let (out, dir) = run_example_in(store, name, 1, &["--duration", "6s"]);
    let code = out.status.code().expect("exited");
    assert!(
        code == 0 || code == 1,
        "{name}: exit {code}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, code)
}

/// `leasehold check <history> --out <out>`; returns the report's path and the
/// exit code.
fn check(history: &Path, out: &Path) -> (PathBuf, i32) {
    let o = leasehold()
        .arg("check")
        .arg(history)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let code = o.status.code().expect("exited");
    assert!(
        (0..=2).contains(&code),
        "check {}: exit {code}\n{}\n{}",
        history.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    println!(
        "leasehold check {}: {}",
        history.display(),
        stdout.lines().next().unwrap_or_default()
    );
    (out.join("report.html"), code)
}

fn url_of(path: &Path) -> String {
    format!("file://{}", std::fs::canonicalize(path).unwrap().display())
}

/// The shaded fault periods and the lease bands are there.
fn assert_nemesis_and_leases(c: &Chrome, fault: &str, what: &str) {
    let found = c.js(r#"return {
             nemesis: [...document.querySelectorAll('#timeline-svg rect.nemesis')]
               .map(r => (r.querySelector('title') || {}).textContent || ''),
             leases: document.querySelectorAll('#timeline-svg rect.lease').length,
           };"#);
    let nemesis = found["nemesis"].as_array().unwrap();
    assert!(
        !nemesis.is_empty() && nemesis.iter().all(|t| t.as_str().unwrap().contains(fault)),
        "{what}: fault periods shaded and titled {fault:?}: {found}"
    );
    assert!(
        found["leases"].as_u64().unwrap() > 0,
        "{what}: lease bands: {found}"
    );
}

#[test]
fn a_valid_runs_report_draws_zooms_and_links_in_chromium() {
    let Some(chromium) = chromium() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (dir, code) = run(tmp.path(), "gc-pause-fenced.yaml");
    assert_eq!(code, 0, "the fenced run is valid");
    let report = tmp.path().join("latest/report.html");
    assert!(report.is_file(), "{} is missing", report.display());
    let ops = Ops::of(&read_history(&dir.join("history.jsonl")));
    let url = url_of(&report);
    let c = Chrome::launch(chromium);
    let took = c.open(&url);
    println!("valid report ({} ops) drawn in {took}", ops.len());
    c.assert_no_problems("valid report");
    c.assert_nothing_injected("valid report");
    let d = c.drawn();
    assert!(d.drawn > 0, "valid report: no op drawn");
    assert_draw(&d, &ops, "valid report");
    assert_nemesis_and_leases(&c, "pause", "valid report");
    c.screenshot("valid");
    assert_zoom(&c, &ops, "valid report");
    // Link to ops a third and two thirds into the history.
    let mut indexes: Vec<u64> = ops.by_index.keys().copied().collect();
    indexes.sort_unstable();
    let (n, m) = (indexes[indexes.len() / 3], indexes[indexes.len() * 2 / 3]);
    assert_linked(&c, &url, &ops, n, m, "valid report");
    c.open(&url);
    assert_hover_and_click(&c, &ops, "valid report");
    c.assert_nothing_injected("valid report, at the end");
}

#[test]
fn an_invalid_runs_report_marks_and_links_the_anomaly() {
    let Some(chromium) = chromium() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (dir, code) = run(tmp.path(), "gc-pause.yaml");
    assert_eq!(code, 1, "the unfenced run is invalid");
    let ops = Ops::of(&read_history(&dir.join("history.jsonl")));
    let results = read_json(&dir.join("results.json"));
    let named: HashSet<u64> = results["checks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["anomalies"].as_array().unwrap())
        .flat_map(|a| a["ops"].as_array().cloned().unwrap_or_default())
        .filter_map(|o| o.as_u64())
        .collect();
    assert!(!named.is_empty(), "the anomalies name ops: {results}");
    let url = url_of(&dir.join("report.html"));
    let c = Chrome::launch(chromium);
    let took = c.open(&url);
    println!("invalid report ({} ops) drawn in {took}", ops.len());
    c.assert_no_problems("invalid report");
    c.assert_nothing_injected("invalid report");
    let d = c.drawn();
    assert_draw(&d, &ops, "invalid report");
    // The ops the anomalies name, and only those, are marked.
    let marked: HashSet<u64> = d
        .bars
        .iter()
        .filter(|b| b.classes.iter().any(|c| c == "anomaly"))
        .map(|b| b.op)
        .collect();
    assert!(
        !marked.is_empty(),
        "invalid report: no op bar has class anomaly"
    );
    let drawn_named: HashSet<u64> = d
        .bars
        .iter()
        .map(|b| b.op)
        .filter(|o| named.contains(o))
        .collect();
    assert_eq!(
        marked, drawn_named,
        "invalid report: the marked bars are those of the ops the anomalies name"
    );
    assert_nemesis_and_leases(&c, "pause", "invalid report");
    c.screenshot("invalid");
    assert_zoom(&c, &ops, "invalid report");

    // The story links to the ops it tells of; following a link selects it.
    c.open(&url);
    let links = c.js(
        r##"return [...document.querySelectorAll('a[href^="#op-"]')].filter(a => !a.closest('#timeline')).map(a => a.getAttribute('href'));"##,
    );
    let links: Vec<u64> = links
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap()["#op-".len()..].parse().unwrap())
        .collect();
    assert!(!links.is_empty(), "invalid report: the story links to ops");
    for n in &links {
        assert!(
            ops.by_index.contains_key(n),
            "invalid report: a link to op {n}, not an op"
        );
    }
    let n = *links.last().unwrap();
    c.click(&format!(r##"a[href="#op-{n}"]"##));
    assert_selected(&c, &ops, n, "invalid report, story link");
    assert!(
        c.drawn()
            .bars
            .iter()
            .any(|b| b.op == n && b.classes.iter().any(|k| k == "anomaly")),
        "invalid report: the story's op {n} is an anomaly's"
    );
    // And back: the selected anomaly op links to its story.
    let back = c.js(&format!(
        r##"const b = document.getElementById('tl-story');
        if (b.hidden) return 'hidden for an anomaly op';
        b.click();
        const r = document.querySelector('#story a[href="#op-{n}"]').getBoundingClientRect();
        return r.top >= 0 && r.bottom <= innerHeight ? 'shown' : 'not scrolled into view';"##
    ));
    assert_eq!(
        back, "shown",
        "invalid report: the timeline's link to the story"
    );
    let plain = c.js(
        r##"const r = document.querySelector('#timeline-svg rect.op:not(.anomaly)');
        if (!r) return 'no plain op';
        location.hash = 'op-' + r.getAttribute('data-op');
        window.dispatchEvent(new HashChangeEvent('hashchange'));
        return document.getElementById('tl-story').hidden ? 'hidden' : 'shown';"##,
    );
    assert_eq!(
        plain, "hidden",
        "invalid report: no story link for a plain op"
    );
    let first = *links.first().unwrap();
    let other = ops.by_index.keys().copied().find(|k| *k != first).unwrap();
    assert_linked(&c, &url, &ops, first, other, "invalid report");
    c.assert_nothing_injected("invalid report, at the end");
}

/// A small deterministic generator, so the big history is the same each run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Collects events in time order and numbers them as the controller does.
#[derive(Default)]
struct Recorder {
    events: Vec<Event>,
}

impl Recorder {
    /// Records an event; returns it, for an error text to be set.
    fn ev(
        &mut self,
        time: u64,
        process: &Process,
        node: Option<&str>,
        kind: &str,
        f: &str,
        value: Value,
    ) -> &mut Event {
        let line = json!({
            "index": 0, "time": time, "process": process, "node": node, "type": kind, "f": f,
            "value": value,
        });
        self.events.push(serde_json::from_value(line).unwrap());
        self.events.last_mut().unwrap()
    }

    /// A nemesis action on `node`.
    fn nemesis(&mut self, time: u64, f: &str, node: &str) {
        let nemesis = Process::Named("nemesis".into());
        self.ev(time, &nemesis, None, "info", f, json!({"nodes": [node]}));
    }

    /// The controller's final read of `key`, which finds `(token, data)`.
    fn final_read(&mut self, time: u64, key: &str, token: u64, data: &str) {
        let fin = Process::Named("final".into());
        self.ev(time, &fin, None, "invoke", "read", json!({"key": key}));
        let found = json!({"key": key, "token": token, "data": data});
        self.ev(time + MS, &fin, None, "ok", "read", found);
    }

    /// The history file: events sorted by time, indexes in that order.
    fn write(mut self, path: &Path) -> Vec<Event> {
        self.events.sort_by_key(|e| e.time);
        let mut text = String::new();
        for (i, e) in self.events.iter_mut().enumerate() {
            e.index = i as u64;
            writeln!(text, "{}", serde_json::to_string(e).unwrap()).unwrap();
        }
        std::fs::write(path, text).unwrap();
        self.events
    }
}

const US: u64 = 1_000;
const MS: u64 = 1_000_000;

/// A long valid run on one lock: each round one worker acquires, writes and
/// releases while another asks for the lock and is refused; now and then a
/// node is paused (and left alone meanwhile); a worker whose write timed out
/// retires, its lease runs out, and it goes on as a new process. Ends with
/// the final read.
fn big_history(path: &Path, min_ops: usize) -> Vec<Event> {
    let nodes = ["w1", "w2", "w3", "w4", "w5", "w6", "w7"];
    // The process each node works as now; a retired one gets a new number.
    let mut process: Vec<u64> = (1..=nodes.len() as u64).collect();
    let mut next_process = nodes.len() as u64 + 1;
    let mut rng = Lcg(0x1ea5e);
    let mut rec = Recorder::default();
    let mut t = 5 * MS;
    let mut ops = 0;
    let mut round = 0u64;
    let mut paused: Option<(usize, u64)> = None;
    let mut last = (0u64, String::new());
    let lock = json!({"lock": "L"});
    while ops < min_ops {
        round += 1;
        if round.is_multiple_of(2000) && paused.is_none() {
            let n = rng.below(nodes.len() as u64) as usize;
            rec.nemesis(t, "pause", nodes[n]);
            paused = Some((n, round + 300));
        }
        if let Some((n, until)) = paused
            && round >= until
        {
            rec.nemesis(t, "resume", nodes[n]);
            paused = None;
        }
        let free: Vec<usize> = (0..nodes.len())
            .filter(|n| paused.is_none_or(|(p, _)| p != *n))
            .collect();
        let pick = rng.below(free.len() as u64) as usize;
        let (h, o) = (free[pick], free[(pick + 1) % free.len()]);
        let (hn, hp) = (nodes[h], Process::Client(process[h]));
        let (on, op) = (nodes[o], Process::Client(process[o]));
        let token = round;
        // Each step of the holder takes 20 µs to 420 µs.
        let mut at = t;
        let mut step = |rng: &mut Lcg, extra: u64| {
            at += (20 + rng.below(400)) * US + extra;
            at
        };
        rec.ev(
            step(&mut rng, 0),
            &hp,
            Some(hn),
            "invoke",
            "acquire",
            lock.clone(),
        );
        let granted = step(&mut rng, 0);
        let grant = json!({"lock": "L", "token": token, "lease_ms": 1000});
        rec.ev(granted, &hp, Some(hn), "ok", "acquire", grant);
        // The other asks while the lock is held and is refused.
        rec.ev(
            granted + 10 * US,
            &op,
            Some(on),
            "invoke",
            "acquire",
            lock.clone(),
        );
        let refused = granted + (30 + rng.below(300)) * US;
        rec.ev(refused, &op, Some(on), "fail", "acquire", Value::Null)
            .error = Some("lock held".into());
        let data = format!("{hn}-{round}");
        let w = json!({"key": "k", "token": token, "data": data});
        rec.ev(
            step(&mut rng, 0),
            &hp,
            Some(hn),
            "invoke",
            "write",
            w.clone(),
        );
        if round.is_multiple_of(7001) {
            // Unknown: the worker retires; nobody gets the lock before its
            // lease has run out.
            let end = step(&mut rng, 600 * US);
            rec.ev(end, &hp, Some(hn), "info", "write", Value::Null)
                .error = Some("timeout".into());
            process[h] = next_process;
            next_process += 1;
            ops += 3;
            t = granted + 1010 * MS;
            continue;
        }
        // Every 50th write is slow.
        let slow = if round.is_multiple_of(50) { 3 * MS } else { 0 };
        rec.ev(step(&mut rng, slow), &hp, Some(hn), "ok", "write", w);
        last = (token, data);
        let release = json!({"lock": "L", "token": token});
        rec.ev(
            step(&mut rng, 0),
            &hp,
            Some(hn),
            "invoke",
            "release",
            release,
        );
        let released = step(&mut rng, 0);
        rec.ev(released, &hp, Some(hn), "ok", "release", Value::Null);
        ops += 4;
        t = released + 100 * US;
    }
    if let Some((n, _)) = paused {
        rec.nemesis(t, "resume", nodes[n]);
    }
    rec.final_read(t + MS, "k", last.0, &last.1);
    rec.write(path)
}

#[test]
fn a_report_of_100000_ops_stays_small_and_draws_at_most_5000_bars() {
    let Some(chromium) = chromium() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let history = tmp.path().join("history.jsonl");
    let events = big_history(&history, 100_000);
    let ops = Ops::of(&events);
    assert!(ops.len() >= 100_000, "{} ops", ops.len());
    let workers: HashSet<&Process> = ops
        .by_index
        .values()
        .map(|o| &o.process)
        .filter(|p| matches!(p, Process::Client(_)))
        .collect();
    assert!(workers.len() >= 10, "{} worker processes", workers.len());
    let (report, code) = check(&history, &tmp.path().join("out"));
    assert_eq!(code, 0, "the big history is valid");
    let size = std::fs::metadata(&report).unwrap().len();
    println!("report of {} ops: {} bytes", ops.len(), size);
    assert!(
        size < 10_000_000,
        "the report of {} ops is {size} bytes",
        ops.len()
    );

    let url = url_of(&report);
    let c = Chrome::launch(chromium);
    let took = c.open(&url);
    println!("report of {} ops drawn in {took}", ops.len());
    c.assert_no_problems("100k report");
    c.assert_nothing_injected("100k report");
    let d = c.drawn();
    assert!(
        d.drawn > 0 && d.drawn <= MAX_BARS,
        "100k report: {} bars",
        d.drawn
    );
    assert!(
        d.dense > 0,
        "100k report: zoomed out, density marks stand for the rest"
    );
    assert_draw(&d, &ops, "100k report");
    assert_nemesis_and_leases(&c, "pause", "100k report");
    c.screenshot("100k");
    assert_zoom(&c, &ops, "100k report");
    // Zoomed in far enough, every op in view gets its bar.
    let end = ops.end_of_history as f64;
    c.js(&format!(
        "window.leaseholdTimeline.zoom({}, {}); return null;",
        end * 0.5,
        end * 0.501
    ));
    c.wait_for(
        "a narrow zoom",
        &format!(
            "const t = document.getElementById('timeline'); return t.dataset.t1 - t.dataset.t0 < {};",
            end * 0.01
        ),
    );
    let narrow = c.drawn();
    let in_view = ops.overlapping(narrow.t0, narrow.t1).count();
    assert!(
        in_view > 0 && in_view <= MAX_BARS,
        "{in_view} ops in a narrow view"
    );
    assert!(narrow.drawn > 0 && narrow.drawn < d.drawn.max(in_view + 1));
    assert_draw(&narrow, &ops, "100k report, a narrow zoom");
    // A link to an op deep in the history.
    let mut indexes: Vec<u64> = ops.by_index.keys().copied().collect();
    indexes.sort_unstable();
    let (n, m) = (indexes[indexes.len() * 3 / 4], indexes[10]);
    assert_linked(&c, &url, &ops, n, m, "100k report");
}

/// A history whose every string is hostile: nodes, lock, key, written data,
/// error texts, and one 10 kB value; a holder's lease runs out while it is
/// paused and its late write is accepted, so the story tells of them too.
fn hostile_history(path: &Path) -> Vec<Event> {
    let mut rec = Recorder::default();
    let (lock, key) = (HOSTILE[3], HOSTILE[2]);
    // An entity too, which the data must not carry as a raw '&'.
    let big: String = format!("{}&amp;{}", HOSTILE[0], "x".repeat(10 * 1024));
    let acquire = json!({"lock": lock});
    let c = Process::Client;
    let mut t = MS;
    let mut token = 0;
    // Rounds on each hostile node: acquire, write, release; and a refusal
    // whose error text is hostile.
    for round in 0..6 {
        for (i, node) in HOSTILE.iter().enumerate() {
            token += 1;
            let p = c(i as u64 + 1);
            let data = match (round, i) {
                (0, 0) => big.clone(),
                (_, 1) => "line\u{2028}sep\u{2029}</script>".to_owned(),
                _ => HOSTILE[(i + round) % HOSTILE.len()].to_owned(),
            };
            let node = Some(*node);
            rec.ev(t, &p, node, "invoke", "acquire", acquire.clone());
            let grant = json!({"lock": lock, "token": token, "lease_ms": 100});
            rec.ev(t + 2 * MS, &p, node, "ok", "acquire", grant);
            let (other, on) = (c((i as u64 + 1) % 4 + 1), Some(HOSTILE[(i + 1) % 4]));
            rec.ev(t + 3 * MS, &other, on, "invoke", "acquire", acquire.clone());
            rec.ev(t + 4 * MS, &other, on, "fail", "acquire", Value::Null)
                .error = Some(HOSTILE[(i + round + 1) % 4].into());
            let w = json!({"key": key, "token": token, "data": data});
            rec.ev(t + 5 * MS, &p, node, "invoke", "write", w.clone());
            rec.ev(t + 8 * MS, &p, node, "ok", "write", w);
            let release = json!({"lock": lock, "token": token});
            rec.ev(t + 9 * MS, &p, node, "invoke", "release", release);
            rec.ev(t + 11 * MS, &p, node, "ok", "release", Value::Null);
            t += 15 * MS;
        }
    }
    // The stale write: the first node holds, is paused past its lease, the
    // second gets the next token and writes, the first wakes and writes with
    // its old one.
    let (w1, w2) = (Some(HOSTILE[0]), Some(HOSTILE[1]));
    let old = token + 1;
    let new = token + 2;
    rec.ev(t, &c(1), w1, "invoke", "acquire", acquire.clone());
    let grant = json!({"lock": lock, "token": old, "lease_ms": 100});
    rec.ev(t + MS, &c(1), w1, "ok", "acquire", grant);
    rec.nemesis(t + 2 * MS, "pause", HOSTILE[0]);
    rec.ev(
        t + 150 * MS,
        &c(2),
        w2,
        "invoke",
        "acquire",
        acquire.clone(),
    );
    let grant = json!({"lock": lock, "token": new, "lease_ms": 100});
    rec.ev(t + 151 * MS, &c(2), w2, "ok", "acquire", grant);
    let w = json!({"key": key, "token": new, "data": HOSTILE[3]});
    rec.ev(t + 152 * MS, &c(2), w2, "invoke", "write", w.clone());
    rec.ev(t + 153 * MS, &c(2), w2, "ok", "write", w);
    rec.nemesis(t + 200 * MS, "resume", HOSTILE[0]);
    let w = json!({"key": key, "token": old, "data": HOSTILE[1]});
    rec.ev(t + 201 * MS, &c(1), w1, "invoke", "write", w.clone());
    rec.ev(t + 203 * MS, &c(1), w1, "ok", "write", w);
    // A write that never completes, and a release whose unknown end has a
    // hostile error text.
    let w = json!({"key": key, "token": 1, "data": big});
    rec.ev(t + 205 * MS, &c(3), Some(HOSTILE[2]), "invoke", "write", w);
    let (p4, n4) = (c(4), Some(HOSTILE[3]));
    let release = json!({"lock": lock, "token": 1});
    rec.ev(t + 206 * MS, &p4, n4, "invoke", "release", release);
    rec.ev(t + 260 * MS, &p4, n4, "info", "release", Value::Null)
        .error = Some(HOSTILE[1].into());
    rec.final_read(t + 300 * MS, key, old, HOSTILE[1]);
    rec.write(path)
}

#[test]
fn hostile_strings_in_a_history_stay_text() {
    let Some(chromium) = chromium() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let history = tmp.path().join("history.jsonl");
    let events = hostile_history(&history);
    let ops = Ops::of(&events);
    let (report, code) = check(&history, &tmp.path().join("out"));
    assert_eq!(code, 1, "the hostile history has a stale write: invalid");
    let html = std::fs::read_to_string(&report).unwrap();
    for s in HOSTILE {
        assert!(!html.contains(s), "the report holds {s:?} unescaped");
    }
    let url = url_of(&report);
    let c = Chrome::launch(chromium);
    let took = c.open(&url);
    println!("hostile report ({} ops) drawn in {took}", ops.len());
    c.assert_no_problems("hostile report");
    c.assert_nothing_injected("hostile report");
    // Every hostile string is on the page as text (not counting the scripts'
    // and style sheets' own text).
    let text = c.js(
        r#"const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
           let all = '';
           for (let n = walk.nextNode(); n; n = walk.nextNode()) {
             if (!n.parentElement.closest('script, style')) all += n.data + '\n';
           }
           return all;"#,
    );
    let text = text.as_str().unwrap();
    for s in HOSTILE {
        assert!(
            text.contains(s),
            "hostile report: {s:?} is not shown as text"
        );
    }
    // The timeline's data carries them intact: the JSON parses back to them.
    let data = c.js("return document.getElementById('timeline-data').textContent;");
    let data = data.as_str().unwrap();
    let parsed: Value = serde_json::from_str(data).expect("the timeline data is JSON");
    let mut strings = String::new();
    collect_strings(&parsed, &mut strings);
    for s in HOSTILE
        .iter()
        .chain(&["line\u{2028}sep\u{2029}</script>", "</script>&amp;x"])
    {
        assert!(
            strings.contains(s),
            "hostile report: the timeline data lost {s:?}"
        );
    }
    for raw in ['<', '>', '&', '\u{2028}', '\u{2029}'] {
        assert!(
            !data.contains(raw),
            "hostile report: {raw:?} raw in the timeline data"
        );
    }
    let d = c.drawn();
    assert!(d.drawn > 0, "hostile report: no op drawn");
    assert_draw(&d, &ops, "hostile report");
    assert_nemesis_and_leases(&c, "pause", "hostile report");
    c.screenshot("hostile");
    assert_zoom(&c, &ops, "hostile report");
    c.open(&url);
    // Hovering each bar puts its history into the tooltip, as text only. The
    // pointer is moved by events from the page itself, all bars in one call:
    // each call to the browser costs a tenth of a second.
    let tips = c.js(
        r#"const tip = () => document.getElementById('tl-tip');
           return [...document.querySelectorAll('#timeline-svg rect.op')].map(r => {
             const b = r.getBoundingClientRect();
             const at = {bubbles: true, clientX: b.left + b.width / 2, clientY: b.top + b.height / 2};
             r.dispatchEvent(new MouseEvent('mouseover', at));
             r.dispatchEvent(new MouseEvent('mousemove', at));
             const t = tip();
             return t ? [t.textContent, t.querySelectorAll('img, script, style, b').length] : ['', 0];
           });"#,
    );
    let tips = tips.as_array().unwrap();
    assert_eq!(tips.len(), ops.len(), "hostile report: a bar per op");
    assert!(
        tips.iter().all(|t| t[1] == 0),
        "hostile report: a tooltip holds markup: {tips:?}"
    );
    let text: String = tips.iter().map(|t| t[0].as_str().unwrap()).collect();
    for s in HOSTILE {
        assert!(
            text.contains(s),
            "hostile report: no tooltip shows {s:?} as text"
        );
    }
    assert!(
        text.contains(&"x".repeat(10 * 1024)) || text.contains('…'),
        "hostile report: the 10 kB value is shown or cut visibly"
    );
    c.assert_nothing_injected("hostile report, after hovering");
    assert_hover_and_click(&c, &ops, "hostile report");
    let mut indexes: Vec<u64> = ops.by_index.keys().copied().collect();
    indexes.sort_unstable();
    assert_linked(
        &c,
        &url,
        &ops,
        indexes[3],
        indexes[indexes.len() - 2],
        "hostile report",
    );
    c.assert_nothing_injected("hostile report, at the end");
}

/// Every string in `v`, each followed by a NUL.
fn collect_strings(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            out.push_str(s);
            out.push('\0');
        }
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(o) => o.iter().for_each(|(k, x)| {
            out.push_str(k);
            out.push('\0');
            collect_strings(x, out);
        }),
        _ => {}
    }
}

/// The checks above are not blind: copies of the hostile report with one
/// string let through raw are each caught, as an injected element or
/// script, and (where the browser objects) as a reported problem.
#[test]
fn the_checks_catch_a_report_that_lets_a_string_through() {
    let Some(chromium) = chromium() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let history = tmp.path().join("history.jsonl");
    hostile_history(&history);
    let html = std::fs::read_to_string(check(&history, &tmp.path().join("out")).0).unwrap();
    let data_at = html.find(r#"id="timeline-data">"#).unwrap() + r#"id="timeline-data">"#.len();
    let footer_at = html.find("<footer>").unwrap();
    let head_style_end = html.find("</style>").unwrap();
    let tampered = [
        // An image whose error handler runs: blocked by the CSP, so also a
        // violation.
        ("img", footer_at, HOSTILE[1], true),
        // The data script ended early: a script of the attacker's runs; cut
        // inside the JSON, the timeline cannot parse it and throws.
        ("script", data_at, HOSTILE[3], false),
        ("script in the data", data_at + 1, HOSTILE[3], true),
        // The head's style ended early: an element of the attacker's.
        ("style", head_style_end, HOSTILE[2], false),
        ("script in the page", footer_at, HOSTILE[0], false),
    ];
    let c = Chrome::launch(chromium);
    for (name, at, raw, reported) in tampered {
        let page = tmp
            .path()
            .join(format!("tampered-{}.html", name.replace(' ', "-")));
        std::fs::write(&page, format!("{}{raw}{}", &html[..at], &html[at..])).unwrap();
        c.clear_problems();
        c.load(&url_of(&page));
        c.wait_for(
            "the tampered page",
            "return document.readyState === 'complete';",
        );
        let injected = c.injected();
        assert!(
            !injected.is_empty(),
            "{name}: {raw:?} let through is not noticed"
        );
        println!("{name}: {raw:?} let through is noticed: {injected:?}");
        if reported {
            let problems = c.problems();
            assert!(!problems.is_empty(), "{name}: no problem reported");
            println!("{name}: and reported: {problems:?}");
        }
    }
}

/// A history without ops still gives a timeline: empty, with a note, its
/// controls harmless.
#[test]
fn an_empty_history_draws_an_empty_timeline() {
    let Some(chromium) = chromium() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let history = tmp.path().join("history.jsonl");
    std::fs::write(&history, "").unwrap();
    let (report, _) = check(&history, &tmp.path().join("out"));
    let c = Chrome::launch(chromium);
    let took = c.open(&url_of(&report));
    println!("empty report drawn in {took}");
    let d = c.drawn();
    assert_eq!((d.ops, d.drawn, d.bars.len()), (0, 0, 0), "{d:?}");
    let note = c.js("return document.getElementById('timeline-svg').textContent.trim();");
    assert!(
        !note.as_str().unwrap().is_empty(),
        "the empty timeline says so"
    );
    for button in ["#tl-zoom-in", "#tl-zoom-out", "#tl-reset"] {
        c.click(button);
    }
    c.js("location.hash = 'op-0'; return null;");
    let after = c.drawn();
    assert_eq!((after.drawn, after.bars.len()), (0, 0), "{after:?}");
    c.assert_no_problems("empty report");
    c.assert_nothing_injected("empty report");
}
