//! `exec --env NAME=CONNECTION … -- COMMAND ARGS`: starts COMMAND with each NAME set to a fresh access token, as
//! `op run` and `aws-vault exec` do. The tokens go into the child's environment only — never into Tokenkeep's
//! own environment or command line, nor the headless master key into the child's — and with `--mask` every token
//! value the child prints is replaced by `<tokenkeep:NAME>`. The exit status is the child's.

use std::io::{IsTerminal as _, Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use tokenkeep_core::keys::ENV_MASTER_KEY;
use tokenkeep_core::ops::Token;
use tokenkeep_core::secret::SecretString;
use zeroize::Zeroizing;

use crate::Context;
use crate::args::ExecArgs;
use crate::backend::{Backend, runtime};

/// A token's bytes (zeroized on drop) and the marker that replaces them in the child's output.
type Secret = (Zeroizing<Vec<u8>>, Vec<u8>);

/// The child's exit status, for `main` to end with.
#[derive(Debug)]
pub(crate) struct ChildExit(pub(crate) u8);

impl std::fmt::Display for ChildExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the command ended with status {}", self.0)
    }
}

impl std::error::Error for ChildExit {}

pub(super) fn exec(ctx: &Context, args: ExecArgs) -> Result<()> {
    let pairs = args
        .env
        .iter()
        .map(|pair| parse_pair(pair))
        .collect::<Result<Vec<_>>>()?;
    if pairs.is_empty() {
        bail!("name at least one variable: --env NAME=CONNECTION");
    }
    let Some((program, rest)) = args.command.split_first() else {
        bail!("give the command to run after --: tokenkeep exec --env NAME=CONNECTION -- COMMAND ARGS");
    };
    let mask = if args.no_mask {
        false
    } else {
        args.mask || std::io::stdout().is_terminal() || std::io::stderr().is_terminal()
    };
    let tokens = {
        let backend = Backend::open(ctx)?;
        pairs
            .iter()
            .map(|(name, connection)| {
                let token = backend.run(Token {
                    connection: connection.clone(),
                })?;
                Ok((name.clone(), token.0))
            })
            .collect::<Result<Vec<(String, SecretString)>>>()?
    };
    eprintln!(
        "tokenkeep: {} holds {} now and can do anything the connection{} allow{}; run only commands you trust",
        program,
        if tokens.len() == 1 { "a token" } else { "tokens" },
        if tokens.len() == 1 { "" } else { "s" },
        if tokens.len() == 1 { "s" } else { "" },
    );
    let mut command = Command::new(program);
    command.args(rest).env_remove(ENV_MASTER_KEY);
    for (name, token) in &tokens {
        command.env(name, token.dangerously_expose());
    }
    if mask {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    // Ctrl-C goes to the child (it is in the terminal's process group): this process waits for it to end, so that
    // its output is still masked and its status still reported.
    let signals = runtime()?;
    let _interrupts =
        signals.block_on(async { tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()) });
    let mut child = command.spawn().with_context(|| format!("cannot start {program}"))?;
    let status = if mask {
        // Each token's bytes and its marker, shared by the two copiers and zeroized when the last one is done.
        let secrets: Arc<Vec<Secret>> = Arc::new(
            tokens
                .iter()
                .map(|(name, token)| {
                    (
                        Zeroizing::new(token.dangerously_expose().as_bytes().to_vec()),
                        format!("<tokenkeep:{name}>").into_bytes(),
                    )
                })
                .collect(),
        );
        let out = child.stdout.take().map(|pipe| {
            let secrets = secrets.clone();
            std::thread::spawn(move || copy_masked(pipe, std::io::stdout(), &secrets))
        });
        let err = child.stderr.take().map(|pipe| {
            let secrets = secrets.clone();
            std::thread::spawn(move || copy_masked(pipe, std::io::stderr(), &secrets))
        });
        let status = child.wait()?;
        for copier in [out, err].into_iter().flatten() {
            // A reader that went away (`| head`) ends the copy, not the command.
            let _ = copier.join();
        }
        status
    } else {
        child.wait()?
    };
    drop(tokens);
    match exit_code(status) {
        0 => Ok(()),
        code => Err(ChildExit(code).into()),
    }
}

/// `NAME=CONNECTION`, with NAME a portable variable name.
fn parse_pair(pair: &str) -> Result<(String, String)> {
    let Some((name, connection)) = pair.split_once('=') else {
        bail!("--env takes NAME=CONNECTION, not {pair:?}");
    };
    let portable = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !portable {
        bail!("{name:?} is not a variable name (letters, digits and _, not starting with a digit)");
    }
    if name == ENV_MASTER_KEY || name.starts_with("TOKENKEEP_") {
        bail!("{name} is Tokenkeep's own variable: choose another name");
    }
    if connection.is_empty() {
        bail!("--env {name}= names no connection");
    }
    Ok((name.to_owned(), connection.to_owned()))
}

/// The status to end with: the child's, or 128 + the signal that ended it (as shells report it).
fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(1),
        _ => 1,
    }
}

/// Copies `from` to `to`, replacing each secret with its marker. A secret split across two reads is still found:
/// the bytes that could begin one are held back until the next read says.
fn copy_masked(mut from: impl Read, mut to: impl Write, secrets: &[Secret]) -> std::io::Result<()> {
    let longest = secrets.iter().map(|(s, _)| s.len()).max().unwrap_or(0);
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        pending.extend_from_slice(&chunk[..n]);
        let keep = longest.saturating_sub(1);
        let (out, used) = mask(&pending, secrets, pending.len().saturating_sub(keep));
        to.write_all(&out)?;
        to.flush()?;
        pending.drain(..used);
    }
    let (out, _) = mask(&pending, secrets, pending.len());
    to.write_all(&out)?;
    to.flush()?;
    zeroize::Zeroize::zeroize(&mut pending);
    zeroize::Zeroize::zeroize(&mut chunk);
    Ok(())
}

/// `bytes` with every whole secret that begins before `until` replaced; returns the output and how many bytes of
/// `bytes` it covers (a secret that begins before `until` and is complete is taken whole).
fn mask(bytes: &[u8], secrets: &[Secret], until: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < until {
        if let Some((secret, marker)) = secrets
            .iter()
            .find(|(secret, _)| !secret.is_empty() && bytes[at..].starts_with(secret.as_slice()))
        {
            out.extend_from_slice(marker);
            at += secret.len();
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    (out, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Vec<Secret> {
        vec![(Zeroizing::new(b"s3cr3t-token".to_vec()), b"<tokenkeep:T>".to_vec())]
    }

    /// A reader that hands out one byte at a time: every secret is split across reads.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self.0.split_first() {
                Some((&b, rest)) if !buf.is_empty() => {
                    buf[0] = b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn every_token_is_masked_even_split_across_reads() {
        let text = b"token=s3cr3t-token and again s3cr3t-token; s3cr3t-tok is not one\n";
        let mut out = Vec::new();
        copy_masked(Trickle(text), &mut out, &secrets()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "token=<tokenkeep:T> and again <tokenkeep:T>; s3cr3t-tok is not one\n"
        );
        let mut out = Vec::new();
        copy_masked(&text[..], &mut out, &secrets()).unwrap();
        assert!(!String::from_utf8(out).unwrap().contains("s3cr3t-token"));
    }

    #[test]
    fn names_must_be_portable_and_not_tokenkeeps() {
        assert!(parse_pair("YT_TOKEN=youtube:me").is_ok());
        assert!(parse_pair("1X=a").is_err());
        assert!(parse_pair("A-B=a").is_err());
        assert!(parse_pair("TOKENKEEP_MASTER_KEY=a").is_err());
        assert!(parse_pair("NOCONN=").is_err());
        assert!(parse_pair("NOEQUALS").is_err());
    }
}
