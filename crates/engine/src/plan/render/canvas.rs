//! The text of a human plan as it is drawn: lines placed in Terraform's
//! columns, with the action symbols coloured only when colour was asked for.
//! It knows nothing of plans; `diff` and `human` decide what to draw.

const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const RED: &str = "\x1b[31m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// The text being built, and whether it may carry ANSI colour.
pub(super) struct Canvas {
    pub text: String,
    pub color: bool,
}

impl Canvas {
    pub fn new(color: bool) -> Self {
        Canvas { text: String::new(), color }
    }

    /// A line whose action symbol sits in the symbol column of `depth`:
    /// column 2 for a resource, 6 for its attributes, 4 more per level.
    /// Longer symbols (`-/+`) grow to the left, as in Terraform.
    pub fn symbol_line(&mut self, depth: usize, symbol: &str, text: &str) {
        let end = 3 + 4 * depth;
        self.spaces(end.saturating_sub(symbol.len()));
        self.symbol(symbol);
        self.text.push(' ');
        self.text.push_str(text);
        self.text.push('\n');
    }

    /// A line without a symbol, starting at `column`.
    pub fn plain_line(&mut self, column: usize, text: &str) {
        self.spaces(column);
        self.text.push_str(text);
        self.text.push('\n');
    }

    /// A `# comment` line at `column`, bold when coloured (Terraform makes
    /// the headline of each change stand out this way).
    pub fn headline(&mut self, column: usize, text: &str) {
        self.spaces(column);
        if self.color {
            self.text.push_str(BOLD);
            self.text.push_str(text);
            self.text.push_str(RESET);
        } else {
            self.text.push_str(text);
        }
        self.text.push('\n');
    }

    pub fn blank(&mut self) {
        self.text.push('\n');
    }

    /// Writes an action symbol, each of its `+`, `~`, `-` in its colour.
    pub fn symbol(&mut self, symbol: &str) {
        for ch in symbol.chars() {
            let paint = match ch {
                '+' => GREEN,
                '~' => YELLOW,
                '-' => RED,
                _ => "",
            };
            if self.color && !paint.is_empty() {
                self.text.push_str(paint);
                self.text.push(ch);
                self.text.push_str(RESET);
            } else {
                self.text.push(ch);
            }
        }
    }

    fn spaces(&mut self, n: usize) {
        self.text.extend(std::iter::repeat_n(' ', n));
    }
}
