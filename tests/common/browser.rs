//! A minimal WebDriver client for headless Chromium: start chromedriver on a free port, open a
//! session with a fresh profile, and drive pages (navigate, find, click, type, read text, run
//! scripts, take screenshots, wait for conditions). Dropping a `Browser` ends the session and
//! stops chromedriver.
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

use serde_json::{Value, json};

/// The W3C key under which an element reference is returned.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    client: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
    port: u16,
    session_id: String,
    driver: Child,
    _profile: tempfile::TempDir,
    ended: bool,
}

/// A reference to an element on the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

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
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", driver_path.display()))?;
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            client,
            session: String::new(),
            port,
            session_id: String::new(),
            driver,
            _profile: profile,
            ended: true,
        };
        let ready = Instant::now() + Duration::from_secs(15);
        loop {
            let status = browser.client.get(format!("{base}/status")).send().await;
            if let Ok(response) = status {
                if let Ok(body) = response.json::<Value>().await {
                    if body["value"]["ready"] == true {
                        break;
                    }
                }
            }
            if Instant::now() > ready {
                return Err("chromedriver did not become ready within 15 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1280,1000",
        ];
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", browser._profile.path().display()));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chrome, "args": args}
        }}});
        let response = browser
            .client
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .map_err(|e| format!("new session: {e}"))?;
        let body: Value = response.json().await.map_err(|e| format!("new session: {e}"))?;
        let id = body["value"]["sessionId"].as_str().ok_or_else(|| format!("Chromium did not start: {body}"))?;
        browser.session_id = id.to_string();
        browser.session = format!("{base}/session/{id}");
        browser.ended = false;
        Ok(browser)
    }

    /// One WebDriver command; WebDriver errors become `Err` with the driver's message.
    pub async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let mut request = self.client.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| format!("{path}: {e}"))?;
        let body: Value = response.json().await.map_err(|e| format!("{path}: {e}"))?;
        match body["value"].get("error") {
            Some(error) => Err(format!("{path}: {error}: {}", body["value"]["message"])),
            None => Ok(body["value"].clone()),
        }
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Result<Value, String> {
        self.command(reqwest::Method::GET, path, None).await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await.expect("navigate");
    }

    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({"width": width, "height": height})).await.expect("resize");
    }

    pub async fn try_find(&self, css: &str) -> Option<Element> {
        let value = self.post("/element", json!({"using": "css selector", "value": css})).await.ok()?;
        value[ELEMENT_KEY].as_str().map(|id| Element(id.to_string()))
    }

    pub async fn find(&self, css: &str) -> Element {
        self.try_find(css).await.unwrap_or_else(|| panic!("no element matches {css:?}"))
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let value =
            self.post("/elements", json!({"using": "css selector", "value": css})).await.expect("find elements");
        value
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT_KEY].as_str())
            .map(|id| Element(id.into()))
            .collect()
    }

    pub async fn click_element(&self, element: &Element) {
        self.post(&format!("/element/{}/click", element.0), json!({})).await.expect("click");
    }

    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.click_element(&element).await;
    }

    pub async fn clear(&self, css: &str) {
        let element = self.find(css).await;
        self.post(&format!("/element/{}/clear", element.0), json!({})).await.expect("clear");
    }

    pub async fn send_keys_to(&self, element: &Element, text: &str) {
        self.post(&format!("/element/{}/value", element.0), json!({"text": text})).await.expect("type");
    }

    /// Replaces the value of the field matching `css` with `text`.
    pub async fn fill(&self, css: &str, text: &str) {
        self.clear(css).await;
        let element = self.find(css).await;
        self.send_keys_to(&element, text).await;
    }

    /// The rendered text of an element (empty when it is hidden).
    pub async fn element_text(&self, element: &Element) -> String {
        let value = self.get(&format!("/element/{}/text", element.0)).await.expect("text");
        value.as_str().unwrap_or_default().to_string()
    }

    pub async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.element_text(&element).await
    }

    /// Runs `script` (a function body; arguments in `arguments`) and returns its result.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args})).await.expect("execute script")
    }

    /// Saves a PNG of the viewport.
    pub async fn screenshot(&self, path: &Path) {
        let value = self.get("/screenshot").await.expect("screenshot");
        let png = decode_base64(value.as_str().expect("base64 PNG"));
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
            let element = self.try_find(css).await?;
            let text = self.get(&format!("/element/{}/text", element.0)).await.ok()?;
            text.as_str().filter(|t| t.contains(needle)).map(str::to_string)
        })
        .await
    }

    /// Ends the session and stops chromedriver.
    pub async fn quit(mut self) {
        let _ = self.command(reqwest::Method::DELETE, "", None).await;
        self.ended = true;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.ended {
            // Drop cannot await: close the session with a plain blocking request.
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

/// Standard base64 (screenshots), without pulling in a crate for it.
fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let digits: Vec<u32> = text.bytes().filter_map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, d)| n | d << (18 - 6 * i));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    out
}
