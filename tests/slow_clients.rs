//! Clients that are slow on purpose: a head or a body trickled byte by byte, a body
//! that stalls, a response never read, connections held open at the cap. Each is cut
//! off within its limit (limits.rs), with RequestTimeout where a request can still be
//! answered, and the daemon keeps serving everyone else meanwhile.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::{read_response, Daemon};

fn status_of(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Writes `bytes` one at a time, `gap` apart, until done or the server hangs up.
fn trickle(mut stream: TcpStream, bytes: Vec<u8>, gap: Duration) -> thread::JoinHandle<usize> {
    thread::spawn(move || {
        let mut sent = 0;
        for byte in bytes {
            if stream.write_all(&[byte]).is_err() {
                break;
            }
            sent += 1;
            thread::sleep(gap);
        }
        sent
    })
}

/// Whether the server has closed the connection (EOF within `wait`).
fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(_) => return false,
        }
    }
}

#[test]
fn a_trickled_head_is_cut_at_its_deadline_while_others_are_served() {
    let daemon = Daemon::start();
    let slow = daemon.connect();
    let mut head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 200));
    let started = Instant::now();
    let writer = trickle(slow.try_clone().unwrap(), head, Duration::from_millis(200));
    // Others are served while the trickle goes on.
    daemon.assert_alive();
    let mut slow = slow;
    let response = read_response(&mut slow, false);
    let elapsed = started.elapsed();
    assert_eq!(status_of(&response), 400, "{response}");
    assert!(
        response.contains("<Code>RequestTimeout</Code>"),
        "{response}"
    );
    assert!(
        elapsed >= Duration::from_secs(9) && elapsed < Duration::from_secs(20),
        "cut after {elapsed:?}"
    );
    assert!(closed_within(&mut slow, Duration::from_secs(5)));
    assert!(writer.join().unwrap() < 200, "the trickle was cut short");
    daemon.assert_alive();
}

#[test]
fn a_trickled_body_is_cut_below_the_minimum_rate_and_stores_nothing() {
    let daemon = Daemon::start();
    daemon.exchange(daemon.signed_head("PUT", "/trickle", &[]).as_bytes());
    let mut stream = daemon.connect();
    let head = daemon.signed_head("PUT", "/trickle/k", &[("content-length", "100000")]);
    stream.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    // 5 bytes a second: far below 1 KiB/s.
    let writer = trickle(
        stream.try_clone().unwrap(),
        vec![b'x'; 1000],
        Duration::from_millis(200),
    );
    let response = read_response(&mut stream, false);
    let elapsed = started.elapsed();
    assert_eq!(status_of(&response), 400, "{response}");
    assert!(
        response.contains("<Code>RequestTimeout</Code>"),
        "{response}"
    );
    assert!(elapsed < Duration::from_secs(30), "cut after {elapsed:?}");
    assert!(closed_within(&mut stream, Duration::from_secs(5)));
    writer.join().unwrap();
    let get = daemon.exchange(daemon.signed_head("GET", "/trickle/k", &[]).as_bytes());
    assert_eq!(status_of(&get), 404, "{get}");
}

#[test]
fn a_stalled_body_is_answered_within_its_window_and_closed_without_a_second_wait() {
    let daemon = Daemon::start();
    daemon.exchange(daemon.signed_head("PUT", "/stall", &[]).as_bytes());
    let mut stream = daemon.connect();
    let head = daemon.signed_head("PUT", "/stall/k", &[("content-length", "1000")]);
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&[b'x'; 10]).unwrap();
    let stalled = Instant::now();
    let response = read_response(&mut stream, false);
    let answered = stalled.elapsed();
    assert!(
        response.contains("<Code>RequestTimeout</Code>"),
        "{response}"
    );
    assert!(
        answered < Duration::from_secs(25),
        "answered after {answered:?}"
    );
    // The connection closes at once: no second wait to drain a body that never comes.
    assert!(closed_within(&mut stream, Duration::from_secs(5)));
}

#[test]
fn a_client_that_stops_reading_is_cut_off() {
    let daemon = Daemon::start();
    daemon.exchange(daemon.signed_head("PUT", "/unread", &[]).as_bytes());
    let size = 64 * 1024 * 1024;
    let mut put = daemon.connect();
    let head = daemon.signed_head(
        "PUT",
        "/unread/big",
        &[("content-length", &size.to_string())],
    );
    put.write_all(head.as_bytes()).unwrap();
    put.write_all(&vec![7u8; size]).unwrap();
    assert_eq!(status_of(&read_response(&mut put, false)), 200);
    let mut get = daemon.connect();
    get.write_all(daemon.signed_head("GET", "/unread/big", &[]).as_bytes())
        .unwrap();
    // Never read: the socket buffers fill, the server's writes stop making progress.
    let started = Instant::now();
    thread::sleep(Duration::from_secs(25));
    // What was sent before the cut, then the end: far less than the object.
    get.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    let ended = loop {
        match get.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => received += n,
            Err(_) => break false,
        }
    };
    assert!(
        ended,
        "the connection was still open after {:?}",
        started.elapsed()
    );
    assert!(received < size, "all {received} bytes arrived");
    daemon.assert_alive();
}

#[test]
fn at_the_cap_idle_connections_make_room_and_busy_ones_do_not() {
    let daemon = Daemon::start_with(&["--max-connections", "4"]);
    let mut idle: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut stream = daemon.connect();
            stream
                .write_all(daemon.signed_head("GET", "/", &[]).as_bytes())
                .unwrap();
            assert_eq!(status_of(&read_response(&mut stream, false)), 200);
            stream
        })
        .collect();
    // A fifth client is served: the cap (across both cores) closes an idle one for it.
    let fresh = daemon.exchange(daemon.signed_head("GET", "/", &[]).as_bytes());
    assert_eq!(status_of(&fresh), 200, "{fresh}");
    let mut reaped = 0;
    for stream in &mut idle {
        if closed_within(stream, Duration::from_secs(2)) {
            reaped += 1;
        }
    }
    assert!(reaped >= 1, "no idle connection was closed");
    drop(idle);

    // Four connections in the middle of a request are not idle: a fifth is refused.
    let daemon = Daemon::start_with(&["--max-connections", "4"]);
    daemon.exchange(daemon.signed_head("PUT", "/busy", &[]).as_bytes());
    let busy: Vec<TcpStream> = (0..4)
        .map(|i| {
            let mut stream = daemon.connect();
            let head = daemon.signed_head(
                "PUT",
                &format!("/busy/{i}"),
                &[("content-length", "1000000")],
            );
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(&[b'x'; 1000]).unwrap();
            stream
        })
        .collect();
    // Give the daemon a moment to have taken all four (they announce nothing).
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let answer = daemon.exchange(daemon.signed_head("GET", "/", &[]).as_bytes());
        if status_of(&answer) == 503 {
            break answer;
        }
        assert!(Instant::now() < deadline, "never refused: {answer}");
    };
    assert!(refused.contains("<Code>SlowDown</Code>"), "{refused}");
    drop(busy);
}
