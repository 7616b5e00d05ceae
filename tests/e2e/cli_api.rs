//! `tokenkeep api`: a script calls a connection's API through the built CLI without ever holding its token. The
//! peer's resource server (`tests/js/peer.mjs`, `/api/*`) checks every bearer token with the peer itself and
//! records what each request carried, so the tests see where the token went — and where it did not.

use std::process::Output;

use anyhow::{Result, ensure};
use serde_json::Value;
use tokenkeep_e2e::cli::Tokenkeep;
use tokenkeep_e2e::peer::{OidcPeer, PeerConfig};
use tokenkeep_e2e::seed::{Daemon, Seeded, add_demo, now_secs, seed_connections};

/// A headless installation with the demo provider and one seeded connection (alice) whose access token expires
/// at `expires_at`.
fn installation(test: &str, expires_at: u64) -> Result<(OidcPeer, Tokenkeep, Seeded)> {
    let peer = OidcPeer::start(&PeerConfig::default())?;
    let tk = Tokenkeep::headless(test)?;
    add_demo(&tk, &peer)?;
    let mut seeded = seed_connections(&tk, &peer, &["alice".into()], expires_at)?;
    Ok((peer, tk, seeded.remove(0)))
}

/// Runs `tokenkeep ARGS` and returns its raw output (the body may be any bytes).
fn raw(tk: &Tokenkeep, args: &[&str]) -> Result<Output> {
    Ok(tk.command(args).stdin(std::process::Stdio::null()).output()?)
}

/// No token the peer ever issued for `account` is in `texts` (the CLI's output, its log).
fn ensure_no_token_in(peer: &OidcPeer, account: &str, texts: &[(&str, &str)]) -> Result<()> {
    let issued = peer.issued_tokens_of(account)?;
    ensure!(!issued.is_empty(), "the peer issued no token to look for");
    for token in &issued {
        for (what, text) in texts {
            ensure!(!text.contains(&token.value), "a {} appears in {what}", token.kind);
        }
    }
    Ok(())
}

/// An expired access token is refreshed before the call, the call carries the new one (the resource server
/// checked it with the peer), fields go into a GET's query, and no token reaches the output or the log.
#[test]
fn cli_api_refreshes_an_expired_token_first_and_never_shows_it() -> Result<()> {
    let (peer, tk, _) = installation("api-expired", now_secs() - 60)?;
    let before = peer.stats()?.token_requests;
    let out = tk.ok(
        &["api", "demo:alice", "api/echo", "-X", "GET", "-f", "q=a b", "-F", "n=2"],
        None,
    )?;
    let echo: Value = serde_json::from_str(&out.stdout)?;
    ensure!(echo["account"] == "alice", "the API saw another account: {echo}");
    ensure!(
        echo["method"] == "GET" && echo["query"]["q"] == "a b" && echo["query"]["n"] == "2",
        "{echo}"
    );
    ensure!(
        peer.stats()?.token_requests == before + 1,
        "the expired token was not refreshed exactly once before the call"
    );
    let requests = peer.api_requests()?;
    ensure!(
        requests.len() == 1 && requests[0].authorization == "bearer-valid",
        "the resource server saw {requests:?}"
    );

    // A JSON body from fields, with a header of the caller's.
    let out = tk.ok(
        &[
            "api",
            "demo:alice",
            "/api/echo",
            "-X",
            "PUT",
            "-H",
            "X-Trace: 7",
            "-f",
            "title=Hello",
            "-F",
            "draft=true",
        ],
        None,
    )?;
    let echo: Value = serde_json::from_str(&out.stdout)?;
    ensure!(echo["method"] == "PUT" && echo["headers"]["x-trace"] == "7", "{echo}");
    let body: Value = serde_json::from_str(echo["body"].as_str().unwrap_or_default())?;
    ensure!(
        body == serde_json::json!({"title": "Hello", "draft": true}),
        "the body arrived as {body}"
    );

    let log = std::fs::read_to_string(tk.log_file())?;
    ensure!(log.contains("API call"), "the log has no line for the call:\n{log}");
    ensure!(
        !log.contains("a b") && !log.contains("Hello"),
        "a query or body value reached the log:\n{log}"
    );
    ensure_no_token_in(
        &peer,
        "alice",
        &[("stdout", &out.stdout), ("stderr", &out.stderr), ("the log", &log)],
    )
}

/// A `401 invalid_token` gets one refresh and one retry; a second one ends with status 1 after the body, and the
/// connection is not refreshed again.
#[test]
fn cli_api_retries_once_after_invalid_token() -> Result<()> {
    let (peer, tk, _) = installation("api-401", now_secs() + 3600)?;
    peer.refuse_api_requests(1)?;
    let before = peer.stats()?.token_requests;
    let out = tk.ok(&["api", "demo:alice", "api/echo"], None)?;
    ensure!(
        serde_json::from_str::<Value>(&out.stdout)?["account"] == "alice",
        "{}",
        out.stdout
    );
    ensure!(
        peer.stats()?.token_requests == before + 1,
        "one refusal did not cost exactly one refresh"
    );

    peer.refuse_api_requests(2)?;
    let out = tk.run(&["api", "demo:alice", "api/echo", "-i"], None)?;
    out.ensure_code(1)?;
    ensure!(out.stdout.starts_with("HTTP 401 Unauthorized\r\n"), "{}", out.stdout);
    ensure!(
        out.stdout.contains("invalid_token"),
        "the body was not printed: {}",
        out.stdout
    );
    ensure!(out.stderr.contains("HTTP 401"), "{}", out.stderr);
    ensure!(
        peer.stats()?.token_requests == before + 2,
        "a second refusal refreshed more than once"
    );
    let requests = peer.api_requests()?;
    ensure!(
        requests.len() == 4,
        "expected 2 + 2 requests, the server saw {requests:?}"
    );
    Ok(())
}

/// The token goes to the provider's API hosts only: another host is refused before anything is sent (the refusal
/// names the allowed hosts), and a redirect to another host is followed without it.
#[test]
fn cli_api_sends_the_token_to_its_hosts_only() -> Result<()> {
    let (peer, tk, _) = installation("api-hosts", now_secs() + 3600)?;
    let out = tk.run(&["api", "demo:alice", "https://example.com/steal"], None)?;
    out.ensure_code(1)?;
    ensure!(
        out.stderr.contains("not for example.com") && out.stderr.contains("127.0.0.1"),
        "the refusal does not say where tokens go: {}",
        out.stderr
    );
    let out = tk.run(
        &[
            "api",
            "demo:alice",
            &format!("http://localhost:{}/api/echo", peer.port()),
        ],
        None,
    )?;
    out.ensure_code(1)?;
    ensure!(peer.api_requests()?.is_empty(), "a refused call reached the server");

    // A server that is not there, and a body file that cannot be read, are said plainly.
    let out = tk.run(&["api", "demo:alice", "http://127.0.0.1:1/api/echo"], None)?;
    out.ensure_code(1)?;
    ensure!(out.stderr.contains("could not reach 127.0.0.1:1"), "{}", out.stderr);
    let out = tk.run(
        &["api", "demo:alice", "api/echo", "--input", "/nonexistent/body.json"],
        None,
    )?;
    out.ensure_code(1)?;
    ensure!(
        out.stderr
            .contains("cannot read the request body from /nonexistent/body.json"),
        "{}",
        out.stderr
    );

    // An absolute URL on an allowed host works like a path.
    tk.ok(&["api", "demo:alice", &format!("{}/api/echo", peer.issuer())], None)?;

    // A redirect from the API to another host: followed, without the token, so that host answers 401.
    let elsewhere = format!("http://localhost:{}/api/echo", peer.port());
    let out = tk.run(&["api", "demo:alice", &format!("api/redirect?to={elsewhere}")], None)?;
    out.ensure_code(1)?;
    let requests = peer.api_requests()?;
    let last = &requests[requests.len() - 2..];
    ensure!(
        last[0].path == "/api/redirect" && last[0].authorization == "bearer-valid",
        "{requests:?}"
    );
    ensure!(
        last[1].host == format!("localhost:{}", peer.port()) && last[1].authorization == "none",
        "the other host received {:?}",
        last[1]
    );
    let log = std::fs::read_to_string(tk.log_file())?;
    ensure_no_token_in(&peer, "alice", &[("stderr", &out.stderr), ("the log", &log)])
}

/// While the daemon holds the store, the call is made by the daemon and prints the very same bytes — here a
/// 10 MiB body that is not UTF-8 (40 times an OAuth answer's bound); the CLI's own log never holds the token. A
/// reader that goes away (`| head`) ends the call quietly, both ways.
#[test]
fn cli_api_through_the_socket_prints_the_same_bytes() -> Result<()> {
    let (peer, tk, _) = installation("api-socket", now_secs() + 3600)?;
    let args = ["api", "demo:alice", "api/bytes?n=10485760"];
    let direct = raw(&tk, &args)?;
    ensure!(direct.status.success(), "{}", String::from_utf8_lossy(&direct.stderr));
    let expected: Vec<u8> = (0..10_485_760).map(|i| (i % 256) as u8).collect();
    ensure!(
        direct.stdout == expected,
        "the body came out altered ({} bytes)",
        direct.stdout.len()
    );

    let (status, stderr) = tk.run_into_closed_pipe(&args)?;
    ensure!(
        status.success() && stderr.is_empty(),
        "into a closed pipe: {status}, {stderr}"
    );

    let daemon = Daemon::start(&tk, &[])?;
    let through = raw(&tk, &args)?;
    let (status, stderr) = tk.run_into_closed_pipe(&args)?;
    ensure!(
        status.success() && stderr.is_empty(),
        "through the socket into a closed pipe: {status}, {stderr}"
    );
    let echo = raw(&tk, &["api", "demo:alice", "api/echo", "-X", "POST", "--input", "-"])?;
    daemon.stop()?;
    ensure!(through.status.success(), "{}", String::from_utf8_lossy(&through.stderr));
    ensure!(through.stdout == direct.stdout, "the socket path printed other bytes");
    ensure!(echo.status.success(), "{}", String::from_utf8_lossy(&echo.stderr));
    let log = std::fs::read_to_string(tk.log_file())?;
    ensure!(
        log.contains("using its CLI socket"),
        "the call did not go through the socket:\n{log}"
    );
    ensure_no_token_in(
        &peer,
        "alice",
        &[
            ("the CLI log", &log),
            ("the echo", &String::from_utf8_lossy(&echo.stdout)),
        ],
    )
}

/// `exec` starts the command with a fresh access token in its environment (refreshed first: this one had
/// expired), ends with the command's status, masks the token in its output when asked (and not by default into
/// a pipe), and keeps the headless master key out of the command's environment.
#[test]
fn cli_exec_gives_the_command_a_fresh_token_and_masks_it() -> Result<()> {
    let (peer, tk, seeded) = installation("exec", now_secs() - 60)?;
    let dir = tokenkeep_e2e::scratch_dir("exec-out")?;
    let (token_file, env_file) = (dir.join("token"), dir.join("env"));
    let script = format!(
        "printf '%s' \"$TK\" > '{}'; env > '{}'; echo \"seen $TK\"; echo \"err $TK\" >&2; exit 7",
        token_file.display(),
        env_file.display()
    );
    let out = tk.run(
        &["exec", "--env", "TK=demo:alice", "--mask", "--", "sh", "-c", &script],
        None,
    )?;
    out.ensure_code(7)?;
    let token = std::fs::read_to_string(&token_file)?;
    ensure!(
        token != seeded.grant.access_token,
        "the command got the expired token, not a fresh one"
    );
    ensure!(
        peer.is_active(&token)?,
        "the command's token is not accepted by the peer"
    );
    ensure!(out.stdout == "seen <tokenkeep:TK>\n", "stdout was {:?}", out.stdout);
    ensure!(out.stderr.contains("err <tokenkeep:TK>"), "stderr was {:?}", out.stderr);
    ensure!(out.stderr.contains("can do anything"), "no warning: {:?}", out.stderr);
    let env = std::fs::read_to_string(&env_file)?;
    ensure!(
        tk.master_key().is_some_and(|key| !env.contains(key)),
        "the master key reached the command"
    );
    ensure!(
        !env.contains("TOKENKEEP_MASTER_KEY"),
        "the master key's variable reached the command"
    );

    // Into a pipe the output is left alone unless asked; the status is still the command's.
    let out = tk.run(
        &["exec", "--env", "TK=demo:alice", "--", "sh", "-c", "echo \"$TK\""],
        None,
    )?;
    out.ensure_code(0)?;
    ensure!(
        peer.is_active(out.stdout.trim())?,
        "unmasked output is not the token: {:?}",
        out.stdout
    );

    // A command that cannot start, and a connection that does not exist, are said plainly.
    let out = tk.run(&["exec", "--env", "TK=demo:alice", "--", "/nonexistent/cmd"], None)?;
    ensure!(
        !out.status.success() && out.stderr.contains("cannot start /nonexistent/cmd"),
        "{}",
        out.stderr
    );
    let out = tk.run(&["exec", "--env", "TK=demo:nobody", "--", "true"], None)?;
    ensure!(!out.status.success() && out.stderr.contains("nobody"), "{}", out.stderr);

    let log = std::fs::read_to_string(tk.log_file())?;
    ensure_no_token_in(&peer, "alice", &[("the log", &log)])
}

/// `--paginate` follows the cursor the demo preset declares to the last page, one JSON document per line.
#[test]
fn cli_api_paginate_follows_the_declared_cursor_to_the_end() -> Result<()> {
    let (peer, tk, _) = installation("api-pages", now_secs() + 3600)?;
    let out = tk.ok(&["api", "demo:alice", "api/page?pages=3", "--paginate"], None)?;
    let pages: Vec<Value> = out.stdout.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    let numbers: Vec<_> = pages.iter().map(|p| p["page"].as_u64()).collect();
    ensure!(numbers == [Some(0), Some(1), Some(2)], "pages came as {}", out.stdout);
    ensure!(peer.api_requests()?.len() == 3, "not one request per page");
    // Without --paginate, only the first page.
    let out = tk.ok(&["api", "demo:alice", "api/page?pages=3"], None)?;
    ensure!(out.stdout.lines().count() == 1, "{}", out.stdout);
    Ok(())
}
