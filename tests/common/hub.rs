//! A local HTTP server that answers as the Hugging Face Hub's `resolve` endpoint does, for
//! model and dataset repositories (and as a plain file server, for torchvision's URLs), so
//! that downloads are tested without the internet: ETag and `X-Repo-Commit` headers, range
//! requests, and faults on demand (a corrupted body, a connection cut in the middle, a gated
//! file).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

/// The commit every served repository is at.
pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// What goes wrong when a file is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Nothing.
    None,
    /// The body differs from the file in one byte; the ETag is still the file's sha256.
    Corrupt,
    /// The first response with a body of more than `n` bytes stops after `n` of them and
    /// closes the connection (its `Content-Length` promised them all).
    CutAfter(usize),
}

/// A file the server has.
#[derive(Debug, Clone)]
pub struct Served {
    /// URL path, e.g. `/timm/resnet18.tv_in1k/resolve/main/model.safetensors`.
    pub path: String,
    /// Its content.
    pub bytes: Arc<Vec<u8>>,
    /// What goes wrong.
    pub fault: Fault,
    /// A token the request must carry as `Authorization: Bearer <token>` (a gated file).
    pub token: Option<String>,
}

impl Served {
    /// A file of a hub repository at `main`.
    pub fn hub(repo: &str, file: &str, bytes: Vec<u8>) -> Self {
        Self::at(&format!("/{repo}/resolve/main/{file}"), bytes)
    }

    /// A file of a hub dataset repository at `main`, which the Hub serves under
    /// `/datasets/`.
    pub fn dataset(repo: &str, file: &str, bytes: Vec<u8>) -> Self {
        Self::at(&format!("/datasets/{repo}/resolve/main/{file}"), bytes)
    }

    /// A file at `path`.
    pub fn at(path: &str, bytes: Vec<u8>) -> Self {
        Self {
            path: path.to_string(),
            bytes: Arc::new(bytes),
            fault: Fault::None,
            token: None,
        }
    }

    /// The same, served with `fault`.
    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.fault = fault;
        self
    }

    /// The same, served only with this token.
    pub fn gated(mut self, token: &str) -> Self {
        self.token = Some(token.to_string());
        self
    }
}

/// One request the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// URL path.
    pub path: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The status answered.
    pub status: u16,
    /// Body bytes sent.
    pub sent: usize,
}

/// The running server; it stops when dropped.
#[derive(Debug)]
pub struct HubServer {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The sha256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl HubServer {
    /// Serves `files` on a free port of 127.0.0.1.
    pub fn start(files: Vec<Served>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
        let addr = listener.local_addr().expect("local address");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (log, stop) = (log.clone(), stop.clone());
            let mut state: Vec<(Served, bool)> = files.into_iter().map(|f| (f, false)).collect();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(stream) = stream
                        && let Some(request) = answer(stream, &mut state)
                    {
                        log.lock().expect("log").push(request);
                    }
                }
            })
        };
        Self {
            addr,
            log,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>`: the endpoint (`HF_ENDPOINT`) and the URL base.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests answered so far.
    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().expect("log").clone()
    }
}

impl Drop for HubServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request and answers it; the connection is closed afterwards.
fn answer(stream: TcpStream, files: &mut [(Served, bool)]) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let (mut range, mut auth) = (None, None);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "range" => range = Some(value.trim().to_string()),
                "authorization" => auth = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    let mut stream = stream;
    let respond =
        |stream: &mut TcpStream, status: u16, headers: &[(String, String)], body: &[u8]| {
            let reason = match status {
                200 => "OK",
                206 => "Partial Content",
                401 => "Unauthorized",
                416 => "Range Not Satisfiable",
                _ => "Not Found",
            };
            let mut head = format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\n");
            for (k, v) in headers {
                head += &format!("{k}: {v}\r\n");
            }
            head += "\r\n";
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
            let _ = stream.flush();
        };
    let log = |status, sent| Request {
        path: path.clone(),
        range: range.clone(),
        authorization: auth.clone(),
        status,
        sent,
    };

    let Some((file, cut_done)) = files.iter_mut().find(|(f, _)| f.path == path) else {
        respond(
            &mut stream,
            404,
            &[("Content-Length".into(), "0".into())],
            b"",
        );
        return Some(log(404, 0));
    };
    if let Some(token) = &file.token
        && auth.as_deref() != Some(&format!("Bearer {token}"))
    {
        respond(
            &mut stream,
            401,
            &[("Content-Length".into(), "0".into())],
            b"",
        );
        return Some(log(401, 0));
    }
    let mut content = file.bytes.to_vec();
    if file.fault == Fault::Corrupt {
        let mid = content.len() / 2;
        content[mid] ^= 0xff;
    }
    let size = content.len();
    // `bytes=a-b` or `bytes=a-`.
    let span = range.as_deref().and_then(|r| {
        let (a, b) = r.strip_prefix("bytes=")?.split_once('-')?;
        let a: usize = a.parse().ok()?;
        let b: usize = if b.is_empty() {
            size - 1
        } else {
            b.parse().ok()?
        };
        Some((a, b.min(size - 1)))
    });
    if let Some((a, _)) = span
        && a >= size
    {
        let headers = [
            ("Content-Range".into(), format!("bytes */{size}")),
            ("Content-Length".into(), "0".into()),
        ];
        respond(&mut stream, 416, &headers, b"");
        return Some(log(416, 0));
    }
    let (status, a, b) = match span {
        Some((a, b)) => (206, a, b),
        None => (200, 0, size - 1),
    };
    let etag = format!("\"{}\"", sha256_hex(&file.bytes));
    let mut headers = vec![
        ("Content-Length".into(), (b + 1 - a).to_string()),
        ("Accept-Ranges".into(), "bytes".into()),
        ("ETag".into(), etag.clone()),
        ("X-Linked-Etag".into(), etag),
        ("X-Repo-Commit".into(), COMMIT.into()),
    ];
    if status == 206 {
        headers.push(("Content-Range".into(), format!("bytes {a}-{b}/{size}")));
    }
    let mut body = &content[a..=b];
    if let Fault::CutAfter(n) = file.fault
        && !*cut_done
        && body.len() > n
    {
        *cut_done = true;
        body = &body[..n];
    }
    respond(&mut stream, status, &headers, body);
    Some(log(status, body.len()))
}
