//! Go's `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`, which the docker CLI uses for tables:
//! tab-terminated cells are padded to their column's widest cell plus 3, at least 10; the text
//! after a line's last tab is not a cell and is printed as is.

const MIN_WIDTH: usize = 10;
const PADDING: usize = 3;

pub fn align(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let cols = lines
        .iter()
        .map(|l| l.len().saturating_sub(1))
        .max()
        .unwrap_or(0);
    let mut widths = vec![MIN_WIDTH; cols];
    for l in &lines {
        for (i, cell) in l.iter().take(l.len() - 1).enumerate() {
            widths[i] = widths[i].max(cell.chars().count() + PADDING);
        }
    }
    let mut out = String::new();
    for l in &lines {
        for (i, cell) in l.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < l.len() {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn min_width_and_padding() {
        assert_eq!(
            super::align("a\tb\nlonger-than-ten\tc\n"),
            "a                 b\nlonger-than-ten   c\n"
        );
        assert_eq!(super::align("x\ty\n"), "x         y\n");
    }
}
