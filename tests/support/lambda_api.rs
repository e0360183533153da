//! A minimal Lambda Runtime API on loopback, so a function's real binary (its `main.rs`, as
//! deployed) can be run against the emulator: it serves queued events on
//! `GET /2018-06-01/runtime/invocation/next` and collects what the function posts back.
//! Only what the Rust runtime uses is implemented; it is a test double, not a Lambda emulator.

use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What the function posted for one invocation.
#[derive(Debug, Clone)]
pub struct Posted {
    pub request_id: String,
    /// `response`, `error` (invocation error) or `init-error`.
    pub kind: String,
    pub body: Value,
}

pub struct FakeRuntimeApi {
    /// `host:port`, for `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    pub posted: mpsc::UnboundedReceiver<Posted>,
}

/// The invoked function's ARN the fake sends with each event (Lambda's
/// `lambda-runtime-invoked-function-arn`): the account the functions take as their own.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:reflex-test";

impl FakeRuntimeApi {
    /// Serve `events` in order (request ids `req-0`, `req-1`…); after the last, `next` waits forever.
    pub async fn start(events: Vec<Value>) -> FakeRuntimeApi {
        FakeRuntimeApi::start_as(events, FUNCTION_ARN).await
    }

    /// As [`FakeRuntimeApi::start`], each event sent as invoking `function_arn`.
    pub async fn start_as(events: Vec<Value>, function_arn: &str) -> FakeRuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let address = listener.local_addr().unwrap().to_string();
        let queue: Arc<Mutex<VecDeque<(String, Value)>>> = Arc::new(Mutex::new(
            events
                .into_iter()
                .enumerate()
                .map(|(i, e)| (format!("req-{i}"), e))
                .collect(),
        ));
        let (tx, posted) = mpsc::unbounded_channel();
        let arn = Arc::new(function_arn.to_string());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, queue.clone(), tx.clone(), arn.clone()));
            }
        });
        FakeRuntimeApi { address, posted }
    }
}

async fn serve(
    stream: TcpStream,
    queue: Arc<Mutex<VecDeque<(String, Value)>>>,
    tx: mpsc::UnboundedSender<Posted>,
    function_arn: Arc<String>,
) {
    let mut reader = BufReader::new(stream);
    loop {
        // Request line and headers.
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string();
        let reply = if path == "/2018-06-01/runtime/invocation/next" {
            let next = queue.lock().unwrap().pop_front();
            let Some((id, event)) = next else {
                // No more work: hold the request open, as Lambda does between invocations.
                std::future::pending::<()>().await;
                return;
            };
            let body = event.to_string();
            let deadline = chrono::Utc::now().timestamp_millis() + 60_000;
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlambda-runtime-aws-request-id: {id}\r\n\
                 lambda-runtime-deadline-ms: {deadline}\r\n\
                 lambda-runtime-invoked-function-arn: {function_arn}\r\n\
                 lambda-runtime-trace-id: Root=1-00000000-000000000000000000000000\r\n\
                 content-length: {}\r\n\r\n{body}",
                body.len()
            )
        } else {
            let parts: Vec<&str> = path
                .trim_start_matches("/2018-06-01/runtime/")
                .split('/')
                .collect();
            let (request_id, kind) = match parts.as_slice() {
                ["invocation", id, kind] => (id.to_string(), kind.to_string()),
                ["init", "error"] => (String::new(), "init-error".to_string()),
                _ => (String::new(), format!("unknown {path}")),
            };
            let body = serde_json::from_slice(&body)
                .unwrap_or(Value::String(String::from_utf8_lossy(&body).into()));
            let _ = tx.send(Posted {
                request_id,
                kind,
                body,
            });
            "HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}".to_string()
        };
        if reader.get_mut().write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// What a function binary did with a queue of events: one post per event, and its output.
#[derive(Debug)]
pub struct Served {
    pub posted: Vec<Posted>,
    pub stdout: String,
    pub stderr: String,
}

impl Served {
    /// The JSON log lines whose `message` is `message`.
    pub fn logged(&self, message: &str) -> Vec<Value> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["message"] == message)
            .collect()
    }
}

/// Start `binary` as Lambda starts it (the runtime environment variables, `env` on top), serve
/// it `events` in order, and stop it once it has answered each one. Panics with its output if
/// it stops answering (a crash, a panic) for a minute.
pub async fn serve_binary(
    binary: &std::path::Path,
    env: &[(&str, &str)],
    events: Vec<Value>,
) -> Served {
    serve_binary_as(binary, FUNCTION_ARN, env, events).await
}

/// As [`serve_binary`], each event sent as invoking `function_arn`.
pub async fn serve_binary_as(
    binary: &std::path::Path,
    function_arn: &str,
    env: &[(&str, &str)],
    events: Vec<Value>,
) -> Served {
    let expected = events.len();
    let mut api = FakeRuntimeApi::start_as(events, function_arn).await;
    let mut child = tokio::process::Command::new(binary)
        .env("AWS_LAMBDA_RUNTIME_API", &api.address)
        .env("AWS_LAMBDA_FUNCTION_NAME", "reflex-test")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("RUST_LOG", "info")
        .env_remove("REFLEX_POLICY_FILE")
        .env_remove("REFLEX_POLICY_PARAMETER")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the function binary");
    let mut posted = Vec::new();
    while posted.len() < expected {
        match tokio::time::timeout(std::time::Duration::from_secs(60), api.posted.recv()).await {
            Ok(Some(p)) => posted.push(p),
            other => {
                child.kill().await.ok();
                let out = child.wait_with_output().await.unwrap();
                panic!(
                    "the function stopped answering ({other:?}) after {posted:?}\nstdout: {}\nstderr: {}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    child.kill().await.ok();
    let out = child.wait_with_output().await.unwrap();
    Served {
        posted,
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}
