//! `reflex audit --html` checked in a real headless browser, Debian's chromium (scripts/test
//! installs it where missing; a missing browser fails this test, never skips it). On a
//! demo-like table, through the real binary:
//! - the page shows every record, and no text from a record became markup (a finding's
//!   `<script>` title is text on the page; the page runs no script at all);
//! - it fetched nothing: the page's own list of fetched resources is empty, and of the
//!   requests that reached the proxy the browser is pointed at, none is the page's (chromium
//!   itself still calls a few Google hosts at start, whatever its flags: those are told apart
//!   by host, and the hostile record's image address must never appear);
//! - nothing is wider than the window at 1280 px: a copy of the page with a small script
//!   measures the document, every table and every block, and writes the result into the DOM;
//! - a screenshot at 1280 px, kept in the target directory, for a person to look at;
//! - the filters apply: `--status failed` writes only the failures.

use crate::table;
use reflex_shared::status::Status;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Measures the laid-out page and writes what it found into the DOM as JSON.
const PROBE: &str = r#"<script>
(function () {
  var d = document.documentElement, over = [];
  var right = d.clientWidth + 1;
  document.querySelectorAll('body *').forEach(function (e) {
    var r = e.getBoundingClientRect();
    if (r.width > 0 && r.right > right) over.push(e.tagName + ' ends at ' + Math.round(r.right));
  });
  document.querySelectorAll('table, pre, dl, .timeline').forEach(function (e) {
    var box = e.parentElement.clientWidth;
    if (e.scrollWidth > e.clientWidth + 1 || e.offsetWidth > box + 1)
      over.push(e.tagName + ' ' + e.scrollWidth + ' wide in ' + box);
  });
  var out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({
    clientWidth: d.clientWidth,
    scrollWidth: d.scrollWidth,
    overflowing: over,
    fetched: performance.getEntriesByType('resource').map(function (e) { return e.name; }),
    scripts: document.scripts.length,
    images: document.images.length,
    rows: document.querySelectorAll('#records + table tbody tr').length,
    articles: document.querySelectorAll('article.record').length,
    title: document.title
  });
  document.body.appendChild(out);
})();
</script>"#;

fn reflex(args: &[&str]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_reflex"))
        .args(args)
        .output()
        .expect("run reflex");
    assert!(
        o.status.success(),
        "reflex {args:?}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Hosts chromium calls on its own at start (network time, sign-in, its search engine's
/// preconnect), which no flag here turns off: not the page's requests.
const CHROMIUM_OWN: [&str; 3] = [".google.com", ".googleapis.com", ".gstatic.com"];

/// A proxy that answers nothing and writes down each request's first line (`GET url` or
/// `CONNECT host:port`): where the browser tried to go.
fn proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    // Lives as long as the test process: it only ever accepts and reads.
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut line = String::new();
            let _ = BufReader::new(conn).read_line(&mut line);
            log.lock().unwrap().push(line.trim().to_string());
        }
    });
    (port, seen)
}

/// The host a proxy request names.
fn host(request: &str) -> String {
    let target = request.split_whitespace().nth(1).unwrap_or("");
    let rest = target.split("://").nth(1).unwrap_or(target);
    let authority = rest.split('/').next().unwrap_or("");
    authority
        .rsplit_once(':')
        .map_or(authority, |(h, _)| h)
        .to_string()
}

/// Chromium, headless and offline, at 1280 px wide, with its own empty profile and every
/// request sent to `proxy`: its stdout.
fn chromium(proxy: u16, args: &[String]) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: scripts/test installs it (apt-get install -y chromium, as root); \
         install it to check the HTML report in a browser"
    );
    let profile = std::env::temp_dir().join(format!("reflex-chromium-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&profile).unwrap();
    let (stdout, stderr) = (profile.join("stdout"), profile.join("stderr"));
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--disable-features=NetworkTimeServiceQuerying",
            "--hide-scrollbars",
            "--window-size=1280,1000",
            &format!("--proxy-server=http://127.0.0.1:{proxy}"),
            // Loopback too goes to the proxy: nothing may be fetched from anywhere.
            "--proxy-bypass-list=<-loopback>",
            &format!("--user-data-dir={}", profile.display()),
        ])
        .args(args)
        // Files, not pipes: a dumped DOM is larger than a pipe's buffer, and a browser blocked
        // on a full pipe would wait for a reader that only reads once it has exited.
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("start chromium");
    // A watchdog, not an assertion on time: a browser that hangs must not hang the suite.
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(180) {
            let _ = child.kill();
            panic!("chromium did not finish within 180 s: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
    let (out, err) = (read(&stdout), read(&stderr));
    let _ = std::fs::remove_dir_all(&profile);
    assert!(status.success(), "chromium {args:?} failed: {err}");
    out
}

/// Text as a browser serialises a text node (only `&`, `<` and `>` escaped).
fn as_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// The text of `<pre id="probe">` in a dumped DOM, as JSON.
fn probe(dom: &str) -> Value {
    let start = dom
        .find("<pre id=\"probe\">")
        .expect("the probe wrote its result")
        + 16;
    let end = start + dom[start..].find("</pre>").unwrap();
    let text = dom[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A PNG's width and height, from its header.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[1..4], b"PNG", "not a PNG");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&png[16..20]), be(&png[20..24]))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_html_report_renders_every_record_offline_and_fits_1280_px() {
    let records = table::records();
    let (_client, table) = table::create("reflex-audit-html", &records).await;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(&table);
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("report.html");
    let o = reflex(&[
        "audit",
        "--table",
        &table,
        "--html",
        report.to_str().unwrap(),
    ]);
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        said.contains(&format!(
            "{} record(s) written to {}",
            records.len(),
            report.display()
        )),
        "{said}"
    );
    let html = std::fs::read_to_string(&report).unwrap();

    let (proxy, requests) = proxy();

    // The page as it is: every record shown, nothing from a record made markup.
    let dom = chromium(proxy, &["--dump-dom".into(), url(&report)]);
    for r in &records {
        let id = as_text(&r.record_id);
        assert!(dom.contains(&id), "{} is not on the page", r.record_id);
    }
    assert!(!dom.contains("<script"), "the page runs a script");
    assert!(!dom.contains("<img"), "a record's text became an image");
    assert!(dom.contains(&as_text(table::HOSTILE_TITLE)));
    assert!(dom.contains(&as_text(table::HOSTILE_ARN)));

    // A copy with the probe: the layout measured at 1280 px, and what the page fetched.
    let probed = dir.join("probed.html");
    std::fs::write(&probed, html.replace("</body>", &format!("{PROBE}</body>"))).unwrap();
    let p = probe(&chromium(proxy, &["--dump-dom".into(), url(&probed)]));
    assert_eq!(p["clientWidth"], 1280, "{p}");
    assert_eq!(
        p["scrollWidth"], 1280,
        "the page is wider than the window: {p}"
    );
    assert_eq!(p["overflowing"], serde_json::json!([]), "{p}");
    assert_eq!(p["fetched"], serde_json::json!([]), "the page fetched: {p}");
    assert_eq!(p["scripts"], 1, "only the probe runs: {p}");
    assert_eq!(p["images"], 0, "{p}");
    assert_eq!(p["rows"], records.len(), "{p}");
    assert_eq!(p["articles"], records.len(), "{p}");
    assert_eq!(p["title"], "Reflex audit: every outcome record", "{p}");

    // The screenshot a person looks at.
    let shot = dir.join("report-1280.png");
    chromium(
        proxy,
        &[format!("--screenshot={}", shot.display()), url(&report)],
    );
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert_eq!(png_size(&png), (1280, 1000));
    println!("screenshot at 1280 px: {}", shot.display());

    // None of the requests the proxy saw was the page's.
    for request in requests.lock().unwrap().iter() {
        let h = host(request);
        assert!(
            !request.contains("198.51.100.7") && CHROMIUM_OWN.iter().any(|own| h.ends_with(own)),
            "the browser fetched {request:?} while rendering the report"
        );
    }

    // The filters apply to the page as to the table.
    let failed = dir.join("failed.html");
    reflex(&[
        "audit",
        "--table",
        &table,
        "--status",
        "failed",
        "--html",
        failed.to_str().unwrap(),
    ]);
    let p = probe(&chromium(
        proxy,
        &[
            "--dump-dom".into(),
            url(&{
                let f = dir.join("failed-probed.html");
                let page = std::fs::read_to_string(&failed).unwrap();
                std::fs::write(&f, page.replace("</body>", &format!("{PROBE}</body>"))).unwrap();
                f
            }),
        ],
    ));
    let failures = records
        .iter()
        .filter(|r| r.status == Status::Failed)
        .count();
    assert!(failures > 0);
    assert_eq!(p["rows"], failures, "{p}");
    assert_eq!(
        p["title"], "Reflex audit: outcome records, status failed",
        "{p}"
    );
}
