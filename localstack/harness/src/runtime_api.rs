//! A Lambda Runtime API emulator: runs a function's real binary as a child process, pointed at
//! a Runtime API listener of its own, and hands it one invocation at a time, as Lambda does.
//! Responses are written with TCP_NODELAY in a single write (hyper buffers head and body), so
//! no delayed-ACK stall is added to warm invocations.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot, Mutex as AsyncMutex};

/// What a single invocation produced.
#[derive(Debug)]
pub enum Outcome {
    /// The function's response payload.
    Response(Bytes),
    /// The function reported an error (handler error or panic).
    FunctionError(Bytes),
    /// The process exited or failed to initialise before answering.
    Crashed(String),
    /// No answer within the function's timeout; the instance was stopped, as Lambda does.
    TimedOut,
}

/// How to start one instance of a function.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    pub function_name: String,
    pub binary: PathBuf,
    pub env: Vec<(String, String)>,
    pub memory_mb: u64,
    pub timeout: Duration,
    /// Where the function's stdout/stderr go; `None` inherits the harness's.
    pub log_file: Option<PathBuf>,
}

struct Invocation {
    request_id: String,
    event: Bytes,
    deadline_ms: u64,
    reply: oneshot::Sender<Outcome>,
}

struct Shared {
    next: AsyncMutex<mpsc::Receiver<Invocation>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    function_arn: String,
    alive: AtomicBool,
    init_error: Mutex<Option<String>>,
}

impl Shared {
    fn fail_all(&self, why: &str) {
        let pending: Vec<_> = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .collect();
        for (_, reply) in pending {
            let _ = reply.send(Outcome::Crashed(why.to_string()));
        }
    }
}

/// One running function process with its own Runtime API endpoint.
pub struct Instance {
    shared: Arc<Shared>,
    events: mpsc::Sender<Invocation>,
    child: Arc<AsyncMutex<Child>>,
    pid: Option<u32>,
    pub started: Instant,
    timeout: Duration,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn response(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r
}

async fn runtime_api(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let rest = path.strip_prefix("/2018-06-01/runtime/").unwrap_or("");
    if method == Method::GET && rest == "invocation/next" {
        let next = { shared.next.lock().await.recv().await };
        let Some(inv) = next else {
            // The harness is shutting this instance down; the process is about to be stopped.
            return Ok(response(StatusCode::GONE, Bytes::new()));
        };
        shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(inv.request_id.clone(), inv.reply);
        let mut r = response(StatusCode::OK, inv.event);
        let h = r.headers_mut();
        h.insert(
            "lambda-runtime-aws-request-id",
            inv.request_id.parse().expect("uuid is a header value"),
        );
        h.insert("lambda-runtime-deadline-ms", inv.deadline_ms.into());
        h.insert(
            "lambda-runtime-invoked-function-arn",
            shared.function_arn.parse().expect("arn is a header value"),
        );
        h.insert(
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000;Sampled=0"
                .parse()
                .expect("static"),
        );
        h.insert("content-type", "application/json".parse().expect("static"));
        return Ok(r);
    }
    let body = req.into_body().collect().await?.to_bytes();
    if method == Method::POST && rest == "init/error" {
        *shared.init_error.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(String::from_utf8_lossy(&body).into_owned());
        return Ok(response(StatusCode::ACCEPTED, Bytes::from_static(b"{}")));
    }
    if method == Method::POST {
        if let Some((id, kind)) = rest
            .strip_prefix("invocation/")
            .and_then(|r| r.split_once('/'))
        {
            let reply = shared
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(id);
            let Some(reply) = reply else {
                return Ok(response(
                    StatusCode::BAD_REQUEST,
                    Bytes::from_static(b"{\"errorMessage\":\"unknown request id\"}"),
                ));
            };
            let outcome = match kind {
                "response" => Outcome::Response(body),
                "error" => Outcome::FunctionError(body),
                _ => return Ok(response(StatusCode::NOT_FOUND, Bytes::new())),
            };
            let _ = reply.send(outcome);
            return Ok(response(StatusCode::ACCEPTED, Bytes::from_static(b"{}")));
        }
    }
    Ok(response(StatusCode::NOT_FOUND, Bytes::new()))
}

impl Instance {
    /// Starts the process and its Runtime API. Returns once the process is spawned; its init
    /// runs concurrently and the first invocation waits for it.
    pub async fn launch(spec: &LaunchSpec) -> std::io::Result<Instance> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let api_addr = listener.local_addr()?;
        let (events, rx) = mpsc::channel::<Invocation>(1);
        let shared = Arc::new(Shared {
            next: AsyncMutex::new(rx),
            pending: Mutex::new(HashMap::new()),
            function_arn: format!(
                "arn:aws:lambda:us-east-1:000000000000:function:{}",
                spec.function_name
            ),
            alive: AtomicBool::new(true),
            init_error: Mutex::new(None),
        });
        let server_shared = shared.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let _ = stream.set_nodelay(true);
                let s = server_shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| runtime_api(s.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });

        let (stdout, stderr) = match &spec.log_file {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                (Stdio::from(file.try_clone()?), Stdio::from(file))
            }
            None => (Stdio::inherit(), Stdio::inherit()),
        };
        let mut cmd = Command::new(&spec.binary);
        cmd.env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", api_addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &spec.function_name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                spec.memory_mb.to_string(),
            )
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", spec.function_name),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true);
        let child = cmd.spawn().inspect_err(|_| server.abort())?;
        let pid = child.id();
        let child = Arc::new(AsyncMutex::new(child));

        // Watch the process: when it exits, every waiting invocation learns why at once.
        let watch_child = child.clone();
        let watch_shared = shared.clone();
        let watcher = tokio::spawn(async move {
            let status = loop {
                {
                    let mut c = watch_child.lock().await;
                    if let Ok(Some(status)) = c.try_wait() {
                        break status;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            watch_shared.alive.store(false, Ordering::SeqCst);
            let init = watch_shared
                .init_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let why = match init {
                Some(body) => format!("init failed ({status}): {body}"),
                None => format!("process exited ({status})"),
            };
            watch_shared.fail_all(&why);
            // Fail anything queued but never picked up (a parked `/next` holds the lock only
            // while the dead process's connection is being torn down; then the timeout covers it).
            if let Ok(mut next) = watch_shared.next.try_lock() {
                while let Ok(inv) = next.try_recv() {
                    let _ = inv.reply.send(Outcome::Crashed(why.clone()));
                }
            }
        });

        Ok(Instance {
            shared,
            events,
            child,
            pid,
            started: Instant::now(),
            timeout: spec.timeout,
            tasks: vec![server, watcher],
        })
    }

    pub fn is_alive(&self) -> bool {
        self.shared.alive.load(Ordering::SeqCst)
    }

    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Runs one invocation to completion (or timeout).
    pub async fn invoke(&self, event: Bytes) -> Outcome {
        if !self.is_alive() {
            return Outcome::Crashed("instance is not running".into());
        }
        let (reply, answer) = oneshot::channel();
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let inv = Invocation {
            request_id: uuid::Uuid::new_v4().to_string(),
            event,
            deadline_ms: now_ms + self.timeout.as_millis() as u64,
            reply,
        };
        if self.events.send(inv).await.is_err() {
            return Outcome::Crashed("instance stopped".into());
        }
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Outcome::Crashed("instance dropped the invocation".into()),
            Err(_) => {
                self.stop().await;
                Outcome::TimedOut
            }
        }
    }

    /// Peak resident memory of the process so far (`VmHWM`, KiB), while it runs.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    pub async fn stop(&self) {
        self.shared.alive.store(false, Ordering::SeqCst);
        let mut child = self.child.lock().await;
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Ok(mut child) = self.child.try_lock() {
            let _ = child.start_kill();
        }
    }
}

/// Instances of one function: reuses idle ones, starts more up to `max_instances`.
pub struct FunctionPool {
    pub spec: LaunchSpec,
    idle: Mutex<Vec<Instance>>,
    permits: tokio::sync::Semaphore,
}

impl FunctionPool {
    pub fn new(spec: LaunchSpec, max_instances: usize) -> Self {
        FunctionPool {
            spec,
            idle: Mutex::new(Vec::new()),
            permits: tokio::sync::Semaphore::new(max_instances.max(1)),
        }
    }

    pub async fn invoke(&self, event: Bytes) -> Outcome {
        let Ok(_permit) = self.permits.acquire().await else {
            return Outcome::Crashed("pool closed".into());
        };
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.retain(Instance::is_alive);
            idle.pop()
        };
        let instance = match reused {
            Some(i) => i,
            None => match Instance::launch(&self.spec).await {
                Ok(i) => i,
                Err(e) => {
                    return Outcome::Crashed(format!(
                        "cannot start {}: {e}",
                        self.spec.binary.display()
                    ))
                }
            },
        };
        let outcome = instance.invoke(event).await;
        if instance.is_alive() {
            self.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(instance);
        }
        outcome
    }

    /// Stops every idle instance (busy ones stop when dropped).
    pub async fn shutdown(&self) {
        let all: Vec<Instance> =
            std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        for i in all {
            i.stop().await;
        }
    }
}
