//! Which request paths may reach which files: only files inside the store.
//!
//! Two independent fences. First every segment of the request path is decoded
//! and judged on its own: nothing that could climb (`..`), hide (`.x`, the
//! store's temporary files), smuggle a separator (`/`, `\`, NUL once
//! decoded) or a second layer of encoding (`%`) gets through. Then the joined
//! path is canonicalized and must still lie inside the canonical store, which
//! catches what the first fence cannot see: a symlink in the store that points
//! elsewhere.

use std::path::{Path, PathBuf};

/// Decodes the `%XX` escapes of one raw path segment; `None` when an escape is
/// malformed or the bytes are not UTF-8.
pub(super) fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = hex_digit(*bytes.get(i + 1)?)?;
            let lo = hex_digit(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Whether a decoded segment may name a file or folder of the store. A
/// leading dot covers `.` and `..` and the store's temporary files; `%` left
/// after one decoding means the client encoded twice, which no link of ours
/// does.
pub(super) fn segment_ok(seg: &str) -> bool {
    !(seg.is_empty()
        || seg == "."
        || seg == ".."
        || seg.starts_with('.')
        || seg.contains(['/', '\\', '\0', '%']))
}

/// The decoded segments of a raw request path (the part after `/runs/`). One
/// trailing slash is allowed (a folder); anything else refused says why.
pub(super) fn split_segments(raw: &str) -> Result<Vec<String>, String> {
    let raw = raw.strip_suffix('/').unwrap_or(raw);
    raw.split('/')
        .map(|seg| {
            let decoded = percent_decode(seg)
                .ok_or_else(|| "the path has a malformed percent-encoding".to_owned())?;
            if segment_ok(&decoded) {
                Ok(decoded)
            } else {
                Err(format!(
                    "the path segment {decoded:?} is not allowed: no empty, \
                     dot-leading, `\\`, `%` or NUL segments"
                ))
            }
        })
        .collect()
}

/// The real path of `base/segments…` if it exists and lies inside `base`,
/// which must itself be canonical. Canonicalizing resolves every symlink, so
/// one pointing out of `base` lands outside and is refused.
pub(super) fn resolve_inside(base: &Path, segments: &[String]) -> Option<PathBuf> {
    let mut path = base.to_path_buf();
    for seg in segments {
        debug_assert!(segment_ok(seg));
        path.push(seg);
    }
    let real = std::fs::canonicalize(&path).ok()?;
    real.starts_with(base).then_some(real)
}

/// Percent-encodes `s` for one URL path segment or query value: everything
/// but the unreserved characters, so a test named `a b#c` still links right.
pub(super) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The link of a file or folder of a run: `/runs/<test>/<stamp>/<path…>`.
pub(super) fn run_href(test: &str, stamp: &str, rest: &[&str]) -> String {
    let mut href = format!("/runs/{}/{}/", encode(test), encode(stamp));
    let parts: Vec<String> = rest.iter().map(|p| encode(p)).collect();
    href.push_str(&parts.join("/"));
    href
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_refuses_malformed_ones() {
        assert_eq!(percent_decode("a%20b").as_deref(), Some("a b"));
        assert_eq!(percent_decode("%2e%2E").as_deref(), Some(".."));
        assert_eq!(percent_decode("%252e").as_deref(), Some("%2e"));
        assert_eq!(percent_decode("%C3%A9").as_deref(), Some("é"));
        for bad in ["%", "%2", "%zz", "%+1", "%ff"] {
            assert_eq!(percent_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn refuses_every_climbing_or_hidden_segment() {
        for bad in [
            "..",
            "%2e%2e",
            "%2E%2E",
            ".",
            "",
            "..%2f..%2fetc",
            "%2f",
            "a%5cb",
            "..\\..",
            "%00",
            "%252e%252e",
            ".hidden",
            "%2ehidden",
        ] {
            assert!(split_segments(bad).is_err(), "{bad:?} must be refused");
        }
        for bad in [
            "t//s",
            "t/../s",
            "t/s/%2e%2e/%2e%2e/etc/passwd",
            "/etc/passwd",
            "t/s/..%2f..%2f..%2fetc%2fpasswd",
        ] {
            assert!(split_segments(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn splits_plain_paths() {
        assert_eq!(
            split_segments("gc-pause/20261201T173433.788Z/nodes/w1.log").unwrap(),
            ["gc-pause", "20261201T173433.788Z", "nodes", "w1.log"]
        );
        assert_eq!(split_segments("t/s/").unwrap(), ["t", "s"]);
        assert_eq!(split_segments("a%20b/s").unwrap(), ["a b", "s"]);
    }

    #[test]
    fn a_symlink_out_of_the_base_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("store");
        std::fs::create_dir_all(base.join("t/s")).unwrap();
        std::fs::write(base.join("t/s/results.json"), "{}").unwrap();
        std::fs::write(dir.path().join("secret"), "root:x:0:0").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), base.join("t/s/leak")).unwrap();
        std::os::unix::fs::symlink(dir.path(), base.join("t/up")).unwrap();
        std::os::unix::fs::symlink("results.json", base.join("t/s/inside")).unwrap();
        let base = std::fs::canonicalize(&base).unwrap();
        let segs = |p: &str| split_segments(p).unwrap();
        assert_eq!(
            resolve_inside(&base, &segs("t/s/results.json")),
            Some(base.join("t/s/results.json"))
        );
        assert_eq!(resolve_inside(&base, &segs("t/s/leak")), None);
        assert_eq!(resolve_inside(&base, &segs("t/up/secret")), None);
        assert_eq!(resolve_inside(&base, &segs("t/s/missing")), None);
        // A link that stays inside is followed.
        assert_eq!(
            resolve_inside(&base, &segs("t/s/inside")),
            Some(base.join("t/s/results.json"))
        );
        // A sibling folder whose name starts like the base is outside.
        std::fs::create_dir_all(dir.path().join("store2")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("store2"), base.join("t/s2")).unwrap();
        assert_eq!(resolve_inside(&base, &segs("t/s2")), None);
    }

    #[test]
    fn encodes_what_a_path_segment_cannot_hold() {
        assert_eq!(encode("gc-pause_1.x~"), "gc-pause_1.x~");
        assert_eq!(encode("a b/c?d#e&f"), "a%20b%2Fc%3Fd%23e%26f");
        assert_eq!(encode("é"), "%C3%A9");
        assert_eq!(
            run_href("t x", "s", &["nodes", "w1.log"]),
            "/runs/t%20x/s/nodes/w1.log"
        );
        // Decoding what we encode gives the name back.
        assert_eq!(percent_decode(&encode("a b%c")).as_deref(), Some("a b%c"));
    }
}
