//! The built `tokenkeep` CLI through the whole RFC 8252 connect flow: the real OAuth test peer, the real
//! headless-Chromium login driver as the system browser, a headless vault (one test: the real gnome-keyring).
//!
//! Each test has its own peer, its own Tokenkeep home and its own ports, so they run in parallel. What the CLI
//! stored is checked from outside: `list --json`, the peer's introspection of the stored token (read from the
//! vault in-test, after the CLI has exited), and the bytes on disk and in the logs.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, ensure};
use serde_json::Value;
use tokenkeep_core::store::ConnectionId;
use tokenkeep_e2e::cli::{CliOutput, CliProcess, Tokenkeep};
use tokenkeep_e2e::peer::{
    BASIC_CLIENT_ID, BASIC_CLIENT_SECRET, LoginOptions, OidcPeer, POST_CLIENT_ID, POST_CLIENT_SECRET, PUBLIC_CLIENT_ID,
    PeerConfig, run_login_driver,
};
use tokenkeep_e2e::{HeadlessSession, scratch_dir};
use url::Url;

/// The account of the login name `alice`. The peer (oidc-provider, `conformIdTokenClaims`) puts the scope claims
/// (`email`, `preferred_username`) in userinfo only, so Tokenkeep completes the id_token's `sub` from userinfo.
const ALICE: &str = "alice@example.test";
/// The account of the login name `bob`.
const BOB: &str = "bob@example.test";
/// The scopes the demo provider asks for; the peer may leave out `offline_access` in its answer.
const DEMO_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access", "videos.read"];
/// Long enough for one Chromium sign-in on a busy two-core machine.
const URL_LIMIT: Duration = Duration::from_secs(20);

/// Timings go to the captured test output (`--no-capture` shows them).
#[expect(clippy::print_stderr, reason = "timings are reported to whoever runs the test")]
fn note(test: &str, started: Instant, message: &str) {
    eprintln!("cli_connect::{test}: +{:.1?} {message}", started.elapsed());
}

fn start_peer() -> Result<OidcPeer> {
    OidcPeer::start(&PeerConfig::default())
}

/// Configures the demo provider on `peer`.
fn add_demo(tk: &Tokenkeep, peer: &OidcPeer) -> Result<()> {
    let added = tk.ok(&["providers", "add", "demo", "--issuer", peer.issuer()], None)?;
    ensure!(
        added.stdout.contains("tokenkeep connect demo"),
        "`providers add demo` printed {:?}",
        added.stdout
    );
    Ok(())
}

/// Waits for the sign-in URL that `connect --no-browser` prints on stderr (an indented line of its own).
fn sign_in_url(process: &mut CliProcess, peer: &OidcPeer) -> Result<Url> {
    let prefix = format!("{}/auth?", peer.issuer());
    let line = process.wait_for_stderr_line(URL_LIMIT, |line| line.trim().starts_with(&prefix))?;
    Ok(Url::parse(line.trim())?)
}

/// The single value of query parameter `name` in `url`.
fn param(url: &Url, name: &str) -> Result<String> {
    let mut values = url
        .query_pairs()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned());
    let value = values.next().ok_or_else(|| anyhow!("the sign-in URL has no {name}"))?;
    ensure!(values.next().is_none(), "the sign-in URL has {name} twice");
    Ok(value)
}

/// The loopback port of the sign-in URL's `redirect_uri`, after checking it is `http://127.0.0.1:PORT/callback`.
fn redirect_port(url: &Url) -> Result<u16> {
    let redirect = Url::parse(&param(url, "redirect_uri")?)?;
    ensure!(
        redirect.scheme() == "http" && redirect.host_str() == Some("127.0.0.1") && redirect.path() == "/callback",
        "unexpected redirect_uri {redirect}"
    );
    redirect
        .port()
        .ok_or_else(|| anyhow!("the redirect_uri {redirect} has no port"))
}

/// Checks that stdout is exactly `"{verb} {provider} as {account} (connection <32 hex>).\n"` — `provider` is the
/// display name, or `None` for any — and returns the connection id.
fn connected_id(output: &CliOutput, verb: &str, provider: Option<&str>, account: &str) -> Result<String> {
    output.ensure_code(0)?;
    let bad = || anyhow!("`tokenkeep {}` printed {:?}", output.args, output.stdout);
    let line = output.stdout.strip_suffix('\n').ok_or_else(bad)?;
    ensure!(!line.contains('\n'), bad());
    let rest = line.strip_prefix(&format!("{verb} ")).ok_or_else(bad)?;
    let tail = format!(" as {account} (connection ");
    let (name, id) = rest.split_once(&tail).ok_or_else(bad)?;
    ensure!(provider.is_none_or(|p| p == name) && !name.is_empty(), bad());
    let id = id.strip_suffix(").").ok_or_else(bad)?;
    ensure!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        bad()
    );
    Ok(id.to_owned())
}

fn connection_id(hex: &str) -> Result<ConnectionId> {
    hex.parse().map_err(|_| anyhow!("{hex} is not a connection id"))
}

/// Every file below `dir`, with its bytes.
fn files_below(dir: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
                out.push((path, bytes));
            }
        }
    }
    Ok(out)
}

/// Fails when `needle` occurs in `haystack`, naming `what` and `place` but never printing the secret itself.
fn ensure_absent(haystack: &[u8], needle: &str, what: &str, place: &str) -> Result<()> {
    // IMPORTANT: a short needle could occur in sealed bytes by chance; at 5 bytes the odds are about 2^-40 per
    // position (under 1 in a million for the ~0.5 MB store), and an empty one would match nothing.
    ensure!(needle.len() >= 5, "{what} is too short to search for meaningfully");
    let found = haystack.windows(needle.len()).any(|w| w == needle.as_bytes());
    ensure!(!found, "{what} appears in {place}");
    Ok(())
}

/// The sealed store holds none of `secrets` in plaintext (each `(what, value)`), and it is not empty.
fn ensure_store_sealed(tk: &Tokenkeep, secrets: &[(&str, &str)]) -> Result<()> {
    let files = files_below(&tk.store_dir())?;
    let total: usize = files.iter().map(|(_, b)| b.len()).sum();
    ensure!(total > 0, "the store under {} is empty", tk.store_dir().display());
    for (path, bytes) in &files {
        for (what, value) in secrets {
            ensure_absent(bytes, value, what, &path.display().to_string())?;
        }
    }
    Ok(())
}

/// A raw HTTP/1.1 GET of `target` on the loopback `port` with the given `Host` header; returns the status code.
fn raw_get(port: u16, target: &str, host: &str) -> Result<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("not an HTTP response: {:?}", response.lines().next()))?;
    Ok(status)
}

/// `date -u -d @SECS`: an RFC 3339 oracle independent of the CLI's own formatting.
fn rfc3339(secs: u64) -> Result<String> {
    let out = Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()?;
    ensure!(out.status.success(), "date failed");
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

fn unix_now() -> Result<u64> {
    Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())
}

fn str_field<'a>(entry: &'a Value, name: &str) -> Result<&'a str> {
    entry[name]
        .as_str()
        .ok_or_else(|| anyhow!("the list entry has no string {name:?}: {entry}"))
}

/// The one connection `list --json` shows, after checking its provider, account and status.
fn only_connection(tk: &Tokenkeep, provider: &str, account: &str) -> Result<Value> {
    let list = tk.list_json()?;
    ensure!(list.len() == 1, "expected one connection, `list --json` shows {list:?}");
    let entry = list
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("unreachable: checked length"))?;
    ensure!(str_field(&entry, "provider")? == provider, "wrong provider: {entry}");
    ensure!(str_field(&entry, "account")? == account, "wrong account: {entry}");
    ensure!(str_field(&entry, "status")? == "connected", "wrong status: {entry}");
    Ok(entry)
}

/// The demo provider with the public client and PKCE, driven through `--no-browser` so the test sees the sign-in
/// URL: the account is stored and its token is live at the peer, the store on disk is sealed, and neither the log
/// file nor anything the CLI printed (with `-v`, logs included) holds a token, the `state` or the `nonce`.
#[test]
fn cli_connect_public_client_pkce_stores_sealed_tokens_and_logs_no_secret() -> Result<()> {
    const TEST: &str = "public_client";
    let started = Instant::now();
    let peer = start_peer()?;
    let mut tk = Tokenkeep::headless("cli-public")?;
    // The most talkative setting a user could be asked to send: every crate's trace output, to the file and
    // (with -v) to stderr.
    tk.set_env("RUST_LOG", "trace");
    add_demo(&tk, &peer)?;
    note(TEST, started, "peer up, demo provider added");

    let before = unix_now()?;
    let mut connect = tk.spawn(&["-v", "connect", "demo", "--no-browser"])?;
    let url = sign_in_url(&mut connect, &peer)?;
    ensure!(
        param(&url, "client_id")? == PUBLIC_CLIENT_ID,
        "wrong client_id in {url}"
    );
    ensure!(
        param(&url, "code_challenge_method")? == "S256",
        "no PKCE S256 in the sign-in URL"
    );
    ensure!(
        param(&url, "code_challenge")?.len() == 43,
        "the code_challenge is not a SHA-256 digest"
    );
    ensure!(
        param(&url, "scope")?.split(' ').eq(DEMO_SCOPES.iter().copied()),
        "wrong scope in the URL"
    );
    redirect_port(&url)?;
    let state = param(&url, "state")?;
    let nonce = param(&url, "nonce")?;
    ensure!(state != nonce, "state and nonce are the same value");
    note(TEST, started, "sign-in URL printed");
    let took = run_login_driver(url.as_str(), &LoginOptions::default())?;
    note(TEST, started, &format!("browser sign-in took {took:.1?}"));
    let output = connect.finish(URL_LIMIT)?;
    let after = unix_now()?;
    let id = connected_id(&output, "Connected", Some("Demo (local)"), ALICE)?;
    note(TEST, started, "connected");

    let entry = only_connection(&tk, "demo", ALICE)?;
    ensure!(str_field(&entry, "id")? == id, "`list` shows another id: {entry}");
    let scopes: Vec<&str> = entry["scopes"]
        .as_array()
        .ok_or_else(|| anyhow!("no scopes: {entry}"))?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for scope in ["openid", "profile", "email", "videos.read"] {
        ensure!(scopes.contains(&scope), "scope {scope} is missing: {entry}");
    }
    ensure!(
        scopes.iter().all(|s| DEMO_SCOPES.contains(s)),
        "a scope nobody asked for: {entry}"
    );
    // The peer's access tokens live 3600 s; expires_at is computed between `before` and `after`.
    let expires = str_field(&entry, "expires_at")?;
    let (earliest, latest) = (rfc3339(before + 3600)?, rfc3339(after + 3600)?);
    ensure!(
        (earliest.as_str()..=latest.as_str()).contains(&expires),
        "expires_at {expires} is not between {earliest} and {latest}"
    );

    let tokens = tk.open_vault()?.tokens(connection_id(&id)?)?;
    let access = tokens.access.dangerously_expose().to_owned();
    let refresh = tokens
        .refresh
        .as_ref()
        .ok_or_else(|| anyhow!("no refresh token stored"))?
        .dangerously_expose()
        .to_owned();
    let id_token = tokens
        .id_token
        .as_ref()
        .ok_or_else(|| anyhow!("no id_token stored"))?
        .dangerously_expose()
        .to_owned();
    let introspection = peer.introspect(&access)?;
    ensure!(introspection["active"] == true, "the stored access token is not active");
    ensure!(
        introspection["client_id"] == PUBLIC_CLIENT_ID,
        "the access token belongs to {}",
        introspection["client_id"]
    );
    ensure!(peer.is_active(&refresh)?, "the stored refresh token is not active");

    // The account picture the id_token names: fetched once, at connect, sealed beside the tokens; reading the
    // store (list, show) never fetches it again.
    let picture = tk
        .open_vault()?
        .picture(connection_id(&id)?)?
        .ok_or_else(|| anyhow!("the account picture was not stored"))?;
    ensure!(
        picture.kind().media_type() == "image/png" && picture.bytes().starts_with(b"\x89PNG"),
        "the stored picture is not the peer's PNG: {picture:?}"
    );
    let shown = tk.ok(&["show", &id], None)?;
    ensure!(
        shown.stdout.contains("picture       image/png"),
        "`show` does not mention the picture:\n{}",
        shown.stdout
    );
    ensure!(
        peer.stats()?.picture_requests == 1,
        "the picture was fetched {} times, not once at connect",
        peer.stats()?.picture_requests
    );

    let tokens = [
        ("the access token", access.as_str()),
        ("the refresh token", &refresh),
        ("the id_token", &id_token),
    ];
    let mut sealed: Vec<(&str, &str)> = tokens.to_vec();
    sealed.push(("the account name", ALICE));
    ensure_store_sealed(&tk, &sealed)?;

    let log = std::fs::read_to_string(tk.log_file())?;
    // Not vacuous: the log file and `-v` stderr both carry the flow's log lines.
    ensure!(
        log.contains("account connected"),
        "the log file lacks the connect lines:\n{log}"
    );
    ensure!(
        output.stderr.contains("account connected"),
        "`-v` did not log to stderr:\n{}",
        output.stderr
    );
    // The sign-in URL is printed once on purpose (that is what --no-browser is for); nothing else may repeat it.
    let stderr = output.stderr.replacen(url.as_str(), "", 1);
    let flow = [("the state", state.as_str()), ("the nonce", nonce.as_str())];
    for (what, value) in tokens.iter().chain(&flow) {
        ensure_absent(log.as_bytes(), value, what, "the log file")?;
        ensure_absent(stderr.as_bytes(), value, what, "stderr (the sign-in URL aside)")?;
        ensure_absent(output.stdout.as_bytes(), value, what, "stdout")?;
    }
    note(TEST, started, "done");
    Ok(())
}

/// A confidential client added by discovery with its secret on stdin (`auth` is `basic` or `post`): a wrong
/// secret fails at the token endpoint with `invalid_client` and stores nothing; the right one connects. The peer
/// registers each client with exactly one authentication method, so success proves the CLI used `auth`. The
/// secrets never reach config.toml, the store files, the log or the output in plaintext.
fn confidential_client(test: &str, auth: &str, client_id: &str, secret: &str) -> Result<()> {
    let started = Instant::now();
    let peer = start_peer()?;
    let tk = Tokenkeep::headless(&format!("cli-{auth}"))?;
    let name = format!("peer-{auth}");
    let wrong = format!("{secret}-but-wrong");
    let mut outputs = Vec::new();

    let add = [
        "providers",
        "add",
        &name,
        "--issuer",
        peer.issuer(),
        "--client-id",
        client_id,
        "--auth",
        auth,
        "--client-secret-stdin",
    ];
    let added = tk.ok(&add, Some(&format!("{wrong}\n")))?;
    ensure!(
        added.stdout.contains(&format!("Added provider {name}")) && added.stdout.contains("sealed in the vault"),
        "`providers add` printed {:?}",
        added.stdout
    );
    outputs.push(added);
    note(test, started, "provider added by discovery with a wrong secret");

    let refused = tk.run(&["connect", &name], None)?;
    refused.ensure_code(1)?;
    ensure!(
        refused.stderr.contains("invalid_client"),
        "the failure does not mention invalid_client:\n{}",
        refused.stderr
    );
    // The peer takes pushed authorization requests, so the client authenticates there first (RFC 9126 §2.1):
    // a wrong secret is refused before any browser opens, and no code is ever issued.
    let stats = peer.stats()?;
    ensure!(
        stats.par_requests == 1 && stats.authorizations == 0 && stats.code_exchanges == 0,
        "expected one refused pushed request and nothing after it, the peer saw {stats:?}"
    );
    ensure!(tk.list_json()?.is_empty(), "a refused connect stored something");
    outputs.push(refused);
    note(test, started, "wrong secret refused with invalid_client");

    // Replacing the secret of the existing provider (no --issuer: only the client changes).
    let fixed = tk.ok(
        &add[..3].iter().chain(&add[5..]).copied().collect::<Vec<_>>(),
        Some(secret),
    )?;
    ensure!(
        fixed.stdout.contains(&format!("Updated provider {name}")),
        "re-adding printed {:?}",
        fixed.stdout
    );
    outputs.push(fixed);
    let connected = tk.run(&["connect", &name], None)?;
    let id = connected_id(&connected, "Connected", None, ALICE)?;
    outputs.push(connected);
    note(test, started, "connected with the right secret");

    let entry = only_connection(&tk, &name, ALICE)?;
    ensure!(str_field(&entry, "id")? == id, "`list` shows another id: {entry}");
    let tokens = tk.open_vault()?.tokens(connection_id(&id)?)?;
    let introspection = peer.introspect(tokens.access.dangerously_expose())?;
    ensure!(introspection["active"] == true, "the stored access token is not active");
    ensure!(
        introspection["client_id"] == client_id,
        "the access token belongs to {}",
        introspection["client_id"]
    );

    let config = std::fs::read_to_string(tk.config_file())?;
    ensure!(
        config.contains(client_id),
        "config.toml does not name the client:\n{config}"
    );
    let secrets = [
        ("the client secret", secret),
        ("the wrong client secret", wrong.as_str()),
    ];
    let log = std::fs::read(tk.log_file())?;
    for (what, value) in secrets {
        ensure_absent(config.as_bytes(), value, what, "config.toml")?;
        ensure_absent(&log, value, what, "the log file")?;
        for output in &outputs {
            ensure_absent(
                output.stdout.as_bytes(),
                value,
                what,
                &format!("stdout of `{}`", output.args),
            )?;
            ensure_absent(
                output.stderr.as_bytes(),
                value,
                what,
                &format!("stderr of `{}`", output.args),
            )?;
        }
    }
    ensure_store_sealed(&tk, &secrets)?;
    note(test, started, "done");
    Ok(())
}

#[test]
fn cli_connect_confidential_client_secret_basic() -> Result<()> {
    confidential_client("client_secret_basic", "basic", BASIC_CLIENT_ID, BASIC_CLIENT_SECRET)
}

#[test]
fn cli_connect_confidential_client_secret_post() -> Result<()> {
    confidential_client("client_secret_post", "post", POST_CLIENT_ID, POST_CLIENT_SECRET)
}

/// Cancel on the consent page: exit 1, a message saying so, nothing stored, no code exchanged.
#[test]
fn cli_connect_declined_consent_stores_nothing() -> Result<()> {
    const TEST: &str = "declined";
    let started = Instant::now();
    let peer = start_peer()?;
    let mut tk = Tokenkeep::headless("cli-decline")?;
    add_demo(&tk, &peer)?;
    tk.set_env("PEER_ACTION", "decline");
    let output = tk.run(&["connect", "demo"], None)?;
    note(TEST, started, &format!("connect declined after {:.1?}", output.took));
    output.ensure_code(1)?;
    ensure!(
        output
            .stderr
            .contains("you declined the request at Demo (local); nothing was connected"),
        "stderr does not say the user declined:\n{}",
        output.stderr
    );
    ensure!(output.stdout.is_empty(), "stdout: {:?}", output.stdout);
    ensure!(tk.list_json()?.is_empty(), "a declined connect stored something");
    let stats = peer.stats()?;
    ensure!(
        stats.authorizations >= 1,
        "the browser never reached the peer: {stats:?}"
    );
    ensure!(
        stats.code_exchanges == 0,
        "a code was exchanged after declining: {stats:?}"
    );
    Ok(())
}

/// While `connect` waits, a callback with a wrong `state` and one with a foreign `Host` (carrying the right state)
/// are answered 400 and ignored; the real sign-in then completes, and only its code is exchanged.
#[test]
fn cli_connect_ignores_wrong_state_and_foreign_host() -> Result<()> {
    const TEST: &str = "state_mismatch";
    let started = Instant::now();
    let peer = start_peer()?;
    let tk = Tokenkeep::headless("cli-state")?;
    add_demo(&tk, &peer)?;
    let mut connect = tk.spawn(&["connect", "demo", "--no-browser"])?;
    let url = sign_in_url(&mut connect, &peer)?;
    let port = redirect_port(&url)?;
    let state = param(&url, "state")?;
    let host = format!("127.0.0.1:{port}");

    let wrong_state = raw_get(port, "/callback?code=forged-code&state=wrong", &host)?;
    ensure!(wrong_state == 400, "a wrong state was answered {wrong_state}");
    let target = format!("/callback?code=forged-code&state={state}");
    let foreign = raw_get(port, &target, &format!("evil.example:{port}"))?;
    ensure!(foreign == 400, "a foreign Host was answered {foreign}");
    ensure!(
        connect.exited_yet()?.is_none(),
        "connect stopped after a rejected callback:\n{}",
        connect.stderr_so_far()
    );
    note(TEST, started, "forged callbacks rejected");

    run_login_driver(url.as_str(), &LoginOptions::default())?;
    let output = connect.finish(URL_LIMIT)?;
    connected_id(&output, "Connected", Some("Demo (local)"), ALICE)?;
    let stats = peer.stats()?;
    ensure!(
        stats.code_exchanges == 1 && stats.code_exchange_errors == 0,
        "only the real callback's code should be exchanged: {stats:?}"
    );
    only_connection(&tk, "demo", ALICE)?;
    note(TEST, started, "done");
    Ok(())
}

/// Nobody signs in: `connect --timeout 2` gives up after about two seconds with exit 1 and says so in a
/// sentence that names the real duration; the loopback port is closed afterwards.
#[test]
fn cli_connect_times_out_and_closes_the_port() -> Result<()> {
    const TEST: &str = "timeout";
    let started = Instant::now();
    let peer = start_peer()?;
    let tk = Tokenkeep::headless("cli-timeout")?;
    add_demo(&tk, &peer)?;
    let mut connect = tk.spawn(&["connect", "demo", "--no-browser", "--timeout", "2"])?;
    let port = redirect_port(&sign_in_url(&mut connect, &peer)?)?;
    let output = connect.finish(Duration::from_secs(15))?;
    note(TEST, started, &format!("connect gave up after {:.1?}", output.took));
    output.ensure_code(1)?;
    ensure!(
        (Duration::from_secs(2)..Duration::from_secs(8)).contains(&output.took),
        "connect --timeout 2 ended after {:?}",
        output.took
    );
    let refused = TcpStream::connect(("127.0.0.1", port));
    ensure!(
        refused.is_err(),
        "port {port} still accepts connections after the time-out"
    );
    ensure!(tk.list_json()?.is_empty(), "a timed-out connect stored something");
    let error = output
        .stderr
        .lines()
        .find(|l| l.starts_with("tokenkeep: "))
        .ok_or_else(|| anyhow!("no error message on stderr:\n{}", output.stderr))?;
    ensure!(
        error.contains("timed out"),
        "the error does not say it timed out: {error:?}"
    );
    // The message must name the duration the user chose (not "after 0 minutes", which it said for 2 s).
    ensure!(
        error.contains("2 s") || error.contains("2 seconds"),
        "the time-out message does not name the 2 seconds: {error:?}"
    );
    Ok(())
}

/// Signs in as `login` through `TOKENKEEP_BROWSER` and returns the output of `connect demo`.
fn connect_as(tk: &mut Tokenkeep, login: &str) -> Result<CliOutput> {
    tk.set_env("PEER_LOGIN", login);
    tk.run(&["connect", "demo"], None)
}

/// Two accounts of one provider are two connections, listed side by side.
#[test]
fn cli_connect_two_accounts_on_one_provider() -> Result<()> {
    const TEST: &str = "two_accounts";
    let started = Instant::now();
    let peer = start_peer()?;
    let mut tk = Tokenkeep::headless("cli-two")?;
    add_demo(&tk, &peer)?;
    let alice = connected_id(&connect_as(&mut tk, "alice")?, "Connected", Some("Demo (local)"), ALICE)?;
    note(TEST, started, "alice connected");
    let bob = connected_id(&connect_as(&mut tk, "bob")?, "Connected", Some("Demo (local)"), BOB)?;
    note(TEST, started, "bob connected");
    ensure!(alice != bob, "both accounts got connection {alice}");
    let list = tk.list_json()?;
    let seen: Vec<(&str, &str, &str)> = list
        .iter()
        .map(|e| Ok((str_field(e, "id")?, str_field(e, "provider")?, str_field(e, "account")?)))
        .collect::<Result<_>>()?;
    ensure!(
        seen == [(alice.as_str(), "demo", ALICE), (bob.as_str(), "demo", BOB)],
        "`list --json` shows {seen:?}"
    );
    Ok(())
}

/// Connecting an account again replaces its tokens in place: `Reconnected`, the same connection id, still one
/// connection per account, and a fresh access token that the peer accepts.
#[test]
fn cli_connect_reconnect_keeps_the_connection_id() -> Result<()> {
    const TEST: &str = "reconnect";
    let started = Instant::now();
    let peer = start_peer()?;
    let mut tk = Tokenkeep::headless("cli-reconnect")?;
    add_demo(&tk, &peer)?;
    let alice = connected_id(&connect_as(&mut tk, "alice")?, "Connected", Some("Demo (local)"), ALICE)?;
    let bob = connected_id(&connect_as(&mut tk, "bob")?, "Connected", Some("Demo (local)"), BOB)?;
    let first = tk
        .open_vault()?
        .tokens(connection_id(&alice)?)?
        .access
        .dangerously_expose()
        .to_owned();
    note(TEST, started, "alice and bob connected");

    let again = connect_as(&mut tk, "alice")?;
    let same = connected_id(&again, "Reconnected", Some("Demo (local)"), ALICE)?;
    note(TEST, started, "alice reconnected");
    ensure!(same == alice, "reconnecting gave connection {same}, not {alice}");
    let list = tk.list_json()?;
    let ids: Vec<&str> = list.iter().map(|e| str_field(e, "id")).collect::<Result<_>>()?;
    ensure!(ids == [alice.as_str(), bob.as_str()], "`list --json` shows {ids:?}");
    let second = tk
        .open_vault()?
        .tokens(connection_id(&alice)?)?
        .access
        .dangerously_expose()
        .to_owned();
    ensure!(second != first, "reconnecting kept the old access token");
    ensure!(peer.is_active(&second)?, "the new access token is not active");
    Ok(())
}

/// The keyring path end to end: in a private desktop session with the real gnome-keyring (no
/// `TOKENKEEP_MASTER_KEY`), connect and list work, and the keyring holds exactly one Tokenkeep item.
#[test]
fn cli_connect_with_the_real_keyring() -> Result<()> {
    const TEST: &str = "keyring";
    let started = Instant::now();
    let dir = scratch_dir("cli-keyring")?;
    let session = HeadlessSession::start(&dir)?;
    let peer = start_peer()?;
    let tk = Tokenkeep::in_session(&session)?;
    note(TEST, started, "session and peer up");
    add_demo(&tk, &peer)?;
    let output = tk.run(&["connect", "demo"], None)?;
    let id = connected_id(&output, "Connected", Some("Demo (local)"), ALICE)?;
    note(TEST, started, "connected");
    let entry = only_connection(&tk, "demo", ALICE)?;
    ensure!(str_field(&entry, "id")? == id, "`list` shows another id: {entry}");

    let search = Command::new("secret-tool")
        .args(["search", "--all", "service", "tokenkeep"])
        .env_clear()
        .envs(session.env())
        .output()
        .context("is secret-tool (libsecret-tools) installed?")?;
    ensure!(
        search.status.success(),
        "secret-tool search failed: {}",
        String::from_utf8_lossy(&search.stderr)
    );
    // secret-tool prints one `[/org/freedesktop/secrets/collection/…]` header per item (on stdout or stderr
    // depending on its version); the secret itself is the master key, so never print the output.
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&search.stdout),
        String::from_utf8_lossy(&search.stderr)
    );
    let items = text.lines().filter(|l| l.starts_with("[/")).count();
    let services = text
        .lines()
        .filter(|l| l.trim() == "attribute.service = tokenkeep")
        .count();
    ensure!(
        items == 1 && services == 1,
        "the keyring holds {items} items ({services} with service=tokenkeep)"
    );
    note(TEST, started, "done");
    Ok(())
}
