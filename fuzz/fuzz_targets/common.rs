//! Checks every target makes of the messages it gets: what reaches a terminal carries no control character from
//! the input (an escape sequence could rewrite the screen) and is of bounded length.

#![allow(dead_code)]

/// Asserts that `text`, shown to a user as `what`, has no control character and at most `max_chars` characters.
pub fn assert_shown_safely(what: &str, text: &str, max_chars: usize) {
    assert!(!text.chars().any(char::is_control), "{what} carries a control character: {text:?}");
    let n = text.chars().count();
    assert!(n <= max_chars, "{what} is {n} characters long (at most {max_chars}): {:?}...", text.chars().take(200).collect::<String>());
}

/// Both renderings of an error: `Display` (what the CLI prints) and `Debug` (what a log or a panic prints).
pub fn assert_error_shown_safely(what: &str, e: &(impl std::fmt::Display + std::fmt::Debug), max_chars: usize) {
    assert_shown_safely(what, &e.to_string(), max_chars);
    assert_shown_safely(what, &format!("{e:?}"), max_chars * 2);
}
