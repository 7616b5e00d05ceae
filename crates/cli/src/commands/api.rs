//! `api CONNECTION PATH`: one request to the connection's API with its token, which this process never sees when
//! the app or the daemon holds the store (that process makes the request). Options in `gh api`'s spirit.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use serde_json::{Map, Value};
use tokenkeep_core::ops::{ApiCall, ApiResponse};

use crate::Context;
use crate::args::ApiArgs;
use crate::backend::Backend;

/// Runs `tokenkeep api`: the body goes to stdout as it came (any bytes); an HTTP error status is also said on
/// stderr and ends with status 1, after the body (which usually says why).
pub(super) fn exec(ctx: &Context, args: ApiArgs) -> Result<()> {
    let mut call = build(
        args.connection,
        args.path,
        args.method,
        &args.headers,
        &args.raw_fields,
        &args.fields,
        args.input,
    )?;
    call.paginate = args.paginate;
    let backend = Backend::open(ctx)?;
    for page in 1.. {
        let response = backend.run(call.clone())?;
        write_response(&response, args.include)?;
        if response.status >= 400 {
            bail!("the API answered HTTP {}", response.status_line());
        }
        let Some(next) = response.next else {
            break;
        };
        if page == MAX_PAGES {
            bail!("stopped after {MAX_PAGES} pages; the next one is {next}");
        }
        // Pages follow one another as they came; one that does not end a line gets a newline after it.
        if !response.body.ends_with(b"\n") {
            std::io::stdout().lock().write_all(b"\n")?;
        }
        call.url = next;
        call.body = None;
    }
    Ok(())
}

/// The most pages one `--paginate` follows.
const MAX_PAGES: usize = 1000;

/// The request: fields go into the query of a GET (or of a request whose body is `--input`), otherwise into a
/// JSON object body; the method is GET, or POST once there is something to send (as `gh api` does).
fn build(
    connection: String,
    mut path: String,
    method: Option<String>,
    headers: &[String],
    raw_fields: &[String],
    fields: &[String],
    input: Option<PathBuf>,
) -> Result<ApiCall> {
    let mut params: Vec<(String, Value)> = Vec::new();
    for field in raw_fields {
        let (key, value) = split_field(field)?;
        params.push((key, Value::String(value.to_owned())));
    }
    for field in fields {
        let (key, value) = split_field(field)?;
        params.push((key, typed_value(value)?));
    }
    let body_from_input = match &input {
        Some(file) => Some(read_input(file)?),
        None => None,
    };
    let method = method
        .unwrap_or_else(|| {
            if params.is_empty() && body_from_input.is_none() {
                "GET".into()
            } else {
                "POST".into()
            }
        })
        .to_ascii_uppercase();
    let mut headers: Vec<(String, String)> = headers.iter().map(|h| split_header(h)).collect::<Result<_>>()?;
    let body = if body_from_input.is_some() || method == "GET" || method == "HEAD" {
        if !params.is_empty() {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            for (key, value) in &params {
                let text = match value {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                query.append_pair(key, &text);
            }
            path.push(if path.contains('?') { '&' } else { '?' });
            path.push_str(&query.finish());
        }
        body_from_input
    } else if params.is_empty() {
        None
    } else {
        let object: Map<String, Value> = params.into_iter().collect();
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            headers.push(("Content-Type".into(), "application/json".into()));
        }
        Some(serde_json::to_vec(&Value::Object(object))?)
    };
    Ok(ApiCall {
        connection,
        method,
        url: path,
        headers,
        body,
        paginate: false,
    })
}

fn split_field(field: &str) -> Result<(String, &str)> {
    match field.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value)),
        _ => bail!("a field is KEY=VALUE, not {field:?}"),
    }
}

/// `-F`'s value: `true`, `false`, `null` and numbers as JSON, `@FILE` (or `@-`) the file's text, else a string.
fn typed_value(value: &str) -> Result<Value> {
    if let Some(file) = value.strip_prefix('@') {
        let bytes = read_input(&PathBuf::from(file))?;
        let text = String::from_utf8(bytes).with_context(|| format!("{file} is not UTF-8 text"))?;
        return Ok(Value::String(text));
    }
    Ok(match value {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" => Value::Null,
        _ => match serde_json::from_str::<serde_json::Number>(value) {
            Ok(number) => Value::Number(number),
            Err(_) => Value::String(value.to_owned()),
        },
    })
}

fn split_header(header: &str) -> Result<(String, String)> {
    match header.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim().to_owned(), value.trim().to_owned())),
        _ => bail!("a header is 'Name: value', not {header:?}"),
    }
}

/// A file's bytes, or standard input's for `-`.
fn read_input(file: &PathBuf) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if file.as_os_str() == "-" {
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read the request body from standard input")?;
    } else {
        bytes = std::fs::read(file).with_context(|| format!("cannot read the request body from {}", file.display()))?;
    }
    Ok(bytes)
}

/// The response on stdout: with `include`, the status line and headers first, as `curl -i` and `gh api -i` do.
fn write_response(response: &ApiResponse, include: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if include {
        let mut head = format!("HTTP {}\r\n", response.status_line());
        for (name, value) in &response.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes())?;
    }
    out.write_all(&response.body)?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(method: Option<&str>, raw: &[&str], typed: &[&str]) -> ApiCall {
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        build(
            "demo:alice".into(),
            "api/echo".into(),
            method.map(str::to_owned),
            &[],
            &strings(raw),
            &strings(typed),
            None,
        )
        .unwrap()
    }

    #[test]
    fn fields_make_a_json_post_and_go_into_the_query_of_a_get() {
        let post = call(None, &["title=Hello"], &["count=3", "draft=true"]);
        assert_eq!(post.method, "POST");
        let body: Value = serde_json::from_slice(post.body.as_deref().unwrap()).unwrap();
        assert_eq!(body, serde_json::json!({"title": "Hello", "count": 3, "draft": true}));
        assert!(
            post.headers
                .contains(&("Content-Type".into(), "application/json".into()))
        );

        let get = call(Some("get"), &["q=a b"], &["n=2"]);
        assert_eq!(
            (get.method.as_str(), get.url.as_str(), get.body),
            ("GET", "api/echo?q=a+b&n=2", None)
        );
    }

    #[test]
    fn no_fields_is_a_get_without_a_body() {
        let get = call(None, &[], &[]);
        assert_eq!((get.method.as_str(), get.body), ("GET", None));
    }

    #[test]
    fn malformed_fields_and_headers_are_refused_with_their_shape() {
        assert!(split_field("novalue").unwrap_err().to_string().contains("KEY=VALUE"));
        assert!(
            split_header("X-Nothing")
                .unwrap_err()
                .to_string()
                .contains("Name: value")
        );
        assert_eq!(
            split_header("Accept:  text/plain").unwrap(),
            ("Accept".into(), "text/plain".into())
        );
    }
}
