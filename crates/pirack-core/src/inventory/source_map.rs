//! Where each value sits in a YAML file, so a problem found after deserialising can
//! still name its line and column. serde's YAML deserialiser keeps no positions, so the
//! file is read a second time as events, recording the start of every node under a
//! path such as `slots[3].port`.

use saphyr_parser::{Event, Parser};
use std::collections::HashMap;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// Path → location of every node in one YAML document.
#[derive(Debug, Default)]
pub struct SourceMap {
    nodes: HashMap<String, Location>,
}

enum Frame {
    Seq { path: String, next: usize },
    Map { path: String, key: Option<String> },
}

impl SourceMap {
    /// Builds the map; for a file that does not parse, the map stops at the error
    /// (the deserialiser reports the syntax error itself, with its position).
    pub fn build(text: &str) -> SourceMap {
        let mut map = SourceMap::default();
        let mut stack: Vec<Frame> = Vec::new();
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else { break };
            let at = Location {
                line: span.start.line(),
                column: span.start.col() + 1,
            };
            match event {
                Event::Scalar(value, ..) => {
                    if let Some(Frame::Map {
                        key: key @ None, ..
                    }) = stack.last_mut()
                    {
                        *key = Some(value.into_owned());
                        continue;
                    }
                    if let Some(path) = child_path(&mut stack) {
                        map.nodes.insert(path, at);
                    }
                }
                Event::Alias(_) => {
                    if let Some(path) = child_path(&mut stack) {
                        map.nodes.insert(path, at);
                    }
                }
                Event::SequenceStart(..) | Event::MappingStart(..) => {
                    // A collection used as a mapping key gets no path of its own.
                    let path = child_path(&mut stack).unwrap_or_default();
                    map.nodes.insert(path.clone(), at);
                    stack.push(match event {
                        Event::SequenceStart(..) => Frame::Seq { path, next: 0 },
                        _ => Frame::Map { path, key: None },
                    });
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    stack.pop();
                }
                _ => {}
            }
        }
        map
    }

    /// The location of `path`, or of its nearest ancestor that exists (a missing
    /// field is reported where its parent is).
    pub fn locate(&self, path: &str) -> Location {
        let mut p = path;
        loop {
            if let Some(at) = self.nodes.get(p) {
                return *at;
            }
            match p.rfind(['.', '[']) {
                Some(cut) => p = &p[..cut],
                None => return self.nodes.get("").copied().unwrap_or_default(),
            }
        }
    }
}

/// Path of the node about to start inside the innermost open collection, advancing
/// that collection to its next entry.
fn child_path(stack: &mut [Frame]) -> Option<String> {
    match stack.last_mut() {
        None => Some(String::new()),
        Some(Frame::Seq { path, next }) => {
            let p = format!("{path}[{next}]");
            *next += 1;
            Some(p)
        }
        Some(Frame::Map { path, key }) => key.take().map(|k| {
            if path.is_empty() {
                k
            } else {
                format!("{path}.{k}")
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_values() {
        let text = "site:\n  name: x\nslots:\n  - position: A-01\n    port: 1\n  - {position: A-02, port: 2}\n";
        let map = SourceMap::build(text);
        assert_eq!(map.locate("site.name"), Location { line: 2, column: 9 });
        assert_eq!(
            map.locate("slots[0].port"),
            Location {
                line: 5,
                column: 11
            }
        );
        assert_eq!(
            map.locate("slots[1].port"),
            Location {
                line: 6,
                column: 28
            }
        );
        // Missing field: reported at its parent.
        assert_eq!(map.locate("slots[1].vlan"), Location { line: 6, column: 5 });
    }

    #[test]
    fn broken_yaml_keeps_what_came_before_the_error() {
        let map = SourceMap::build("a: [1, 2\n  b: }");
        assert_eq!(map.locate("a"), Location { line: 1, column: 4 });
        assert_eq!(map.locate("zzz"), Location { line: 1, column: 1 });
    }
}
