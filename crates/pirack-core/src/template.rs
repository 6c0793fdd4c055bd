//! `{name}` placeholder templates for interface, root and host names. Checked once
//! against the placeholders a field allows, so rendering cannot fail later.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

impl Template {
    /// Parses `source`, accepting only the placeholders in `allowed`.
    pub fn parse(source: &str, allowed: &[&str]) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let Some(close) = rest[open..].find('}') else {
                return Err(format!("unclosed `{{` in template `{source}`"));
            };
            let name = &rest[open + 1..open + close];
            if !allowed.contains(&name) {
                return Err(format!(
                    "unknown placeholder `{{{name}}}` in `{source}`; allowed: {}",
                    allowed
                        .iter()
                        .map(|a| format!("{{{a}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            parts.push(Part::Var(name.to_string()));
            rest = &rest[open + close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("stray `}}` in template `{source}`"));
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template {
            source: source.to_string(),
            parts,
        })
    }

    /// Whether the template uses placeholder `name`.
    pub fn uses(&self, name: &str) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Var(v) if v == name))
    }

    /// Fills the placeholders; `value` is only asked for names the template allowed.
    pub fn render(&self, value: impl Fn(&str) -> String) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.clone(),
                Part::Var(v) => value(v),
            })
            .collect()
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_rejects() {
        let t = Template::parse("{trunk}.{vlan}", &["trunk", "vlan"]).unwrap();
        assert!(t.uses("vlan"));
        assert_eq!(
            t.render(|v| if v == "trunk" {
                "eth0".into()
            } else {
                "10".into()
            }),
            "eth0.10"
        );
        assert!(
            Template::parse("{nope}", &["vlan"])
                .unwrap_err()
                .contains("unknown")
        );
        assert!(
            Template::parse("a{vlan", &["vlan"])
                .unwrap_err()
                .contains("unclosed")
        );
        assert!(
            Template::parse("a}b", &["vlan"])
                .unwrap_err()
                .contains("stray")
        );
    }
}
