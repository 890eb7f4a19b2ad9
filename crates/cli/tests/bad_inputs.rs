//! The bad-input corpus (`tests/bad_inputs/cases.jsonl`, written by `make_cases.py` there):
//! recipes, datasets, checkpoints and command lines a new user — or an attacker — might give.
//! Every case runs the real binary in a fresh directory and must end with its exit status and
//! an error naming what was wrong (its substring). The test fails, listing every offender, on
//! a panic or abort (exit 101 / 134), a hang (60 s), a silent accept (exit 0 where an error
//! was due), or a vague message (the substring missing). Cases with `http` are raw requests to
//! one `didact serve` (the fixture Llama): each must get its HTTP status and a body with the
//! substring, and the server must still be alive after every one.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_didact");
const TIMEOUT: Duration = Duration::from_secs(60);

fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_inputs")
}

fn fill(s: &str, dir: &Path) -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    s.replace("{dir}", &dir.display().to_string())
        .replace("{shared}", &repo.join("../shared").display().to_string())
        .replace("{repo}", &repo.display().to_string())
}

/// Lay out a case's files and copies (optionally truncated) in `dir`.
fn prepare(case: &Value, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, text) in case["files"].as_object().unwrap() {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, fill(text.as_str().unwrap(), dir)).unwrap();
    }
    for c in case["copies"].as_array().unwrap() {
        let from = PathBuf::from(fill(c["from"].as_str().unwrap(), dir));
        let to = dir.join(c["to"].as_str().unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        let mut bytes = std::fs::read(&from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        if let Some(n) = c["truncate"].as_u64() {
            bytes.truncate(n as usize);
        }
        std::fs::write(&to, bytes).unwrap();
    }
}

/// Run one case; `Err` says what was wrong with the outcome.
fn run(case: &Value, dir: &Path) -> Result<(), String> {
    prepare(case, dir);
    let args: Vec<String> = case["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| fill(a.as_str().unwrap(), dir))
        .collect();
    let mut child = Command::new(BIN)
        .args(&args)
        .current_dir(dir)
        .env_remove("DIDACT_CORPUS_UNSET_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if t0.elapsed() > TIMEOUT {
            let _ = child.kill();
            return Err(format!("hang: no exit within {TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let err =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    let code = status.code();
    if matches!(code, Some(101) | Some(134)) || code.is_none() {
        return Err(format!(
            "panic or abort ({status}): {}",
            err.lines().rev().take(3).collect::<Vec<_>>().join(" | ")
        ));
    }
    let want = case["exit"].as_i64().unwrap() as i32;
    if code == Some(0) && want != 0 {
        return Err("silent accept: exit 0".into());
    }
    if code != Some(want) {
        return Err(format!("exit {code:?}, expected {want}: {}", err.trim()));
    }
    let needle = fill(case["contains"].as_str().unwrap(), dir);
    if !err.contains(&needle) {
        return Err(format!(
            "vague: the message lacks {needle:?}: {}",
            err.trim()
        ));
    }
    Ok(())
}

fn corpus() -> Vec<Value> {
    let text = std::fs::read_to_string(here().join("cases.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Kill the server when the test ends, however it ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Send one raw request; `Err` says what was wrong with the answer.
fn ask(addr: &str, case: &Value) -> Result<(), String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    // A server may answer (413) before the whole body is sent: a failed write is fine.
    let _ = s.write_all(case["http"].as_str().unwrap().as_bytes());
    let mut reply = Vec::new();
    if let Err(e) = s.read_to_end(&mut reply)
        && reply.is_empty()
    {
        return Err(format!("hang or no answer: {e}"));
    }
    let reply = String::from_utf8_lossy(&reply);
    let status: u16 = reply
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status line: {reply:?}"))?;
    let want = case["status"].as_u64().unwrap() as u16;
    if status == 200 {
        return Err("silent accept: 200".into());
    }
    if status != want {
        return Err(format!("status {status}, expected {want}: {reply}"));
    }
    let needle = case["contains"].as_str().unwrap();
    if !reply.contains(needle) {
        return Err(format!("vague: the answer lacks {needle:?}: {reply}"));
    }
    Ok(())
}

#[test]
fn every_bad_request_to_serve_gets_its_status_and_message() {
    use std::io::BufRead;
    let cases: Vec<Value> = corpus()
        .into_iter()
        .filter(|c| c.get("http").is_some())
        .collect();
    assert!(cases.len() >= 30, "{} HTTP cases", cases.len());
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/llama");
    let mut server = Server(
        Command::new(BIN)
            .args(["serve", "--model", fixture.to_str().unwrap(), "--port", "0"])
            .args(["--max-body-bytes", "100000", "--read-timeout-secs", "2"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufReader::new(server.0.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .rsplit("http://")
        .next()
        .unwrap()
        .trim_end_matches("/v1")
        .to_string();
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        if let Err(why) = ask(&addr, case) {
            failures.push(format!("{name}: {why}"));
        }
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("the server died ({status}) on {name}; before: {failures:?}");
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} HTTP cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_bad_input_fails_cleanly_with_a_message_that_names_it() {
    let cases: Vec<Value> = corpus()
        .into_iter()
        .filter(|c| c.get("http").is_none())
        .collect();
    assert!(cases.len() >= 200, "the corpus holds {} cases", cases.len());
    let root = std::env::temp_dir().join(format!("didact-bad-inputs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    // Two at a time: the cases are independent processes.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(case) = cases.get(i) else { break };
                    let name = case["name"].as_str().unwrap();
                    if let Err(why) = run(case, &root.join(format!("c{i}"))) {
                        failures.lock().unwrap().push(format!("{name}: {why}"));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    let _ = std::fs::remove_dir_all(&root);
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
