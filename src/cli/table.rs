//! Tables for people: each column as wide as its widest cell, and on a
//! terminal too narrow for that, the columns that can give way cut to fit
//! (ending in `…`) so a row stays one line.

use std::io::IsTerminal;

/// The terminal's width, if standard output is one.
fn terminal_width() -> Option<usize> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    // SAFETY: TIOCGWINSZ fills the winsize it is given and nothing else.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

/// The column widths for `rows` under `header` within `limit` characters:
/// the `squeeze` columns, widest first, give way down to their header's width.
fn widths(
    header: &[&str],
    rows: &[Vec<String>],
    squeeze: &[usize],
    limit: Option<usize>,
) -> Vec<usize> {
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            w[i] = w[i].max(cell.chars().count());
        }
    }
    let Some(limit) = limit else { return w };
    let total = |w: &[usize]| w.iter().sum::<usize>() + w.len().saturating_sub(1);
    while total(&w) > limit {
        let Some(&i) = squeeze
            .iter()
            .filter(|&&i| w[i] > header[i].chars().count().max(4))
            .max_by_key(|&&i| w[i])
        else {
            break;
        };
        w[i] -= 1;
    }
    w
}

fn cell(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return format!("{text:<width$}");
    }
    let cut: String = text.chars().take(width.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// The table as lines, the last column left unpadded.
fn lines(header: &[&str], rows: &[Vec<String>], w: &[usize]) -> Vec<String> {
    let line = |cells: Vec<&str>| {
        let n = cells.len();
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == n {
                    cell(c, w[i]).trim_end().to_string()
                } else {
                    cell(c, w[i])
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    std::iter::once(line(header.to_vec()))
        .chain(
            rows.iter()
                .map(|r| line(r.iter().map(String::as_str).collect())),
        )
        .collect()
}

/// Prints the table to fit the terminal (whole when not on one).
pub fn print(header: &[&str], rows: &[Vec<String>], squeeze: &[usize]) {
    let w = widths(header, rows, squeeze, terminal_width());
    for l in lines(header, rows, &w) {
        println!("{l}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_their_cells_and_give_way_on_a_narrow_terminal() {
        let header = ["SLOT", "OWNER", "IMAGE"];
        let rows = vec![
            vec![
                "A-01".into(),
                "acme-industries".into(),
                "raspios-lite-2026-11".into(),
            ],
            vec!["A-02".into(), "-".into(), "-".into()],
        ];
        let wide = widths(&header, &rows, &[1, 2], None);
        assert_eq!(wide, [4, 15, 20]);
        let out = lines(&header, &rows, &wide);
        assert_eq!(out[1], "A-01 acme-industries raspios-lite-2026-11");
        let narrow = widths(&header, &rows, &[1, 2], Some(30));
        assert_eq!(narrow.iter().sum::<usize>() + 2, 30);
        let out = lines(&header, &rows, &narrow);
        assert!(out.iter().all(|l| l.chars().count() <= 30), "{out:?}");
        assert!(out[1].contains('…'), "{out:?}");
    }
}
