//! The expression parser: what a placeholder holds (`payload.id`, `state.x[payload.id]`,
//! `'text'`, `a ?? b`), with errors that say what is wrong and suggest the root meant.

use serde_json::Value;

use super::{Expr, Path, Root, Segment};
use crate::parse_errors::suggest;

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

pub(super) fn parse_expr(src: &str) -> Result<Expr, String> {
    let mut p = Parser { src, pos: 0 };
    let expr = p.coalesce()?;
    p.skip_ws();
    if p.pos != src.len() {
        return Err(format!("unexpected `{}`", &src[p.pos..]));
    }
    Ok(expr)
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.src.len() - trimmed.len();
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn coalesce(&mut self) -> Result<Expr, String> {
        let mut alts = vec![self.term()?];
        while self.eat("??") {
            alts.push(self.term()?);
        }
        Ok(if alts.len() == 1 { alts.pop().expect("one alternative") } else { Expr::Coalesce(alts) })
    }

    fn term(&mut self) -> Result<Expr, String> {
        self.skip_ws();
        let rest = self.rest();
        if rest.is_empty() {
            return Err("expected an expression".into());
        }
        if let Some(stripped) = rest.strip_prefix('\'') {
            let end = stripped.find('\'').ok_or("unclosed quote")?;
            let text = stripped[..end].to_string();
            self.pos += end + 2;
            return Ok(Expr::Literal(Value::String(text)));
        }
        let first = rest.chars().next().expect("not empty");
        if first.is_ascii_digit() || first == '-' {
            let len = rest
                .find(|c: char| !(c.is_ascii_digit() || matches!(c, '-' | '.' | 'e' | 'E' | '+')))
                .unwrap_or(rest.len());
            let number: Value =
                serde_json::from_str(&rest[..len]).map_err(|_| format!("`{}` is not a number", &rest[..len]))?;
            self.pos += len;
            return Ok(Expr::Literal(number));
        }
        let name = self.ident()?;
        match name.as_str() {
            "null" => return Ok(Expr::Literal(Value::Null)),
            "true" => return Ok(Expr::Literal(Value::Bool(true))),
            "false" => return Ok(Expr::Literal(Value::Bool(false))),
            _ => {}
        }
        let root = Root::from_name(&name).ok_or_else(|| {
            let known: Vec<_> = Root::ALL.iter().map(|r| r.name()).collect();
            let hint = suggest::did_you_mean(suggest::closest(&name, known.iter().copied()));
            format!("unknown variable `{name}` (known: {}){hint}", known.join(", "))
        })?;
        let mut segments = Vec::new();
        loop {
            if self.rest().starts_with('.') {
                self.pos += 1;
                segments.push(Segment::Field(self.ident()?));
            } else if self.rest().starts_with('[') {
                self.pos += 1;
                let inner = self.coalesce()?;
                if !self.eat("]") {
                    return Err("expected `]`".into());
                }
                segments.push(Segment::Index(Box::new(inner)));
            } else {
                break;
            }
        }
        Ok(Expr::Path(Path { root, segments }))
    }

    fn ident(&mut self) -> Result<String, String> {
        let rest = self.rest();
        let len = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-')).unwrap_or(rest.len());
        if len == 0 {
            return Err(format!("expected a name at `{rest}`"));
        }
        let name = rest[..len].to_string();
        self.pos += len;
        Ok(name)
    }
}
