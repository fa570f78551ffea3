//! Headless Chromium for the browser tests, driven by `fantoccini` (a WebDriver client): start
//! chromedriver on a free port, open a session with a fresh profile, and a few conveniences the
//! tests share (CSS lookups that panic with the selector, waiting for text). Dropping a
//! `Browser` ends the session and stops chromedriver.
//!
//! Binaries: `$CHROMEDRIVER` / `$CHROME_BIN`, else `chromedriver` and `chromium` (or
//! `chromium-browser`, `google-chrome`) on the PATH. Tests call [`Browser::start_or_skip`]:
//! it fails with instructions when they are missing, unless `MOA_SKIP_BROWSER=1`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

pub use fantoccini::elements::Element;

pub struct Browser {
    client: Client,
    port: u16,
    session_id: String,
    driver: Child,
    _profile: tempfile::TempDir,
    ended: bool,
}

fn find_binary(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env).map(PathBuf::from) {
        return path.exists().then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).flat_map(|dir| names.iter().map(move |n| dir.join(n))).find(|p| p.is_file())
}

impl Browser {
    /// `None` (with a note on stderr) when `MOA_SKIP_BROWSER=1`; otherwise a browser, or a
    /// panic that says how to install one.
    pub async fn start_or_skip() -> Option<Browser> {
        if std::env::var("MOA_SKIP_BROWSER").as_deref() == Ok("1") {
            eprintln!("MOA_SKIP_BROWSER=1: skipping the browser test");
            return None;
        }
        match Browser::start().await {
            Ok(browser) => Some(browser),
            Err(problem) => panic!(
                "{problem}\nBrowser tests need Chromium and chromedriver (Debian: apt-get install -y chromium \
                 chromium-driver). Set MOA_SKIP_BROWSER=1 to skip them."
            ),
        }
    }

    pub async fn start() -> Result<Browser, String> {
        let driver_path = find_binary("CHROMEDRIVER", &["chromedriver"]).ok_or("chromedriver was not found")?;
        let chrome = find_binary("CHROME_BIN", &["chromium", "chromium-browser", "google-chrome"])
            .ok_or("Chromium was not found")?;
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let mut driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", driver_path.display()))?;
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1280,1000",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let capabilities = json!({"browserName": "chrome", "goog:chromeOptions": {"binary": chrome, "args": args}});
        let Value::Object(capabilities) = capabilities else { unreachable!() };
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        // chromedriver takes a moment to listen.
        let ready = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > ready {
                let _ = driver.kill();
                return Err("chromedriver did not start listening within 15 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let client = match builder.connect(&format!("http://127.0.0.1:{port}")).await {
            Ok(client) => client,
            Err(problem) => {
                let _ = driver.kill();
                return Err(format!("Chromium did not start: {problem}"));
            }
        };
        let session_id = client.session_id().await.ok().flatten().unwrap_or_default();
        Ok(Browser { client, port, session_id, driver, _profile: profile, ended: false })
    }

    /// Makes the page's next run stream (a fetch of a `/run` URL) deliver its first chunk and
    /// then fail as `cut` says, to try what the page does on bad Wi-Fi.
    pub async fn cut_next_run_stream(&self, cut: Cut) {
        let after_first = match cut {
            Cut::Error => "reader.cancel(); controller.error(new TypeError('network lost')); return;",
            // A promise that never settles: no other byte, and no end either.
            Cut::Silence => "return new Promise(() => {});",
        };
        let script = format!(
            "const realFetch = window.fetch;
             window.fetch = async (...args) => {{
               if (!String(args[0]).includes('/run')) return realFetch(...args);
               window.fetch = realFetch;
               const response = await realFetch(...args);
               const reader = response.body.getReader();
               let chunks = 0;
               const body = new ReadableStream({{ async pull(controller) {{
                 if (chunks++ >= 1) {{ {after_first} }}
                 const {{ value, done }} = await reader.read();
                 if (done) controller.close(); else controller.enqueue(value);
               }}}});
               return new Response(body, {{ status: response.status, headers: response.headers }});
             }};"
        );
        self.execute(&script, vec![]).await;
    }

    /// Makes pages see `prefers-color-scheme: dark` (or light), through chromedriver's
    /// DevTools bridge: WebDriver itself has no such setting.
    pub async fn prefer_dark(&self, dark: bool) {
        let url = format!("http://127.0.0.1:{}/session/{}/goog/cdp/execute", self.port, self.session_id);
        let scheme = if dark { "dark" } else { "light" };
        let body = json!({"cmd": "Emulation.setEmulatedMedia",
                          "params": {"features": [{"name": "prefers-color-scheme", "value": scheme}]}});
        let response = reqwest::Client::new().post(url).json(&body).send().await.expect("chromedriver answers");
        assert!(response.status().is_success(), "emulating {scheme}: {}", response.text().await.unwrap_or_default());
    }

    /// Photographs the current page on a desktop and a phone, light and dark, as
    /// `{name}-{desktop|phone}-{light|dark}.png`: into docs/screenshots/ with
    /// `MOA_UPDATE_SCREENSHOT=1`, else into `scratch`. Checks that dark mode changes the page.
    /// `subject` is scrolled into view at each size. Leaves the window at 1280×1000, light.
    pub async fn screenshots(&self, name: &str, subject: &str, scratch: &Path) {
        let dir = if std::env::var("MOA_UPDATE_SCREENSHOT").as_deref() == Ok("1") {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots")
        } else {
            scratch.to_path_buf()
        };
        let mut backgrounds = Vec::new();
        for (device, width, height) in [("desktop", 1280, 1000), ("phone", 390, 844)] {
            self.set_window_size(width, height).await;
            let scroll = format!("document.querySelector({subject:?})?.scrollIntoView()");
            self.execute(&scroll, vec![]).await;
            for dark in [false, true] {
                self.prefer_dark(dark).await;
                backgrounds.push(self.execute("return getComputedStyle(document.body).backgroundColor", vec![]).await);
                let scheme = if dark { "dark" } else { "light" };
                self.screenshot(&dir.join(format!("{name}-{device}-{scheme}.png"))).await;
            }
        }
        assert_ne!(backgrounds[0], backgrounds[1], "{name}: dark mode changes the page");
        self.prefer_dark(false).await;
        self.set_window_size(1280, 1000).await;
    }

    /// The fantoccini client, for anything the conveniences below do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.client.set_window_size(width, height).await.expect("resize");
    }

    pub async fn try_find(&self, css: &str) -> Option<Element> {
        self.client.find(Locator::Css(css)).await.ok()
    }

    pub async fn find(&self, css: &str) -> Element {
        self.try_find(css).await.unwrap_or_else(|| panic!("no element matches {css:?}"))
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client.find_all(Locator::Css(css)).await.expect("find elements")
    }

    pub async fn click_element(&self, element: &Element) {
        element.click().await.expect("click");
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap_or_else(|e| panic!("click {css:?}: {e}"));
    }

    pub async fn send_keys_to(&self, element: &Element, text: &str) {
        element.send_keys(text).await.expect("type");
    }

    /// Replaces the value of the field matching `css` with `text`.
    pub async fn fill(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        element.clear().await.expect("clear");
        element.send_keys(text).await.expect("type");
    }

    /// The rendered text of an element (empty when it is hidden).
    pub async fn element_text(&self, element: &Element) -> String {
        element.text().await.expect("text")
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("text")
    }

    /// Runs `script` (a function body; arguments in `arguments`) and returns its result.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.expect("execute script")
    }

    /// Saves a PNG of the viewport.
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    /// Polls `check` until it returns `Some`, failing with `what` after `timeout`.
    pub async fn wait_until<T>(&self, what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = check().await {
                return value;
            }
            if Instant::now() > deadline {
                panic!("timed out after {timeout:?} waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the element matching `css` shows text containing `needle`; returns the text.
    /// An element replaced meanwhile (a navigation, a swap) is looked up again.
    pub async fn wait_for_text(&self, css: &str, needle: &str, timeout: Duration) -> String {
        self.wait_until(&format!("{css:?} to show {needle:?}"), timeout, async || {
            let text = self.try_find(css).await?.text().await.ok()?;
            text.contains(needle).then_some(text)
        })
        .await
    }

    /// Ends the session and stops chromedriver.
    pub async fn quit(mut self) {
        let _ = self.client.clone().close().await;
        self.ended = true;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.ended {
            // A failed test drops the browser mid-run, where nothing can be awaited: close the
            // session with a plain blocking request so Chromium does not outlive the test.
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let request = format!(
                    "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    self.session_id, self.port
                );
                if stream.write_all(request.as_bytes()).is_ok() {
                    let _ = stream.read(&mut [0u8; 512]);
                }
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A script that lists the elements reaching past the viewport's right edge (tag, id, class and
/// width), for the message of a failed phone-layout check.
pub const WIDER_THAN_VIEWPORT: &str = "return [...document.querySelectorAll('body *')]
    .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
    .slice(0, 8)
    .map((el) => `${el.tagName.toLowerCase()}#${el.id}.${el.className} ${Math.round(el.getBoundingClientRect().width)}px`);";

/// How [`Browser::cut_next_run_stream`] breaks a stream.
pub enum Cut {
    /// The connection fails.
    Error,
    /// The connection stays open and nothing more arrives.
    Silence,
}
