//! A `command:`/`entrypoint:` string split into words the way docker-compose (Python's
//! `shlex.split`, POSIX mode) splits it: blanks separate words, quotes group, `\` escapes.

pub fn split(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match it.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err(format!("no closing quotation in {s:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match it.next() {
                        Some('"') => break,
                        // inside double quotes a backslash escapes only these
                        Some('\\') => match it.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => cur.push(e),
                            Some('\n') => {}
                            Some(e) => {
                                cur.push('\\');
                                cur.push(e);
                            }
                            None => return Err(format!("no closing quotation in {s:?}")),
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err(format!("no closing quotation in {s:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match it.next() {
                    Some('\n') => {}
                    Some(e) => cur.push(e),
                    None => return Err(format!("no escaped character in {s:?}")),
                }
            }
            _ => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn splits_like_python_shlex() {
        assert_eq!(
            split(r#"sh -c "while true; do echo hello | nc -l -p 5000; done""#).unwrap(),
            [
                "sh",
                "-c",
                "while true; do echo hello | nc -l -p 5000; done"
            ]
        );
        assert_eq!(split("  a  'b c'  d\\ e ").unwrap(), ["a", "b c", "d e"]);
        assert_eq!(split(r#""a\"b" '' x"#).unwrap(), ["a\"b", "", "x"]);
        assert_eq!(split("").unwrap(), Vec::<String>::new());
        assert!(split("echo 'open").is_err());
    }
}
