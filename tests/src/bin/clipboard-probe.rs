//! TEST-ONLY: reads or sets the X11 clipboard of the display in `DISPLAY`, so an end-to-end test can look at what
//! the app put there (no `xclip` needed). `clipboard-probe get` prints the text (exit 3 when empty);
//! `clipboard-probe hold TEXT` takes the clipboard with TEXT and serves it until another program takes it.

use std::process::ExitCode;

#[expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line helper for tests"
)]
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut board = match arboard::Clipboard::new() {
        Ok(board) => board,
        Err(error) => {
            eprintln!("clipboard-probe: no clipboard: {error}");
            return ExitCode::FAILURE;
        }
    };
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["get"] => match board.get_text() {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(arboard::Error::ContentNotAvailable) => ExitCode::from(3),
            Err(error) => {
                eprintln!("clipboard-probe: {error}");
                ExitCode::FAILURE
            }
        },
        ["hold", text] => {
            use arboard::SetExtLinux as _;
            println!("holding");
            match board.set().wait().text((*text).to_owned()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("clipboard-probe: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!("usage: clipboard-probe get | hold TEXT");
            ExitCode::from(2)
        }
    }
}
