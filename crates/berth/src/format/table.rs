//! Docker's list output: `--format` handling for `ls`-style commands and
//! the elastic-tabstop writer docker uses for tables (a fork of Go's
//! text/tabwriter that measures cells in terminal columns).

use serde_json::{Map, Value};

use super::exec::ExecOptions;
use super::gofmt::GoFmt;
use super::template::Template;
use super::{docker_escapes, parse_error};

/// `docker network ls` without `--format`.
pub const NETWORK_LS_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";

/// Column headers of `docker network ls`, by template field name.
pub const NETWORK_LS_HEADERS: &[(&str, &str)] = &[
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("IPv6", "IPV6"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED AT"),
];

/// Builds the header context `render_list` wants from (field, header) pairs.
pub fn header_map(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect()
}

/// The format to use for a list command: docker treats an empty format
/// and the bare word `table` as "the command's default table".
pub fn resolve_list_format<'a>(user: Option<&'a str>, default_table: &'a str) -> &'a str {
    match user {
        None | Some("") | Some("table") => default_table,
        Some(f) => f,
    }
}

/// Renders `rows` the way docker's formatter.Context does:
/// - `table ...`: a header line from `header` (rendered with docker's
///   header functions, errors there ignored), then a line per row, all
///   through the tabwriter;
/// - `json`: `{{json .}}` per row;
/// - anything else: the template per row, each followed by a newline.
///
/// Literal `\t` / `\n` in `format` become tab / newline first. Errors read
/// `template parsing error: ...` as docker's do, for bad syntax and for
/// execution failures alike.
pub fn render_list(
    format: &str,
    header: &Map<String, Value>,
    rows: &[Value],
) -> Result<String, String> {
    render_list_with(&GoFmt::docker(), format, header, rows)
}

pub fn render_list_with(
    g: &GoFmt,
    format: &str,
    header: &Map<String, Value>,
    rows: &[Value],
) -> Result<String, String> {
    let is_table = format.starts_with("table");
    let body = if is_table {
        &format["table".len()..]
    } else if format == "json" {
        "{{json .}}"
    } else {
        format
    };
    let src = docker_escapes(body.trim_matches(' '));
    let t = Template::parse(&src).map_err(|e| parse_error(&e))?;
    let opts = ExecOptions::new(g);
    let mut out = String::new();
    for row in rows {
        out.push_str(&t.execute_with(row, &opts).map_err(|e| parse_error(&e))?);
        out.push('\n');
    }
    if !is_table {
        return Ok(out);
    }
    let hopts = ExecOptions {
        header: true,
        ..ExecOptions::new(g)
    };
    let (head, _) = t.execute_partial(&Value::Object(header.clone()), &hopts);
    let mut tw = TabWriter::docker();
    tw.write(&head);
    tw.write("\n");
    tw.write(&out);
    Ok(tw.flush())
}

/// Runs text through docker's table settings (minwidth 10, tabwidth 1,
/// padding 3, space padding).
pub fn tabwrite(text: &str) -> String {
    let mut tw = TabWriter::docker();
    tw.write(text);
    tw.flush()
}

#[derive(Debug, Clone, Default)]
struct Cell {
    text: String,
    width: usize,
    htab: bool,
}

/// Go's `tabwriter.Writer` (flags 0): cells are tab-terminated; a column
/// is a run of adjacent lines that have a cell at that index; each column
/// is as wide as its widest cell plus padding, and at least `minwidth`.
/// The text after a line's last tab is not part of any column.
#[derive(Debug, Clone)]
pub struct TabWriter {
    minwidth: usize,
    tabwidth: usize,
    padding: usize,
    padchar: char,
    lines: Vec<Vec<Cell>>,
    cell: Cell,
    widths: Vec<usize>,
    out: String,
}

impl TabWriter {
    pub fn new(minwidth: usize, tabwidth: usize, padding: usize, padchar: char) -> Self {
        TabWriter {
            minwidth,
            tabwidth,
            padding,
            padchar,
            lines: vec![vec![]],
            cell: Cell::default(),
            widths: vec![],
            out: String::new(),
        }
    }

    /// `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`, as docker's tables use.
    pub fn docker() -> Self {
        Self::new(10, 1, 3, ' ')
    }

    pub fn write(&mut self, text: &str) {
        for c in text.chars() {
            match c {
                '\t' | '\x0b' | '\n' | '\x0c' => {
                    let ncells = self.terminate_cell(c == '\t');
                    if c == '\n' || c == '\x0c' {
                        self.lines.push(vec![]);
                        // A one-cell line ends every column, so what came
                        // before can be laid out now.
                        if c == '\x0c' || ncells == 1 {
                            self.flush_lines();
                        }
                    }
                }
                c => {
                    self.cell.text.push(c);
                    self.cell.width += char_width(c);
                }
            }
        }
    }

    /// Lays out everything written so far and returns all output.
    pub fn flush(&mut self) -> String {
        self.flush_lines();
        std::mem::take(&mut self.out)
    }

    fn terminate_cell(&mut self, htab: bool) -> usize {
        let mut cell = std::mem::take(&mut self.cell);
        cell.htab = htab;
        let line = self.lines.last_mut().unwrap();
        line.push(cell);
        line.len()
    }

    fn flush_lines(&mut self) {
        if !self.cell.text.is_empty() {
            self.terminate_cell(false);
        }
        let n = self.lines.len();
        self.format(0, n);
        self.lines = vec![vec![]];
        self.widths.clear();
    }

    fn format(&mut self, mut line0: usize, line1: usize) {
        let column = self.widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            self.write_lines(line0, this);
            line0 = this;
            let mut width = self.minwidth;
            while this < line1 && column + 1 < self.lines[this].len() {
                width = width.max(self.lines[this][column].width + self.padding);
                this += 1;
            }
            self.widths.push(width);
            self.format(line0, this);
            self.widths.pop();
            line0 = this;
        }
        self.write_lines(line0, line1);
    }

    fn write_lines(&mut self, line0: usize, line1: usize) {
        for i in line0..line1 {
            for (j, c) in self.lines[i].iter().enumerate() {
                self.out.push_str(&c.text);
                if let Some(&w) = self.widths.get(j) {
                    let pad = w.saturating_sub(c.width);
                    if self.padchar == '\t' {
                        let tw = self.tabwidth.max(1);
                        let cellw = w.div_ceil(tw) * tw;
                        let n = cellw.saturating_sub(c.width);
                        self.out.push_str(&"\t".repeat(n.div_ceil(tw)));
                    } else {
                        self.out.extend(std::iter::repeat_n(self.padchar, pad));
                    }
                }
            }
            // The last buffered line has no newline yet; its pending cell
            // text (if any) was already terminated into the line by flush.
            if i + 1 < self.lines.len() {
                self.out.push('\n');
            }
        }
    }
}

/// Terminal columns taken by `c`, like go-runewidth: 0 for combining and
/// zero-width characters, 2 for East Asian wide/fullwidth and emoji.
pub fn char_width(c: char) -> usize {
    let u = c as u32;
    let zero = [
        (0x0300, 0x036F),
        (0x0483, 0x0489),
        (0x0591, 0x05BD),
        (0x0610, 0x061A),
        (0x064B, 0x065F),
        (0x1AB0, 0x1AFF),
        (0x1DC0, 0x1DFF),
        (0x200B, 0x200F),
        (0x20D0, 0x20FF),
        (0xFE00, 0xFE0F),
        (0xFE20, 0xFE2F),
    ];
    let wide = [
        (0x1100, 0x115F),
        (0x2E80, 0x303E),
        (0x3041, 0x33FF),
        (0x3400, 0x4DBF),
        (0x4E00, 0x9FFF),
        (0xA000, 0xA4CF),
        (0xAC00, 0xD7A3),
        (0xF900, 0xFAFF),
        (0xFE30, 0xFE4F),
        (0xFF00, 0xFF60),
        (0xFFE0, 0xFFE6),
        (0x1F300, 0x1F64F),
        (0x1F900, 0x1F9FF),
        (0x20000, 0x3FFFD),
    ];
    let within = |t: &[(u32, u32)]| t.iter().any(|&(a, b)| (a..=b).contains(&u));
    if u < 0x20 || (0x7F..0xA0).contains(&u) || within(&zero) {
        0
    } else if within(&wide) {
        2
    } else {
        1
    }
}
