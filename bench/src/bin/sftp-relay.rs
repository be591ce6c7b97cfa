//! sftp-relay: runs a server command and forwards its stdin and stdout with a fixed one-way
//! delay per chunk, in place of a network with latency (these machines have no netem).
//!
//! `sftp-relay DELAY_MS SERVER [ARGS...]`, or `sftp-relay DELAY_MS --tcp HOST:PORT` to relay a
//! TCP connection instead (as ssh's ProxyCommand, so the delay sits inside ssh, under its
//! channel window, as a network's would). Each direction has a reader thread that stamps every
//! chunk with the time it may leave and a writer thread that holds it until then, so the delay
//! is added once per direction, chunks stay in order, and there is no bandwidth cap. Used by
//! puffs-bench's sftpfs suite as the ssh command of both sftpfs and sshfs.

use std::io::{Read, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Largest chunk read at once: bigger than an SFTP packet of 256 KiB so one is rarely split.
const CHUNK: usize = 512 * 1024;

/// Copies `from` to `to`, each chunk leaving `delay` after it arrived; returns at EOF or error.
fn forward(mut from: impl Read + Send + 'static, mut to: impl Write, delay: Duration) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let reader = thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
    for (due, bytes) in rx {
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
        if to.write_all(&bytes).and_then(|()| to.flush()).is_err() {
            break;
        }
    }
    // Closing `to` (dropped here) passes the EOF on; the reader ends at its own EOF.
    drop(to);
    let _ = reader.join();
}

/// Relays our stdin and stdout to a TCP connection to `addr`, with `delay` each way.
fn relay_tcp(addr: &str, delay: Duration) -> ExitCode {
    let stream = match std::net::TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sftp-relay: cannot connect to {addr:?}: {e}");
            return ExitCode::from(1);
        }
    };
    let _ = stream.set_nodelay(true);
    let Ok(down) = stream.try_clone() else {
        return ExitCode::from(1);
    };
    let upstream = thread::spawn(move || forward(std::io::stdin(), stream, delay));
    forward(down, std::io::stdout(), delay);
    drop(upstream);
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(ms), Some(server)) = (args.first(), args.get(1)) else {
        eprintln!("usage: sftp-relay DELAY_MS SERVER [ARGS...]");
        return ExitCode::from(2);
    };
    let Ok(ms) = ms.parse::<u64>() else {
        eprintln!("sftp-relay: DELAY_MS must be a whole number of milliseconds, got {ms:?}");
        return ExitCode::from(2);
    };
    let delay = Duration::from_millis(ms);
    if server == "--tcp" {
        return relay_tcp(args.get(2).map_or("", String::as_str), delay);
    }
    let mut child = match Command::new(server)
        .args(&args[2..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sftp-relay: cannot run {server}: {e}");
            return ExitCode::from(1);
        }
    };
    let (Some(server_in), Some(server_out)) = (child.stdin.take(), child.stdout.take()) else {
        eprintln!("sftp-relay: no pipes to the server");
        return ExitCode::from(1);
    };
    let upstream = thread::spawn(move || forward(std::io::stdin(), server_in, delay));
    forward(server_out, std::io::stdout(), delay);
    // The server closed its stdout: it is exiting. Our stdin may stay open (the client is still
    // there), so the upstream thread is not waited for.
    drop(upstream);
    match child.wait() {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    }
}
