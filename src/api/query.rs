//! Query-string parsing with upstream's array conventions: `f[0]=a&f[1]=b` (sorted by index,
//! and winning over the other forms), `f[]=a&f[]=b`, or repeated `f=a&f=b`.

/// Decodes `%XX` escapes (and `+` as space when `plus_is_space`). Invalid escapes stay as-is.
pub fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The decoded `(key, value)` pairs of a query string, in order.
#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(k, true), percent_decode(v, true))
            })
            .collect();
        Query { pairs }
    }

    /// The first value of a plain key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value given for an array parameter, in upstream's precedence.
    pub fn array(&self, key: &str) -> Vec<String> {
        let mut indexed: Vec<(u64, String)> = self
            .pairs
            .iter()
            .filter_map(|(k, v)| {
                let inner = k.strip_prefix(key)?.strip_prefix('[')?.strip_suffix(']')?;
                let index = inner.parse::<u64>().ok()?;
                Some((index, v.clone()))
            })
            .collect();
        if !indexed.is_empty() {
            indexed.sort_by_key(|(i, _)| *i);
            return indexed.into_iter().map(|(_, v)| v).collect();
        }
        let bracketed = format!("{key}[]");
        self.pairs
            .iter()
            .filter(|(k, _)| *k == bracketed || k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Keys of the form `name[op]`, as `(op, value)`.
    pub fn operators(&self, name: &str) -> Vec<(String, String)> {
        self.pairs
            .iter()
            .filter_map(|(k, v)| {
                let op = k.strip_prefix(name)?.strip_prefix('[')?.strip_suffix(']')?;
                Some((op.to_string(), v.clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes() {
        assert_eq!(percent_decode("a%20b+c", true), "a b c");
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(percent_decode("100%", true), "100%");
        assert_eq!(percent_decode("%zz", true), "%zz");
    }

    #[test]
    fn array_forms() {
        let q = Query::parse(Some("t[1]=b&t[0]=a&t=z&t[]=y"));
        assert_eq!(q.array("t"), vec!["a", "b"]);
        let q = Query::parse(Some("t[]=y&t=z"));
        assert_eq!(q.array("t"), vec!["y", "z"]);
        assert!(Query::parse(None).array("t").is_empty());
    }

    #[test]
    fn operators_and_plain_values() {
        let q = Query::parse(Some("time%5Bgte%5D=2024-01-01&limit=5"));
        assert_eq!(
            q.operators("time"),
            vec![("gte".into(), "2024-01-01".into())]
        );
        assert_eq!(q.get("limit"), Some("5"));
    }
}
