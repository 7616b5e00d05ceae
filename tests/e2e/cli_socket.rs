//! The CLI while another process holds the store: `tokenkeep daemon` (standing in for the desktop app, which runs
//! the same server) serves the other commands over `<profile>/cli.sock`, and each of them prints through it
//! exactly what it prints with the store to itself. Also: the socket and its secret are private, a client without
//! the secret learns nothing, and a daemon killed with SIGKILL leaves nothing that gets in the way.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, anyhow, ensure};
use tokenkeep_e2e::cli::{CliOutput, Tokenkeep};
use tokenkeep_e2e::peer::{OidcPeer, PeerConfig};
use tokenkeep_e2e::seed::{DEMO, Daemon, Seeded, add_demo, now_secs, seed_connections};

/// Far enough that "expires in 30 days" reads the same for every run of a test.
const EXPIRES_IN: u64 = 30 * 24 * 3600;

/// A headless installation with the demo provider on a fresh peer and two seeded connections (alice, bob).
fn installation(test: &str) -> Result<(OidcPeer, Tokenkeep, Vec<Seeded>)> {
    let peer = OidcPeer::start(&PeerConfig::default())?;
    let tk = Tokenkeep::headless(test)?;
    add_demo(&tk, &peer)?;
    let seeded = seed_connections(&tk, &peer, &["alice".into(), "bob".into()], now_secs() + EXPIRES_IN)?;
    Ok((peer, tk, seeded))
}

fn socket(tk: &Tokenkeep) -> PathBuf {
    tk.profile_dir().join("cli.sock")
}

fn secret(tk: &Tokenkeep) -> PathBuf {
    tk.profile_dir().join("cli.secret")
}

/// The read-only commands compared across both paths.
const READS: &[&[&str]] = &[
    &["list"],
    &["list", "--json"],
    &["show", "demo:alice"],
    &["show", "demo:bob", "--json"],
    &["show", "demo:alice", "--json", "--reveal"],
    &["verify"],
    &["verify", "--json"],
    &["export", "--envelopes"],
    &["status"],
];

fn run_reads(tk: &Tokenkeep) -> Result<Vec<CliOutput>> {
    READS.iter().map(|args| tk.ok(args, None)).collect()
}

/// `show` in text prints "connected 12 s ago (2026-…Z)": the relative part moves with the clock between two runs,
/// so it is compared by its absolute time only.
fn without_relative_times(text: &str) -> String {
    text.lines()
        .map(|line| {
            let timed = (line.starts_with("connected ") || line.starts_with("last refresh ")) && line.ends_with("Z)");
            match line.rfind(" (") {
                Some(at) if timed => format!("{}{}", &line[..14], &line[at..]),
                _ => line.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// How many times the CLI said it used the socket (its log file, info level).
fn socket_uses(tk: &Tokenkeep) -> usize {
    std::fs::read_to_string(tk.log_file())
        .unwrap_or_default()
        .matches("using its CLI socket")
        .count()
}

/// With the daemon holding the store, `list`, `list --json`, `show` (text, JSON, revealed), `verify` and
/// `export --envelopes` print byte for byte what they print once the daemon is stopped and they open the store
/// themselves; `token`, `refresh` and `disconnect` through the socket do what they do directly.
#[test]
fn cli_socket_commands_print_the_same_as_with_the_store_to_themselves() -> Result<()> {
    let (peer, tk, seeded) = installation("socket-same")?;
    let (alice, bob) = (&seeded[0], &seeded[1]);

    let daemon = Daemon::start(&tk, &[])?;
    for file in [socket(&tk), secret(&tk)] {
        let mode = std::fs::metadata(&file)?.permissions().mode() & 0o777;
        ensure!(mode == 0o600, "{} has mode {mode:o}", file.display());
    }
    let through_socket = run_reads(&tk)?;
    ensure!(
        socket_uses(&tk) == READS.len(),
        "not every command went through the socket:\n{}",
        std::fs::read_to_string(tk.log_file()).unwrap_or_default()
    );
    let token = tk.ok(&["token", "demo:alice"], None)?;
    ensure!(
        token.stdout == format!("{}\n", alice.grant.access_token),
        "`token` through the socket printed something else than the fresh stored access token"
    );
    daemon.stop()?;
    ensure!(
        !socket(&tk).exists() && !secret(&tk).exists(),
        "a clean stop leaves cli.sock or cli.secret behind"
    );

    let direct = run_reads(&tk)?;
    ensure!(socket_uses(&tk) == READS.len() + 1, "a direct run used the socket");
    for (args, (remote, local)) in READS.iter().zip(through_socket.iter().zip(&direct)) {
        let (remote_out, local_out) = if *args == ["show", "demo:alice"] {
            (
                without_relative_times(&remote.stdout),
                without_relative_times(&local.stdout),
            )
        } else {
            (remote.stdout.clone(), local.stdout.clone())
        };
        ensure!(
            remote_out == local_out,
            "`tokenkeep {}` printed differently through the socket:\n--- socket\n{}\n--- direct\n{}",
            args.join(" "),
            remote.stdout,
            local.stdout
        );
        ensure!(
            remote.stderr == local.stderr,
            "`tokenkeep {}` wrote differently on stderr:\n--- socket\n{}\n--- direct\n{}",
            args.join(" "),
            remote.stderr,
            local.stderr
        );
    }
    let listed = &direct[1].stdout;
    ensure!(
        listed.contains(&alice.id.to_hex()) && listed.contains(&bob.id.to_hex()),
        "{listed}"
    );
    ensure!(
        direct[4].stdout.contains(&alice.grant.refresh_token),
        "`show --reveal` does not show the stored refresh token"
    );

    // The effects: refresh and disconnect through the socket, checked afterwards with the store to ourselves.
    let daemon = Daemon::start(&tk, &[])?;
    let refreshed = tk.ok(&["refresh", "demo:alice"], None)?;
    ensure!(
        refreshed.stdout.starts_with("Refreshed alice at demo: expires in ")
            && refreshed
                .stdout
                .ends_with("; the provider rotated the refresh token.\n"),
        "`refresh` through the socket printed {:?}",
        refreshed.stdout
    );
    let new_token = tk.ok(&["token", "demo:alice"], None)?.stdout;
    ensure!(
        new_token != token.stdout,
        "`token` after the refresh still returns the old access token"
    );
    let gone = tk.ok(&["disconnect", "demo:bob"], None)?;
    ensure!(
        gone.stdout
            == "Disconnected bob from demo; every token stored for it was deleted.\nThe provider confirmed that the \
                tokens are revoked.\n",
        "`disconnect` through the socket printed {:?}",
        gone.stdout
    );
    ensure!(
        !peer.is_active(&bob.grant.refresh_token)?,
        "bob's refresh token is still active"
    );
    daemon.stop()?;

    ensure!(
        tk.ok(&["token", "demo:alice"], None)?.stdout == new_token,
        "the refreshed access token did not reach the store"
    );
    let stored = tk.open_vault()?.tokens(alice.id)?;
    let rotated = stored
        .refresh
        .as_ref()
        .ok_or_else(|| anyhow!("alice lost her refresh token"))?
        .dangerously_expose();
    ensure!(
        peer.is_active(rotated)? && !peer.is_active(&alice.grant.refresh_token)?,
        "the rotated refresh token was not stored"
    );
    drop(stored);
    let ids: Vec<String> = tk
        .list_json()?
        .iter()
        .filter_map(|e| e["id"].as_str().map(str::to_owned))
        .collect();
    ensure!(
        ids == [alice.id.to_hex()],
        "`list --json` shows {ids:?} after disconnecting bob"
    );
    Ok(())
}

/// Writes `lines` to the socket and returns everything the daemon answers until it closes.
fn raw_exchange(tk: &Tokenkeep, lines: &str) -> Result<String> {
    let mut stream = UnixStream::connect(socket(tk))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(lines.as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// A wrong secret gets one error line and nothing about the store; a broken socket is reported with what to do;
/// commands that need the store to themselves say so; after SIGKILL the CLI opens the store itself and the next
/// daemon replaces the stale socket.
#[test]
fn cli_socket_refuses_strangers_and_survives_kill_9() -> Result<()> {
    let (_peer, tk, seeded) = installation("socket-kill9")?;
    let daemon = Daemon::start(&tk, &[])?;
    let first_secret = std::fs::read_to_string(secret(&tk))?;

    let answer = raw_exchange(
        &tk,
        "{\"v\":1,\"secret\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}\n{\"v\":1,\"op\":\"list\"}\n",
    )?;
    ensure!(
        answer.lines().count() == 1 && answer.contains("\"unauthorized\""),
        "a wrong secret got {answer:?}"
    );
    ensure!(
        !answer.contains(DEMO) && !answer.contains("alice") && !answer.contains(&seeded[0].id.to_hex()),
        "a wrong secret learned something: {answer:?}"
    );

    // Commands that cannot go through the socket say where to go instead.
    let connect = tk.run(&["connect", DEMO], None)?;
    connect.ensure_code(1)?;
    ensure!(
        connect.stderr.contains("`tokenkeep connect` needs the store to itself")
            && connect.stderr.contains("stop the daemon first"),
        "{}",
        connect.stderr
    );

    // A socket the CLI cannot use is reported with the holder and what to do; the store is not touched.
    std::fs::remove_file(secret(&tk))?;
    let broken = tk.run(&["list"], None)?;
    broken.ensure_code(1)?;
    ensure!(
        broken.stderr.contains("the store is in use by `tokenkeep daemon`")
            && broken.stderr.contains("its CLI socket could not be used")
            && broken.stderr.contains("cannot read the CLI secret"),
        "{}",
        broken.stderr
    );

    daemon.kill9()?;
    ensure!(
        socket(&tk).exists(),
        "SIGKILL removed the socket (the test would prove nothing)"
    );
    let direct = tk.ok(&["list", "--json"], None)?;
    ensure!(
        direct.stdout.contains(&seeded[1].id.to_hex()),
        "with the daemon gone, `list` does not open the store itself: {}",
        direct.stdout
    );

    let daemon = Daemon::start(&tk, &[])?;
    let again = tk.ok(&["list", "--json"], None)?;
    ensure!(
        again.stdout == direct.stdout,
        "the restarted daemon's socket answers differently"
    );
    ensure!(
        std::fs::read_to_string(secret(&tk))? != first_secret,
        "the restarted daemon reuses the old secret"
    );
    ensure!(
        std::fs::read_to_string(tk.log_file())?.contains("using its CLI socket"),
        "the list after the restart did not use the socket"
    );
    daemon.stop()?;
    Ok(())
}
