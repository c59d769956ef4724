//! The web application in a real browser: `concordat demo` serves a fresh database, and
//! headless Chromium, driven through chromedriver, signs in, opens a fund, uploads a ledger
//! extract with a bad row and then a good one, downloads a statement and signs out. A second
//! pass runs axe-core on each kind of page, failing on a serious or critical violation, and
//! saves a screenshot of each into `target/browser-screenshots/`.
//!
//! Without chromedriver or Chromium the test is skipped with a loud message, unless
//! `CONCORDAT_REQUIRE_BROWSER=1` is set, when it fails.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const PASSWORD: &str = "partnership-demo";
const FUND: &str = "/agreements/hertfordshire/funds/mental-health";
const OPEN_PERIOD: &str = "2001/02-P08";
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 2000;
/// The tallest screenshot taken: a page longer than this is cut off at the bottom.
const MAX_SCREENSHOT_HEIGHT: u32 = 8000;

/// The identity mapping for Concordat's generated ledger, whose columns already hold the
/// agreement's ids (the demo imports its ledgers through the same).
const IDENTITY_MAPPING: &str = include_str!("../../../examples/mappings/concordat-ledger.toml");

const LEDGER_HEADER: &str = "date,fund,service,partner,subjective,supplier,reference,amount\n";

/// Three postings in P08 of 2001/02, an open period; they add up to £1,300.00.
const GOOD_ROWS: [(&str, &str, &str, &str); 3] = [
    ("Home care", "5110", "BROWSER-0001", "1234.56"),
    ("Telecare", "5701", "BROWSER-0002", "100.00"),
    ("Equipment", "5301", "BROWSER-0003", "-34.56"),
];
const GOOD_TOTAL_PENCE: i64 = 130_000;

fn ledger(amounts: [&str; 3]) -> String {
    let mut text = LEDGER_HEADER.to_string();
    for ((service, subjective, reference, _), amount) in GOOD_ROWS.iter().zip(amounts) {
        text.push_str(&format!(
            "2001-11-15,mental-health,{service},county-council,{subjective},Browser Test Ltd,{reference},{amount}\n"
        ));
    }
    text
}

/// A child process that is ended when the test ends, however it ends. Its process group is
/// signalled too, so the browsers chromedriver starts go with it.
struct Running {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Running {
    fn start(name: &'static str, command: &mut Command, log: PathBuf) -> Running {
        let out = std::fs::File::create(&log).expect("create the log file");
        let err = out.try_clone().expect("clone the log file");
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(command, 0);
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Running { name, child, log }
    }

    /// The end of its output, for a failure message.
    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited ({status}):\n{}", self.name, self.tail());
        }
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            let _ = Command::new("kill")
                .args(["-TERM", "--", &format!("-{}", self.child.id())])
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch folder, removed at the end.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

/// A program on PATH, or at its Debian location.
fn find_program(names: &[&str], fallback: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    Some(PathBuf::from(fallback)).filter(|p| p.is_file())
}

/// The status code of a plain `GET`, or None if nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn wait_until_answering(
    process: &mut Running,
    port: u16,
    path: &str,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        process.check_alive()?;
        if http_status(port, path) == Some(200) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} did not answer GET {path} within {timeout:?}:\n{}",
                process.name,
                process.tail()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-screenshots")
}

#[test]
fn the_web_application_in_a_browser() {
    let required = std::env::var("CONCORDAT_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let driver = find_program(&["chromedriver"], "/usr/bin/chromedriver");
    let browser = find_program(&["chromium", "chromium-browser"], "/usr/bin/chromium");
    let (Some(driver), Some(browser)) = (driver, browser) else {
        let why = "chromedriver or Chromium not found (on PATH or in /usr/bin)";
        assert!(
            !required,
            "{why}, and CONCORDAT_REQUIRE_BROWSER=1 says they must be there"
        );
        eprintln!("\n*** SKIPPED: {why} ***\n");
        return;
    };

    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("concordat-browser-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let scratch = Scratch(dir.clone());

    let port = free_port();
    let mut demo = Running::start(
        "concordat demo",
        Command::new(env!("CARGO_BIN_EXE_concordat"))
            .args(["demo", "--database-file"])
            .arg(dir.join("demo.db"))
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .current_dir(&dir)
            .env_remove("DATABASE_URL")
            .env("CONCORDAT_ACTOR", "browser-test"),
        dir.join("demo.log"),
    );
    let driver_port = free_port();
    let mut chromedriver = Running::start(
        "chromedriver",
        Command::new(&driver).arg(format!("--port={driver_port}")),
        dir.join("chromedriver.log"),
    );
    wait_until_answering(
        &mut chromedriver,
        driver_port,
        "/status",
        Duration::from_secs(30),
    )
    .unwrap();
    wait_until_answering(&mut demo, port, "/health", Duration::from_secs(120)).unwrap();
    eprintln!("the demo is serving after {:.1?}", started.elapsed());

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let outcome = runtime.block_on(async {
        let client = connect(driver_port, &browser).await?;
        let base = format!("http://127.0.0.1:{port}");
        let result = async {
            let bad_rows_page = journey(&client, &base, &dir).await?;
            governance_journey(&client, &base).await?;
            accessibility_and_screenshots(&client, &base, &bad_rows_page).await
        }
        .await;
        let _ = client.close().await;
        result
    });
    if let Err(e) = outcome {
        panic!(
            "{e:#}\n\n--- the demo's log ---\n{}\n--- chromedriver's log ---\n{}",
            demo.tail(),
            chromedriver.tail()
        );
    }
    eprintln!("the browser test took {:.1?}", started.elapsed());
    drop(chromedriver);
    drop(demo);
    drop(scratch);
}

async fn connect(driver_port: u16, browser: &Path) -> Result<Client> {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": browser.display().to_string(),
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                format!("--window-size={WIDTH},{HEIGHT}"),
            ],
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .context("start a browser session through chromedriver")?;
    client
        .update_timeouts(TimeoutConfiguration::new(
            Some(Duration::from_secs(120)),
            Some(Duration::from_secs(120)),
            Some(Duration::ZERO),
        ))
        .await?;
    client.set_window_size(WIDTH, HEIGHT).await?;
    Ok(client)
}

/// The visible text of the page's main content.
async fn main_text(c: &Client) -> Result<String> {
    Ok(c.wait()
        .for_element(Locator::Css("main"))
        .await?
        .text()
        .await?)
}

/// Waits until the browser is at `path`, and answers the whole URL.
async fn wait_for_path(c: &Client, path: &str) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let url = c.current_url().await?;
        if url.path() == path {
            return Ok(url.to_string());
        }
        if Instant::now() > deadline {
            bail!("expected to arrive at {path}, but the browser is at {url}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn sign_in(c: &Client, base: &str, user: &str) -> Result<()> {
    c.goto(&format!("{base}/sign-in")).await?;
    c.wait()
        .for_element(Locator::Css("#username"))
        .await?
        .send_keys(user)
        .await?;
    c.find(Locator::Css("#password"))
        .await?
        .send_keys(PASSWORD)
        .await?;
    c.find(Locator::Css("main button.govuk-button"))
        .await?
        .click()
        .await?;
    wait_for_path(c, "/agreements")
        .await
        .with_context(|| format!("signing in as {user}"))?;
    Ok(())
}

/// "actual spend to date is £8,480,903.19" in the fund page's summary, in pence.
async fn actual_to_date(c: &Client, base: &str) -> Result<i64> {
    c.goto(&format!("{base}{FUND}?period={OPEN_PERIOD}"))
        .await?;
    c.wait()
        .for_element(Locator::Css("table.govuk-table"))
        .await?;
    let text = main_text(c).await?;
    let marker = "actual spend to date is £";
    let start = text.find(marker).map(|i| i + marker.len()).ok_or_else(|| {
        anyhow!("the fund page at {OPEN_PERIOD} does not say '{marker}…':\n{text}")
    })?;
    let figure: String = text[start..]
        .chars()
        .take_while(|ch| ch.is_ascii_digit() || *ch == ',' || *ch == '.' || *ch == '-')
        .collect();
    let figure = figure.trim_end_matches('.');
    let (negative, digits) = match figure.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, figure),
    };
    let (pounds, pence) = digits
        .split_once('.')
        .filter(|(_, p)| p.len() == 2)
        .ok_or_else(|| anyhow!("'{figure}' is not an amount in pounds and pence"))?;
    let pence = pounds.replace(',', "").parse::<i64>()? * 100 + pence.parse::<i64>()?;
    Ok(if negative { -pence } else { pence })
}

/// Uploads a ledger extract through the imports page with the identity mapping, waits for the
/// import to finish, and answers the result page's URL. The mapping is uploaded beside the
/// extract, through the form's "your own mapping file" choice, so that path is exercised too.
async fn upload(c: &Client, base: &str, file: &Path, mapping: &Path) -> Result<String> {
    c.goto(&format!("{base}/agreements/hertfordshire/imports"))
        .await?;
    c.wait()
        .for_element(Locator::Css("#file"))
        .await?
        .send_keys(&file.display().to_string())
        .await?;
    c.find(Locator::Css("#mapping"))
        .await?
        .select_by_value("upload")
        .await?;
    c.find(Locator::Css("#mapping_file"))
        .await?
        .send_keys(&mapping.display().to_string())
        .await?;
    c.find(Locator::XPath(
        "//main//form[@enctype='multipart/form-data']//button[normalize-space()='Import']",
    ))
    .await?
    .click()
    .await?;
    // The import runs in the background; its page says how far it has got until it is done.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let url = c.current_url().await?;
        if url.path().contains("/imports/jobs/") {
            let done = c
                .find_all(Locator::Css(
                    ".govuk-error-summary, .govuk-notification-banner--success",
                ))
                .await?;
            if !done.is_empty() {
                return Ok(url.to_string());
            }
        } else if !c
            .find_all(Locator::Css(".govuk-error-summary"))
            .await?
            .is_empty()
        {
            // The browser may have moved on to the job's page (which lists bad rows in an
            // error summary) between reading the address and looking: read it again.
            if c.current_url().await?.path().contains("/imports/jobs/") {
                continue;
            }
            bail!(
                "the imports page refused the upload of {}:\n{}",
                file.display(),
                main_text(c).await?
            );
        }
        if Instant::now() > deadline {
            bail!(
                "the import of {} did not finish; the browser is at {url}:\n{}",
                file.display(),
                main_text(c).await?
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        if url.path().contains("/imports/jobs/") {
            c.refresh().await?;
        }
    }
}

/// Sign in, open a fund, import a bad file and then a good one, download a statement, sign
/// out. Answers the URL of the bad file's result page, for the accessibility pass.
async fn journey(c: &Client, base: &str, dir: &Path) -> Result<String> {
    let step = Instant::now();
    // Signed out, a page sends you to sign in.
    c.goto(&format!("{base}/agreements")).await?;
    wait_for_path(c, "/sign-in").await?;
    sign_in(c, base, "pool-manager").await?;
    c.wait()
        .for_element(Locator::Css("a[href='/agreements/hertfordshire']"))
        .await?
        .click()
        .await?;
    wait_for_path(c, "/agreements/hertfordshire").await?;
    c.wait()
        .for_element(Locator::Css(&format!("a[href='{FUND}']")))
        .await?
        .click()
        .await?;
    wait_for_path(c, FUND).await?;
    let table = c
        .wait()
        .for_element(Locator::Css("table.govuk-table"))
        .await?;
    ensure!(
        table.text().await?.contains('£'),
        "the fund's monitoring table shows no money"
    );
    let chart = c.wait().for_element(Locator::Css("img.app-chart")).await?;
    let loaded = c
        .execute(
            "const img = arguments[0]; return img.complete && img.naturalWidth > 0;",
            vec![serde_json::to_value(&chart)?],
        )
        .await?;
    ensure!(
        loaded == json!(true),
        "the fund page's chart did not load ({:?})",
        chart.attr("src").await?
    );
    eprintln!("signed in and opened the fund in {:.1?}", step.elapsed());

    // A bad row: the whole file is refused, listed in the error summary, and nothing changes.
    let step = Instant::now();
    let mapping = dir.join("identity-mapping.toml");
    std::fs::write(&mapping, IDENTITY_MAPPING)?;
    let bad = dir.join("browser-bad.csv");
    std::fs::write(&bad, ledger(["1234.56", "12.3.4", "-34.56"]))?;
    let good = dir.join("browser-good.csv");
    std::fs::write(&good, ledger(GOOD_ROWS.map(|r| r.3)))?;
    let before = actual_to_date(c, base).await?;

    let bad_page = upload(c, base, &bad, &mapping).await?;
    let summary = c
        .find(Locator::Css(".govuk-error-summary"))
        .await
        .context("the bad file's page has no error summary")?;
    let items = summary
        .find_all(Locator::Css(".govuk-error-summary__list li"))
        .await?;
    let summary_text = summary.text().await?;
    ensure!(
        items.len() == 1 && summary_text.contains("Line 3, column amount: '12.3.4'"),
        "the error summary should list the one bad row, line 3's amount:\n{summary_text}"
    );
    ensure!(
        c.find_all(Locator::Css(".govuk-notification-banner--success"))
            .await?
            .is_empty(),
        "the bad file's page also shows a success banner"
    );
    let after_bad = actual_to_date(c, base).await?;
    ensure!(
        after_bad == before,
        "a refused file changed the fund's actual to date: {before} to {after_bad} pence"
    );
    eprintln!(
        "the bad file was refused, its row listed, in {:.1?}",
        step.elapsed()
    );

    // The good file: imported, its control totals shown, and the fund's figures move by it.
    let step = Instant::now();
    upload(c, base, &good, &mapping).await?;
    ensure!(
        !c.find_all(Locator::Css(".govuk-notification-banner--success"))
            .await?
            .is_empty(),
        "the good file's page has no success banner:\n{}",
        main_text(c).await?
    );
    let text = main_text(c).await?;
    ensure!(
        text.contains("Control totals") && text.contains("£1,300.00"),
        "the good file's page should show its control totals (£1,300.00):\n{text}"
    );
    let after_good = actual_to_date(c, base).await?;
    ensure!(
        after_good - before == GOOD_TOTAL_PENCE,
        "the fund's actual to date at {OPEN_PERIOD} went from {before} to {after_good} pence, not up by {GOOD_TOTAL_PENCE}"
    );
    eprintln!(
        "the good file was imported and the fund moved by £1,300.00 in {:.1?}",
        step.elapsed()
    );

    // The quarter's statement as PDF, fetched with the session's cookie from the page.
    let step = Instant::now();
    c.goto(&format!("{base}{FUND}/statements?quarter=2001/02-Q2"))
        .await?;
    let link = c
        .wait()
        .for_element(Locator::LinkText("Download as PDF"))
        .await?;
    let href = link
        .attr("href")
        .await?
        .ok_or_else(|| anyhow!("the PDF link has no href"))?;
    ensure!(
        href.contains("/statements/download?") && href.contains("format=pdf"),
        "the PDF link points to {href}"
    );
    let fetched = c
        .execute_async(
            r#"const [href, done] = arguments;
            fetch(href, {credentials: "same-origin"})
              .then(r => r.arrayBuffer().then(b => done({
                status: r.status,
                type: r.headers.get("content-type"),
                length: b.byteLength,
                head: String.fromCharCode(...new Uint8Array(b.slice(0, 5))),
              })))
              .catch(e => done({error: String(e)}));"#,
            vec![json!(href)],
        )
        .await?;
    ensure!(
        fetched["status"] == json!(200)
            && fetched["head"] == json!("%PDF-")
            && fetched["length"].as_u64().unwrap_or(0) > 1000,
        "the statement download is not a PDF: {fetched}"
    );
    eprintln!(
        "downloaded the Q2 statement as PDF ({} bytes, {}) in {:.1?}",
        fetched["length"],
        fetched["type"],
        step.elapsed()
    );

    // Sign out, and a signed-out banner.
    c.find(Locator::Css("#sign-out")).await?.click().await?;
    let url = wait_for_path(c, "/sign-in").await?;
    ensure!(
        url.ends_with("/sign-in?signed_out=1"),
        "signing out went to {url}"
    );
    let text = main_text(c).await?;
    ensure!(
        text.contains("You have signed out"),
        "the sign-in page after signing out does not say so:\n{text}"
    );
    ensure!(
        c.find_all(Locator::Css("#sign-out")).await?.is_empty(),
        "the header still offers to sign out after signing out"
    );
    c.goto(&format!("{base}{FUND}")).await?;
    wait_for_path(c, "/sign-in")
        .await
        .context("after signing out, the fund page should send you to sign in")?;
    Ok(bad_page)
}

/// The board secretary records a decision at the board's meeting: one with a co-opted
/// member's vote is refused with the reason in the error summary, then one that stands is
/// recorded and shows on the public page.
async fn governance_journey(c: &Client, base: &str) -> Result<()> {
    let step = Instant::now();
    sign_in(c, base, "secretary").await?;
    let meeting = format!("{base}/agreements/hertfordshire/meetings/JCPB-2001-10");
    let decide = |votes: &'static str| async move {
        c.goto(&format!(
            "{base}/agreements/hertfordshire/meetings/JCPB-2001-10"
        ))
        .await?;
        let fill = [
            ("reference", "JCPB-2001-10-5"),
            ("title", "Date of the next meeting"),
            ("resolution", "The board will next meet on 15 January 2002."),
            ("agenda_item", "5"),
            ("votes", votes),
        ];
        for (id, text) in fill {
            c.wait()
                .for_element(Locator::Css(&format!("#{id}")))
                .await?
                .send_keys(text)
                .await?;
        }
        c.find(Locator::Css("#decision_type option[value='policy']"))
            .await?
            .click()
            .await?;
        c.find(Locator::XPath(
            "//button[normalize-space()='Check and record the decision']",
        ))
        .await?
        .click()
        .await?;
        c.wait().for_element(Locator::Css("main h1")).await?;
        main_text(c).await
    };
    let refused = decide("Carers' representative C. Example | for").await?;
    ensure!(
        refused.contains("There is a problem")
            && refused.contains("co-opted members take part but never vote"),
        "a co-optee's vote should be refused with the reason: {refused}"
    );
    let summary = c.find(Locator::Css(".govuk-error-summary a")).await?;
    ensure!(
        summary.attr("href").await?.as_deref() == Some("#votes"),
        "the error summary should link to the votes"
    );
    let recorded = decide(
        "Councillor A. Example | for\nCouncillor B. Example | for\nPCT board member A. Sample | for",
    )
    .await?;
    ensure!(
        recorded.contains("Decision JCPB-2001-10-5 recorded"),
        "the decision should be recorded: {recorded}"
    );
    ensure!(
        c.current_url().await?.as_str().starts_with(&meeting),
        "after recording, the meeting's page"
    );
    c.goto(&format!("{base}/public/hertfordshire/decisions"))
        .await?;
    let public = main_text(c).await?;
    ensure!(
        public.contains("JCPB-2001-10-5") && public.contains("Date of the next meeting"),
        "the published decision should be on the public page: {public}"
    );
    eprintln!(
        "refused a co-optee's vote and recorded a decision in {:.1?}",
        step.elapsed()
    );
    Ok(())
}

/// One of axe-core's findings.
#[derive(Debug, serde::Deserialize)]
struct Violation {
    id: String,
    impact: Option<String>,
    help: String,
    targets: Vec<String>,
}

async fn axe(c: &Client, script: &str) -> Result<Vec<Violation>> {
    // The pages' policy forbids inline script; WebDriver's script runs outside it.
    c.execute(script, vec![]).await.context("inject axe-core")?;
    let there = c.execute("return typeof window.axe;", vec![]).await?;
    ensure!(
        there == json!("object"),
        "axe-core did not load in the page (typeof axe is {there})"
    );
    let found = c
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
            axe.run(document, {resultTypes: ["violations"]})
              .then(r => done({violations: r.violations.map(v => ({
                id: v.id,
                impact: v.impact,
                help: v.help,
                targets: v.nodes.map(n => n.target.join(" ")),
              }))}))
              .catch(e => done({error: String(e)}));"#,
            vec![],
        )
        .await?;
    if let Some(error) = found.get("error") {
        bail!("axe-core failed: {error}");
    }
    Ok(serde_json::from_value(found["violations"].clone())?)
}

async fn screenshot(c: &Client, name: &str) -> Result<PathBuf> {
    // Measured in a short window, so a short page's screenshot is short.
    c.set_window_size(WIDTH, 800).await?;
    let measured = c
        .execute(
            "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight];",
            vec![],
        )
        .await?;
    let page = measured[0].as_u64().unwrap_or(u64::from(HEIGHT));
    let frame = measured[1].as_u64().unwrap_or(0);
    let height = u32::try_from(page.saturating_add(frame))
        .unwrap_or(MAX_SCREENSHOT_HEIGHT)
        .clamp(800, MAX_SCREENSHOT_HEIGHT);
    c.set_window_size(WIDTH, height).await?;
    let png = c.screenshot().await?;
    c.set_window_size(WIDTH, HEIGHT).await?;
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png)?;
    Ok(path)
}

/// axe-core on each kind of page, and a screenshot of each.
async fn accessibility_and_screenshots(c: &Client, base: &str, bad_rows_page: &str) -> Result<()> {
    let step = Instant::now();
    let script = std::fs::read_to_string(concordat_web::AXE_JS)
        .with_context(|| format!("read axe-core at {}", concordat_web::AXE_JS))?;
    let pages: Vec<(&str, String)> = vec![
        ("sign-in", format!("{base}/sign-in")),
        ("register", format!("{base}/agreements")),
        ("agreement", format!("{base}/agreements/hertfordshire")),
        ("fund", format!("{base}{FUND}")),
        ("import-bad-rows", bad_rows_page.to_string()),
        (
            "statement",
            format!("{base}{FUND}/statements?quarter=2001/02-Q2"),
        ),
        ("budgets", format!("{base}{FUND}/budgets?year=2001/02")),
        (
            "audit-log",
            format!("{base}/agreements/hertfordshire/audit"),
        ),
        (
            "periods",
            format!("{base}/agreements/hertfordshire/periods"),
        ),
        (
            "calendar",
            format!("{base}/agreements/hertfordshire/calendar"),
        ),
        (
            "governance",
            format!("{base}/agreements/hertfordshire/governance"),
        ),
        (
            "meetings",
            format!("{base}/agreements/hertfordshire/meetings"),
        ),
        (
            "meeting",
            format!("{base}/agreements/hertfordshire/meetings/JCPB-2001-10"),
        ),
        (
            "meeting-scheduled",
            format!("{base}/agreements/hertfordshire/meetings/JCPB-2002-01"),
        ),
        (
            "decision-log",
            format!("{base}/agreements/hertfordshire/decisions"),
        ),
        (
            "disputes",
            format!("{base}/agreements/halton-st-helens/disputes"),
        ),
        (
            "complaints",
            format!("{base}/agreements/halton-st-helens/complaints"),
        ),
        ("risks", format!("{base}/agreements/halton-st-helens/risks")),
        (
            "notice-and-exit",
            format!("{base}/agreements/hertfordshire/notice"),
        ),
        (
            "calendar-halton",
            format!("{base}/agreements/halton-st-helens/calendar"),
        ),
        (
            "public-decisions",
            format!("{base}/public/hertfordshire/decisions"),
        ),
    ];
    let mut failures = Vec::new();
    for (name, url) in &pages {
        if *name == "register" {
            sign_in(c, base, "pool-manager").await?;
        }
        c.goto(url).await?;
        c.wait().for_element(Locator::Css("main h1")).await?;
        let here = c.current_url().await?;
        ensure!(
            here.as_str() == url.as_str(),
            "{name}: asked for {url}, the browser is at {here}"
        );
        let violations = axe(c, &script).await.with_context(|| name.to_string())?;
        let shot = screenshot(c, name).await?;
        if violations.is_empty() {
            eprintln!("axe {name}: no violations ({})", shot.display());
        }
        for v in &violations {
            let impact = v.impact.as_deref().unwrap_or("unknown");
            let line = format!(
                "axe {name}: {impact} {}: {} at {}",
                v.id,
                v.help,
                v.targets.join(", ")
            );
            eprintln!("{line}");
            if matches!(impact, "serious" | "critical") {
                failures.push(line);
            }
        }
    }
    eprintln!(
        "checked {} pages with axe-core in {:.1?}; screenshots in {}",
        pages.len(),
        step.elapsed(),
        screenshot_dir().display()
    );
    ensure!(
        failures.is_empty(),
        "axe-core found serious or critical violations:\n{}",
        failures.join("\n")
    );
    Ok(())
}
