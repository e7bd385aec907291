//! Malformed and unusual HTTP on raw sockets: each case gets a clear answer,
//! and the daemon keeps serving the next connection.

mod common;

use std::io::Write;

use common::{read_response, Daemon};

fn status_of(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn garbage_request_line() {
    let daemon = Daemon::start();
    let response = daemon.exchange(b"\x16\x03\x01 hello there\r\n\r\n");
    assert_eq!(status_of(&response), 400, "{response}");
    assert!(response.contains("<Code>BadRequest</Code>"));
    daemon.assert_alive();
}

#[test]
fn huge_and_numerous_headers() {
    let daemon = Daemon::start();
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200_000)
    );
    assert_eq!(status_of(&daemon.exchange(big.as_bytes())), 431);
    let many: String = (0..500).map(|i| format!("X-H{i}: v\r\n")).collect();
    let request = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    assert_eq!(status_of(&daemon.exchange(request.as_bytes())), 431);
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "u".repeat(20_000));
    assert_eq!(status_of(&daemon.exchange(long_uri.as_bytes())), 414);
    daemon.assert_alive();
}

#[test]
fn bad_content_lengths() {
    let daemon = Daemon::start();
    for value in ["-1", "abc", "1e3", "99999999999999999999999", "+5"] {
        let request = format!("PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: {value}\r\n\r\n");
        let response = daemon.exchange(request.as_bytes());
        assert_eq!(
            status_of(&response),
            400,
            "Content-Length {value}: {response}"
        );
    }
    let both =
        "PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(status_of(&daemon.exchange(both.as_bytes())), 400);
    daemon.assert_alive();
}

#[test]
fn short_body_stores_nothing() {
    let daemon = Daemon::start();
    daemon.exchange(daemon.signed_head("PUT", "/short", &[]).as_bytes());
    let head = daemon.signed_head("PUT", "/short/k", &[("content-length", "1000")]);
    let mut stream = daemon.connect();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&[b'x'; 400]).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let response = read_response(&mut stream, false);
    assert!(
        response.is_empty() || status_of(&response) == 400,
        "{response}"
    );
    let get = daemon.exchange(daemon.signed_head("GET", "/short/k", &[]).as_bytes());
    assert_eq!(status_of(&get), 404, "{get}");
    // Temp files live in one directory per run under tmp/.
    let tmp: usize = std::fs::read_dir(daemon.data_dir.join("tmp"))
        .unwrap()
        .map(|run| std::fs::read_dir(run.unwrap().path()).unwrap().count())
        .sum();
    if tmp != 0 {
        for run in std::fs::read_dir(daemon.data_dir.join("tmp")).unwrap() {
            for file in std::fs::read_dir(run.unwrap().path()).unwrap() {
                eprintln!("left: {:?}", file.unwrap().path());
            }
        }
    }
    assert_eq!(tmp, 0, "temp file left behind");
    daemon.assert_alive();
}

#[test]
fn pipelined_requests_answer_in_order() {
    let daemon = Daemon::start();
    let create = daemon.signed_head("PUT", "/pipe", &[]);
    let put = daemon.signed_head("PUT", "/pipe/k", &[("content-length", "5")]);
    let get = daemon.signed_head("GET", "/pipe/k", &[]);
    let missing = daemon.signed_head("GET", "/pipe/missing", &[]);
    let all = format!("{create}{put}hello{get}{missing}");
    let response = daemon.exchange_all(all.as_bytes(), 4);
    let statuses: Vec<u16> = response
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| response[i + 9..i + 12].parse().unwrap())
        .collect();
    assert_eq!(statuses, [200, 200, 200, 404], "{response}");
    assert!(response.contains("\r\n\r\nhello"));
}

#[test]
fn expect_continue_only_after_checks() {
    let daemon = Daemon::start();
    // Anonymous, to a private bucket: the final 403 comes without a 100.
    daemon.exchange(daemon.signed_head("PUT", "/cont", &[]).as_bytes());
    let request =
        "PUT /cont/k HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
    let response = daemon.exchange(request.as_bytes());
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
    assert!(!response.contains("100 Continue"));
    // Authenticated to an existing bucket: 100, then the body, then 200.
    let head = daemon.signed_head(
        "PUT",
        "/cont/k",
        &[("content-length", "5"), ("expect", "100-continue")],
    );
    let mut stream = daemon.connect();
    stream.write_all(head.as_bytes()).unwrap();
    let interim = read_response(&mut stream, false);
    assert!(interim.starts_with("HTTP/1.1 100 Continue"), "{interim}");
    stream.write_all(b"hello").unwrap();
    let last = read_response(&mut stream, false);
    assert!(last.starts_with("HTTP/1.1 200"), "{last}");
}

#[test]
fn keep_alive_head_and_unknown_methods() {
    let daemon = Daemon::start();
    let mut stream = daemon.connect();
    for _ in 0..3 {
        stream
            .write_all(daemon.signed_head("GET", "/", &[]).as_bytes())
            .unwrap();
        let response = read_response(&mut stream, false);
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    daemon.exchange(daemon.signed_head("PUT", "/heads", &[]).as_bytes());
    let head = daemon.exchange(daemon.signed_head("HEAD", "/heads/none", &[]).as_bytes());
    assert!(
        head.starts_with("HTTP/1.1 404") && head.ends_with("\r\n\r\n"),
        "HEAD has no body: {head:?}"
    );
    let odd = daemon.exchange(daemon.signed_head("PATCH", "/heads/k", &[]).as_bytes());
    assert_eq!(status_of(&odd), 405, "{odd}");
    let close = daemon.exchange(
        daemon
            .signed_head("GET", "/", &[("connection", "close")])
            .as_bytes(),
    );
    assert!(close.contains("Connection: close"));
    daemon.assert_alive();
}

#[test]
fn second_daemon_on_the_same_port_is_refused() {
    let daemon = Daemon::start();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bleepstore"))
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &daemon.port.to_string(),
            "--log-level",
            "off",
        ])
        .arg("--data-dir")
        .arg(daemon.data_dir.join("second"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("already in use"));
    daemon.assert_alive();
}

#[test]
fn strict_framing_and_targets() {
    let daemon = Daemon::start();
    daemon.exchange(daemon.signed_head("PUT", "/strict", &[]).as_bytes());
    // Chunk sizes are hex digits only.
    for size in ["+5", " 5"] {
        let head = daemon.signed_head("PUT", "/strict/k", &[("transfer-encoding", "chunked")]);
        let request = format!("{head}{size}\r\nhello\r\n0\r\n\r\n");
        let response = daemon.exchange(request.as_bytes());
        assert_eq!(status_of(&response), 400, "chunk size {size:?}: {response}");
        assert!(response.contains("Invalid chunk size"), "{response}");
    }
    // A percent-escape is two hex digits; a NUL in a path is refused.
    for path in ["/strict/%+0", "/strict/a%00b", "/strict/%g1"] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", daemon.host());
        let response = daemon.exchange(request.as_bytes());
        assert_eq!(status_of(&response), 400, "{path}: {response}");
    }
    // Exactly one Host on HTTP/1.1.
    let none = daemon.exchange(b"GET /strict HTTP/1.1\r\n\r\n");
    assert_eq!(status_of(&none), 400, "{none}");
    let two = format!(
        "GET /strict HTTP/1.1\r\nHost: {}\r\nHost: evil\r\n\r\n",
        daemon.host()
    );
    assert_eq!(status_of(&daemon.exchange(two.as_bytes())), 400);
    // An absolute-form target is served when its host is the (signed) Host ...
    let signed = daemon.signed_head("GET", "/strict", &[]);
    let absolute = signed.replacen(
        "GET /strict ",
        &format!("GET http://{}/strict ", daemon.host()),
        1,
    );
    let response = daemon.exchange(absolute.as_bytes());
    assert_eq!(status_of(&response), 200, "{response}");
    // ... and refused when it names another.
    let other = signed.replacen("GET /strict ", "GET http://elsewhere:1/strict ", 1);
    assert_eq!(status_of(&daemon.exchange(other.as_bytes())), 400);
    daemon.assert_alive();
}
