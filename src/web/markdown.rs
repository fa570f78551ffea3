//! Model answers as HTML: CommonMark with tables (pulldown-cmark), then sanitized (ammonia) so
//! that nothing a model writes can run in the page: no scripts, no event handlers, links only to
//! http(s) and mail addresses.

use std::collections::HashSet;
use std::sync::LazyLock;

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut cleaner = ammonia::Builder::default();
    cleaner.url_schemes(HashSet::from(["http", "https", "mailto"])).link_rel(Some("noopener noreferrer nofollow"));
    // A list cut while streaming restarts at its number.
    cleaner.add_tag_attributes("ol", ["start"]);
    // No images: each would be a request to wherever a model pointed it.
    cleaner.rm_tags(["img"]);
    cleaner
});

/// `source` (Markdown from a model) as sanitized HTML. Headings move two levels down: the
/// page already has its own h1 and h2 around an answer.
pub fn render(source: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(source, options).map(|event| match event {
        Event::Start(Tag::Heading { level, id, classes, attrs }) => {
            Event::Start(Tag::Heading { level: lower(level), id, classes, attrs })
        }
        Event::End(TagEnd::Heading(level)) => Event::End(TagEnd::Heading(lower(level))),
        // A model's HTML is shown as it wrote it, never as markup.
        Event::Html(html) | Event::InlineHtml(html) => Event::Text(html),
        other => other,
    });
    let mut html = String::with_capacity(source.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events);
    CLEANER.clean(&html).to_string()
}

fn lower(level: HeadingLevel) -> HeadingLevel {
    match level {
        HeadingLevel::H1 => HeadingLevel::H3,
        HeadingLevel::H2 => HeadingLevel::H4,
        HeadingLevel::H3 => HeadingLevel::H5,
        _ => HeadingLevel::H6,
    }
}

/// Plain text made safe to put in HTML, as the page templates escape it.
pub fn escape_text(text: &str) -> String {
    askama::filters::escape(text, askama::filters::Html).map(|safe| safe.to_string()).unwrap_or_default()
}

/// An answer rendered while it streams: blocks that are complete (ended by a blank line outside
/// a code fence) are rendered once and kept; only the block still being written is rendered
/// again, so the work and the bytes sent grow with the answer, not with its square.
#[derive(Default)]
pub struct Streaming {
    text: String,
    /// Bytes of `text` already rendered as complete blocks; always at a line start, outside a fence.
    committed: usize,
}

/// What changed after a delta: blocks to append for good, and the block still being written.
pub struct Rendered {
    pub complete: Option<String>,
    pub tail: String,
}

impl Streaming {
    pub fn push(&mut self, delta: &str) -> Rendered {
        self.text.push_str(delta);
        let boundary = self.committed + last_block_end(&self.text[self.committed..]);
        let complete = (boundary > self.committed).then(|| render(&self.text[self.committed..boundary]));
        self.committed = boundary;
        Rendered { complete, tail: render(&self.text[self.committed..]) }
    }

    /// The whole answer rendered at once, which may differ from the pieces (a list with blank
    /// lines between its items, a reference link defined further down).
    pub fn finish(&self) -> String {
        render(&self.text)
    }
}

/// The end of the last blank line in `text` that lies outside a code fence and follows some
/// content; 0 when there is none.
fn last_block_end(text: &str) -> usize {
    let mut fence: Option<&str> = None;
    let mut content = false;
    let mut end = 0;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        at += line.len();
        if !line.ends_with('\n') {
            break; // still being written
        }
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => fence = Some(m),
            (Some(open), Some(m)) if open == m => fence = None,
            _ => {}
        }
        if fence.is_none() && trimmed.trim().is_empty() {
            if content {
                end = at;
            }
            content = false;
        } else {
            content = true;
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_links_quotes_and_code_render() {
        let html = render(
            "| a | b |\n|---|---|\n| 1 | 2 |\n\n> quoted\n\n[site](https://example.org)\n\n```python\nx = 1 < 2\n```",
        );
        for part in [
            "<table>",
            "<td>1</td>",
            "<blockquote>",
            "href=\"https://example.org\"",
            "rel=\"noopener noreferrer nofollow\"",
            "x = 1 &lt; 2",
        ] {
            assert!(html.contains(part), "{part} in {html}");
        }
    }

    #[test]
    fn nothing_a_model_writes_can_run() {
        let html = render(
            "<script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1)) <a href=\"data:text/html,hi\">d</a>",
        );
        for bad in ["<script", "<img", "<a href=\"javascript:", "<a href=\"data:"] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
    }

    #[test]
    fn streaming_keeps_complete_blocks_and_rerenders_only_the_tail() {
        let mut answer = Streaming::default();
        let first = answer.push("# Title\n\nSome ");
        assert_eq!(first.complete.as_deref(), Some("<h3>Title</h3>\n"));
        assert_eq!(first.tail, "<p>Some</p>\n");
        let second = answer.push("text\n\n```py\na = 1\n\nb = 2\n");
        assert_eq!(second.complete.as_deref(), Some("<p>Some text</p>\n"));
        assert!(second.tail.starts_with("<pre><code>a = 1\n\nb = 2"), "a blank line inside a fence does not cut it");
        let third = answer.push("```\n\nDone.");
        assert!(third.complete.unwrap().contains("b = 2"));
        assert_eq!(third.tail, "<p>Done.</p>\n");
        assert_eq!(answer.finish(), render("# Title\n\nSome text\n\n```py\na = 1\n\nb = 2\n```\n\nDone."));
    }
}
