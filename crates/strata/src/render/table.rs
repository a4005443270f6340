//! Column-aligned tables shaped like Docker's (Go tabwriter: min width 10, padding 3).

/// Collects rows, then renders them with every column but the last padded.
pub(crate) struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|s| s.to_string()).collect()],
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn render(&self) -> String {
        const MIN_WIDTH: usize = 10;
        const PADDING: usize = 3;
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let width = (widths[i] + PADDING).max(MIN_WIDTH);
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_like_docker_images() {
        let mut t = Table::new(&["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]);
        t.row(
            [
                "busybox",
                "local",
                "5b235cf2573d",
                "4 minutes ago",
                "1.98MB",
            ]
            .map(String::from)
            .to_vec(),
        );
        assert_eq!(
            t.render(),
            "REPOSITORY   TAG       IMAGE ID       CREATED         SIZE\n\
             busybox      local     5b235cf2573d   4 minutes ago   1.98MB\n"
        );
    }
}
