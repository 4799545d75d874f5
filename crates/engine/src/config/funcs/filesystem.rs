//! Filesystem functions: `abspath basename dirname file fileexists fileset
//! filebase64 pathexpand templatefile`, and the bounded file read that the
//! file hashes (`hash.rs`) share.
//!
//! Relative paths resolve against the calling module's directory
//! (`path.module`, from the [`Context`]); without one, against the working
//! directory. Reads are bounded by [`MAX_FILE_BYTES`] and directory walks
//! by [`MAX_ELEMENTS`] entries. These are the only functions that read
//! files.

use super::{Args, Context, MAX_ELEMENTS, MAX_FILE_BYTES};
use crate::value::Value;
use base64::Engine;
use std::io::Read;
use std::path::{Path, PathBuf};

fn resolve(ctx: &Context, path: &str) -> PathBuf {
    let expanded = expand_home(path);
    let p = Path::new(&expanded);
    match &ctx.module_dir {
        Some(dir) if p.is_relative() => dir.join(p),
        _ => p.to_path_buf(),
    }
}

fn expand_home(path: &str) -> String {
    if path == "~" || path.starts_with("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return format!("{}{}", home.to_string_lossy(), &path[1..]);
        }
    }
    path.to_string()
}

/// Reads a file's bytes, bounded by [`MAX_FILE_BYTES`].
pub(super) fn read_bytes(f: &Args, i: usize) -> Result<Vec<u8>, String> {
    let name = f.string(i)?;
    let path = resolve(f.ctx, &name);
    let encoded = f.ctx.inputs.read(
        format!("file:{}", path.display()),
        || read_from_disk(f, &name, &path).map(|bytes| base64::engine::general_purpose::STANDARD.encode(bytes)),
        String::len,
    )?;
    base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|e| f.error(format!("the record of {name:?} is damaged: {e}")))
}

fn read_from_disk(f: &Args, name: &str, path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => f.error(format!(
            "no file exists at {name:?}; this function works only with files that are distributed as part of the configuration source code"
        )),
        _ => f.error(format!("failed to read {name:?}: {e}")),
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| f.error(format!("failed to read {name:?}: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(f.error(format!("{name:?} is larger than {MAX_FILE_BYTES} bytes; himaplan reads configuration files up to that size")));
    }
    Ok(bytes)
}

fn read_text(f: &Args) -> Result<String, String> {
    let bytes = read_bytes(f, 0)?;
    String::from_utf8(bytes).map_err(|_| {
        f.error(format!(
            "contents of {:?} are not valid UTF-8; use the filebase64 function to obtain the Base64 encoded contents or the other file functions (e.g. filemd5, filesha256) to obtain file hashing results instead",
            f.string(0).unwrap_or_default()
        ))
    })
}

pub(super) fn file(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    read_text(f).map(Value::String)
}

pub(super) fn filebase64(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(read_bytes(f, 0)?)))
}

pub(super) fn fileexists(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    let name = f.string(0)?;
    let path = resolve(f.ctx, &name);
    let exists = f.ctx.inputs.read(
        format!("fileexists:{}", path.display()),
        || match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(true),
            Ok(_) => Err(f.error(format!("{name:?} is not a regular file, but {:?}", "a directory"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(f.error(format!("failed to stat {name:?}: {e}"))),
        },
        |_| 8,
    )?;
    Ok(Value::Bool(exists))
}

/// `templatefile(path, vars)`: renders a file as a template.
pub(super) fn templatefile(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let source = read_text(f)?;
    let vars = match f.arg(1)?.unmarked() {
        Value::Map(m) => m.clone(),
        other => return Err(f.type_error(1, "an object of template variables", other)),
    };
    crate::config::eval::render_template(f.name, &source, &vars, f.ctx)
}

pub(super) fn pathexpand(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    Ok(Value::String(expand_home(&f.str(0)?)))
}

pub(super) fn abspath(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    let p = f.str(0)?;
    let joined = if p.starts_with('/') {
        p.to_string()
    } else {
        let cwd = std::env::current_dir().map_err(|e| f.error(e))?;
        format!("{}/{p}", cwd.display())
    };
    Ok(Value::String(clean(&joined)))
}

/// Go's `filepath.Clean` for slash-separated paths.
pub(crate) fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            p => parts.push(p),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

/// Go's `filepath.Base`.
pub(super) fn basename(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    let p = f.str(0)?;
    let trimmed = p.trim_end_matches('/');
    let base = if p.is_empty() {
        "."
    } else if trimmed.is_empty() {
        "/"
    } else {
        trimmed.rsplit('/').next().unwrap_or(trimmed)
    };
    Ok(Value::String(base.to_string()))
}

/// Go's `filepath.Dir`.
pub(super) fn dirname(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    let p = f.str(0)?;
    let dir = match p.rfind('/') {
        Some(i) => &p[..=i],
        None => "",
    };
    Ok(Value::String(clean(dir)))
}

/// `fileset(path, pattern)`: the regular files under `path` whose relative
/// names match the glob (`*`, `**`, `?`, `[…]`, `{a,b}`), sorted.
pub(super) fn fileset(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let (base, pattern) = (f.string(0)?, f.string(1)?);
    let root = resolve(f.ctx, &base);
    let found: Vec<String> = f.ctx.inputs.read(
        format!("fileset:{}:{pattern}", root.display()),
        || walk(f, &base, &pattern, &root),
        |names| names.iter().map(String::len).sum(),
    )?;
    Ok(Value::List(found.into_iter().map(Value::String).collect()))
}

/// The sorted names `fileset` finds on disk.
fn walk(f: &Args, base: &str, pattern: &str, root: &Path) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    let mut seen = 0usize;
    while let Some((dir, rel)) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(_) if rel.is_empty() => return Ok(Vec::new()),
            Err(e) => return Err(f.error(format!("failed to read {}: {e}", dir.display()))),
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_ELEMENTS {
                return Err(f.error(format!("more than {MAX_ELEMENTS} entries under {base:?}")));
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel_name = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            let Ok(kind) = std::fs::metadata(entry.path()) else { continue };
            if kind.is_dir() {
                stack.push((entry.path(), rel_name));
            } else if kind.is_file() && glob_match(pattern, &rel_name) {
                found.push(rel_name);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Matches a slash-separated path against a doublestar glob.
pub(crate) fn glob_match(pattern: &str, path: &str) -> bool {
    if let Some((alts, before, after)) = braces(pattern) {
        return alts.iter().any(|a| glob_match(&format!("{before}{a}{after}"), path));
    }
    let pat: Vec<&str> = pattern.trim_start_matches("./").split('/').collect();
    let segs: Vec<&str> = path.split('/').collect();
    match_segments(&pat, &segs)
}

fn braces(pattern: &str) -> Option<(Vec<String>, String, String)> {
    let open = pattern.find('{')?;
    let mut depth = 0;
    let mut parts = Vec::new();
    let mut start = open + 1;
    for (i, c) in pattern[open..].char_indices().map(|(i, c)| (i + open, c)) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    parts.push(pattern[start..i].to_string());
                    return Some((parts, pattern[..open].to_string(), pattern[i + 1..].to_string()));
                }
            }
            ',' if depth == 1 => {
                parts.push(pattern[start..i].to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    None
}

fn match_segments(pat: &[&str], segs: &[&str]) -> bool {
    match pat.split_first() {
        None => segs.is_empty(),
        Some((&"**", rest)) => (0..=segs.len()).any(|i| match_segments(rest, &segs[i..])),
        Some((p, rest)) => match segs.split_first() {
            Some((s, srest)) => match_segment(p.as_bytes(), s.as_bytes()) && match_segments(rest, srest),
            None => false,
        },
    }
}

fn match_segment(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => (0..=s.len()).any(|i| match_segment(&p[1..], &s[i..])),
        Some(b'?') => !s.is_empty() && match_segment(&p[1..], &s[char_len(s)..]),
        Some(b'[') => {
            let Some(end) = p.iter().skip(1).position(|&c| c == b']').map(|i| i + 1) else { return false };
            let Some(&c) = s.first() else { return false };
            let class = &p[1..end];
            let (negate, class) = match class.first() {
                Some(b'^' | b'!') => (true, &class[1..]),
                _ => (false, class),
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == b'-' {
                    hit |= (class[i]..=class[i + 2]).contains(&c);
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            hit != negate && match_segment(&p[end + 1..], &s[1..])
        }
        Some(b'\\') if p.len() > 1 => s.first() == Some(&p[1]) && match_segment(&p[2..], &s[1..]),
        Some(&c) => s.first() == Some(&c) && match_segment(&p[1..], &s[1..]),
    }
}

fn char_len(s: &[u8]) -> usize {
    match s.first() {
        Some(b) if *b >= 0xf0 => 4.min(s.len()),
        Some(b) if *b >= 0xe0 => 3.min(s.len()),
        Some(b) if *b >= 0xc0 => 2.min(s.len()),
        _ => 1,
    }
}
