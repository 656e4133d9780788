//! Building [`Node`] trees from `saphyr-parser` events.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError};

use super::{Node, NodeKind, Scalar, is_plain_null};
use crate::diag::Diagnostic;
use crate::source::{FileId, Span};

/// How many nodes alias expansion may create in one file, in total. Aliases are expanded into
/// copies, so a "billion laughs" document (each anchor aliasing the previous one ten times)
/// would otherwise take exponential memory. Half a million nodes is far more than any real
/// manifest shares through anchors.
pub use crate::limits::MAX_ALIAS_EXPANSION;
use crate::limits::{MAX_YAML_DEPTH, MAX_YAML_NODES};

/// Parses a YAML stream into one [`Node`] per document, with every diagnostic found.
///
/// A syntax error stops the parse (the parser cannot resynchronise); documents completed
/// before it are still returned, so that callers can report problems in them too. An empty
/// document (`---` followed by nothing) is a [`NodeKind::Null`] root.
pub fn parse_stream(file: FileId, text: &str) -> (Vec<Node>, Vec<Diagnostic>) {
    let mut budget = MAX_YAML_NODES;
    parse_stream_within(file, text, &mut budget)
}

/// [`parse_stream`] with a budget of YAML nodes shared by every file of one scenario: each
/// node built (alias copies included) takes one, and the parse stops with a located error
/// when none is left, so that memory stays proportional to the cap, not to the input.
pub fn parse_stream_within(
    file: FileId,
    text: &str,
    budget: &mut usize,
) -> (Vec<Node>, Vec<Diagnostic>) {
    let mut b = Builder {
        budget: *budget,
        stop: false,
        file,
        pos: Positions::new(text),
        stack: Vec::new(),
        root: None,
        anchors: HashMap::new(),
        expanded: 0,
        expansion_reported: false,
        docs: Vec::new(),
        diags: Vec::new(),
    };
    let mut parser = Parser::new_from_str(text);
    while let Some(next) = parser.next_event() {
        match next {
            Err(e) => {
                b.scan_error(&e, text);
                break;
            }
            Ok((event, span)) => b.event(event, span),
        }
        if b.stop {
            break;
        }
    }
    *budget = b.budget;
    (b.docs, b.diags)
}

/// Converts saphyr's character indices into byte offsets. ASCII files (nearly all of them)
/// need no table.
struct Positions {
    /// Byte offset of every character, plus one entry for the end; `None` for ASCII text.
    table: Option<Vec<usize>>,
    len: usize,
}

impl Positions {
    fn new(text: &str) -> Self {
        let table = if text.is_ascii() {
            None
        } else {
            let mut t: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
            t.push(text.len());
            Some(t)
        };
        Positions {
            table,
            len: text.len(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        match &self.table {
            None => char_index.min(self.len),
            Some(t) => t.get(char_index).copied().unwrap_or(self.len),
        }
    }
}

enum Frame {
    Seq {
        start: Span,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        start: Span,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        /// Values of `<<` merge keys, applied when the map ends.
        merges: Vec<Node>,
        /// Key text to entry index, built once a map grows past a few keys so that duplicate
        /// detection stays linear in the size of big maps (labels, sysctls).
        index: Option<HashMap<String, usize>>,
    },
}

struct Builder {
    /// YAML nodes this parse may still build (see [`parse_stream_within`]).
    budget: usize,
    /// Set when a cap was hit: the parse ends there.
    stop: bool,
    file: FileId,
    pos: Positions,
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: HashMap<usize, (Node, usize)>,
    expanded: usize,
    expansion_reported: bool,
    docs: Vec<Node>,
    diags: Vec<Diagnostic>,
}

impl Builder {
    fn span(&self, s: saphyr_parser::Span) -> Span {
        Span {
            file: self.file,
            start: self.pos.byte(s.start.index()),
            end: self.pos.byte(s.end.index()),
            line: s.start.line() as u32,
            col: s.start.col() as u32 + 1,
        }
    }

    /// Takes `n` nodes from the budget; `false` (after reporting it) when there are not that
    /// many left.
    fn take(&mut self, n: usize, span: Span) -> bool {
        if n <= self.budget {
            self.budget -= n;
            return true;
        }
        self.diags.push(
            Diagnostic::error(
                span,
                format!("the scenario's files hold more than {MAX_YAML_NODES} YAML values"),
            )
            .with_label("knetsim stopped reading here")
            .with_help(
                "generate large clusters with `count:` (nodes) and `generate:` (objects) instead of writing every value out",
            ),
        );
        self.stop = true;
        false
    }

    /// Opens a collection unless it would nest deeper than [`MAX_YAML_DEPTH`].
    fn open(&mut self, span: Span) -> bool {
        if self.stack.len() >= MAX_YAML_DEPTH {
            self.diags.push(
                Diagnostic::error(
                    span,
                    format!("YAML nested deeper than {MAX_YAML_DEPTH} levels"),
                )
                .with_label("knetsim stopped reading here"),
            );
            self.stop = true;
            return false;
        }
        self.take(1, span)
    }

    fn event(&mut self, event: Event<'_>, raw: saphyr_parser::Span) {
        let span = self.span(raw);
        match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd => {}
            Event::DocumentStart(_) => self.root = None,
            Event::DocumentEnd => {
                let root = self.root.take().unwrap_or(Node {
                    kind: NodeKind::Null,
                    span,
                });
                self.docs.push(root);
            }
            Event::Alias(id) => {
                let node = self.expand_alias(id, span);
                self.push(node);
            }
            Event::Scalar(value, style, anchor, tag) => {
                if !self.take(1, span) {
                    return;
                }
                let forced_string = tag
                    .as_ref()
                    .is_some_and(|t| t.is_yaml_core_schema() && t.suffix == "str");
                let plain = style == ScalarStyle::Plain && !forced_string;
                let kind = if plain && is_plain_null(&value) {
                    NodeKind::Null
                } else {
                    NodeKind::Scalar(Scalar {
                        text: value.into_owned(),
                        quoted: !plain,
                    })
                };
                let node = Node { kind, span };
                self.register(anchor, &node);
                self.push(node);
            }
            Event::SequenceStart(anchor, _) => {
                if self.open(span) {
                    self.stack.push(Frame::Seq {
                        start: span,
                        anchor,
                        items: Vec::new(),
                    })
                }
            }
            Event::MappingStart(anchor, _) if self.open(span) => self.stack.push(Frame::Map {
                start: span,
                anchor,
                entries: Vec::new(),
                key: None,
                merges: Vec::new(),
                index: None,
            }),
            Event::MappingStart(..) => {}
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    // The parser never ends a collection it did not start.
                    return;
                };
                let (node, anchor) = self.finish(frame, span);
                self.register(anchor, &node);
                self.push(node);
            }
        }
    }

    /// Closes a collection. Its span runs from its start to the end of its last child, or to
    /// the closing bracket of a flow collection (whose end event has a non-empty span); block
    /// collections end where the next token starts, which may be lines further down.
    fn finish(&mut self, frame: Frame, end: Span) -> (Node, usize) {
        match frame {
            Frame::Seq {
                start,
                anchor,
                items,
            } => {
                let last = items.last().map(|n| n.span.end);
                let span = close(start, end, last);
                (
                    Node {
                        kind: NodeKind::Seq(items),
                        span,
                    },
                    anchor,
                )
            }
            Frame::Map {
                start,
                anchor,
                mut entries,
                key,
                merges,
                ..
            } => {
                if let Some(k) = key {
                    // A key without a value cannot come out of the parser, but keep it rather
                    // than lose it.
                    let span = k.span;
                    entries.push((
                        k,
                        Node {
                            kind: NodeKind::Null,
                            span,
                        },
                    ));
                }
                if !merges.is_empty() {
                    self.apply_merges(&mut entries, merges);
                }
                let last = entries.last().map(|(_, v)| v.span.end.max(v.span.start));
                let span = close(start, end, last);
                (
                    Node {
                        kind: NodeKind::Map(entries),
                        span,
                    },
                    anchor,
                )
            }
        }
    }

    /// YAML merge keys (`<<: *base` or `<<: [*a, *b]`): keys written in the map win over merged
    /// ones, and earlier merged maps win over later ones. Kubernetes' YAML decoder supports
    /// them, so manifests in the wild use them.
    fn apply_merges(&mut self, entries: &mut Vec<(Node, Node)>, merges: Vec<Node>) {
        let mut sources: Vec<Node> = Vec::new();
        for m in merges {
            match m.kind {
                NodeKind::Map(_) => sources.push(m),
                NodeKind::Seq(items) => {
                    for item in items {
                        if matches!(item.kind, NodeKind::Map(_)) {
                            sources.push(item);
                        } else {
                            self.diags.push(
                                Diagnostic::error(item.span, "expected a map to merge with `<<`")
                                    .with_label(format!("found {}", item.describe())),
                            );
                        }
                    }
                }
                _ => self.diags.push(
                    Diagnostic::error(
                        m.span,
                        "expected a map (or a list of maps) to merge with `<<`",
                    )
                    .with_label(format!("found {}", m.describe())),
                ),
            }
        }
        let mut present: std::collections::HashSet<String> = entries
            .iter()
            .filter_map(|(k, _)| k.scalar_text().map(str::to_string))
            .collect();
        for src in sources {
            if let NodeKind::Map(src_entries) = src.kind {
                for (k, v) in src_entries {
                    if let Some(t) = k.scalar_text()
                        && present.insert(t.to_string())
                    {
                        entries.push((k, v));
                    }
                }
            }
        }
    }

    fn register(&mut self, anchor: usize, node: &Node) {
        if anchor > 0 {
            self.anchors
                .insert(anchor, (node.clone(), count_nodes(node)));
        }
    }

    fn expand_alias(&mut self, id: usize, span: Span) -> Node {
        let null = Node {
            kind: NodeKind::Null,
            span,
        };
        let Some(&(_, size)) = self.anchors.get(&id) else {
            // saphyr rejects unknown anchors itself; an alias to an anchor we did not record
            // cannot happen, but an empty value is the safe reading.
            return null;
        };
        self.expanded += size;
        if self.expanded > MAX_ALIAS_EXPANSION {
            if !self.expansion_reported {
                self.expansion_reported = true;
                self.diags.push(
                    Diagnostic::error(
                        span,
                        format!(
                            "aliases in this file expand to more than {MAX_ALIAS_EXPANSION} YAML nodes"
                        ),
                    )
                    .with_label("this alias goes over the limit")
                    .with_help(
                        "nested anchors and aliases grow exponentially (a \"billion laughs\" document); write the values out or share fewer",
                    ),
                );
            }
            return null;
        }
        if !self.take(size, span) {
            return null;
        }
        let Some((node, _)) = self.anchors.get(&id) else {
            return null;
        };
        let mut copy = node.clone();
        // The copy keeps the spans of the anchored text (so errors inside it point there), but
        // the alias itself is where the value was used.
        copy.span = span;
        copy
    }

    fn push(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                key: key @ None, ..
            }) => {
                *key = Some(node);
            }
            Some(Frame::Map {
                key: key @ Some(_),
                entries,
                merges,
                index,
                ..
            }) => {
                let k = key.take().expect("matched Some");
                if k.as_scalar().is_some_and(|s| !s.quoted && s.text == "<<") {
                    merges.push(node);
                    return;
                }
                if let Some(text) = k.scalar_text() {
                    let first = match index {
                        Some(ix) => ix.get(text).map(|&i| entries[i].0.span),
                        None => entries
                            .iter()
                            .find(|(e, _)| e.scalar_text() == Some(text))
                            .map(|(e, _)| e.span),
                    };
                    if let Some(first) = first {
                        self.diags.push(
                            Diagnostic::error(k.span, format!("duplicate key `{text}`"))
                                .with_label("defined again here")
                                .with_help(format!("first defined at line {}", first.line)),
                        );
                        return;
                    }
                    if let Some(ix) = index {
                        ix.insert(text.to_string(), entries.len());
                    } else if entries.len() >= 16 {
                        let mut ix: HashMap<String, usize> = entries
                            .iter()
                            .enumerate()
                            .filter_map(|(i, (e, _))| e.scalar_text().map(|t| (t.to_string(), i)))
                            .collect();
                        ix.insert(text.to_string(), entries.len());
                        *index = Some(ix);
                    }
                }
                entries.push((k, node));
            }
        }
    }

    fn scan_error(&mut self, e: &ScanError, text: &str) {
        let m = e.marker();
        let mut start = self.pos.byte(m.index());
        let mut line = m.line() as u32;
        let mut col = m.col() as u32 + 1;
        // When the parser stops at the end of the file or on a blank line (an unclosed
        // bracket or quote), point at the end of the last thing written instead.
        let rest_of_line = text[start..].split('\n').next().unwrap_or("");
        if rest_of_line.trim().is_empty()
            && let Some(last) = text[..start].trim_end().char_indices().next_back()
        {
            start = last.0;
            line = 1 + text[..start].matches('\n').count() as u32;
            let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
            col = 1 + text[line_start..start].chars().count() as u32;
        }
        // Underline the character the parser stopped at, unless it is a line break or the end.
        let end = text[start..]
            .chars()
            .next()
            .filter(|c| *c != '\n' && *c != '\r')
            .map(|c| start + c.len_utf8())
            .unwrap_or(start);
        let span = Span {
            file: self.file,
            start,
            end,
            line,
            col,
        };
        let info = e.info();
        let mut d = Diagnostic::error(span, format!("invalid YAML: {info}"))
            .with_label("the YAML parser stopped here");
        if info.contains("block mapping") {
            d = d.with_help("the keys of one map must start in the same column");
        }
        let line_text = text[..start]
            .rfind('\n')
            .map(|i| &text[i + 1..])
            .unwrap_or(text);
        let line_text = line_text.split('\n').next().unwrap_or("");
        if info.contains("tab") || line_text.starts_with('\t') {
            d = d.with_help("YAML does not allow tabs for indentation; indent with spaces");
        }
        if info.contains("quoted scalar") {
            d = d.with_help("is a quote left unclosed? A quoted string ends at the matching quote");
        }
        self.diags.push(d);
    }
}

fn close(start: Span, end: Span, last_child_end: Option<usize>) -> Span {
    let end_byte = if end.end > end.start {
        end.end
    } else {
        last_child_end.unwrap_or(start.end).max(start.end)
    };
    Span {
        end: end_byte,
        ..start
    }
}

fn count_nodes(n: &Node) -> usize {
    match &n.kind {
        NodeKind::Null | NodeKind::Scalar(_) => 1,
        NodeKind::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        NodeKind::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| count_nodes(k) + count_nodes(v))
                .sum::<usize>()
        }
    }
}
