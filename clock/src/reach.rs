//! Can the shim reach a program? A preloaded library only replaces functions
//! that the program looks up through the dynamic linker. It cannot reach:
//!
//! - static programs (no `PT_INTERP`: nothing loads `LD_PRELOAD`),
//! - Go programs, even dynamically linked ones (etcd): the Go runtime calls
//!   the kernel's vDSO itself and never calls libc's `clock_gettime`,
//! - set-user/group-id programs, for which the dynamic linker ignores
//!   `LD_PRELOAD` outside trusted directories.
//!
//! A `#!` script is judged by its interpreter (through `/usr/bin/env NAME`
//! on `PATH`).

use std::path::{Path, PathBuf};

/// Why the shim cannot move a program's clocks.
#[derive(Debug, thiserror::Error)]
pub enum Unreachable {
    /// A Go program.
    #[error(
        "{0} is a Go program: it reads the clock from the vDSO directly, which LD_PRELOAD cannot reach"
    )]
    Go(PathBuf),
    /// A statically linked program.
    #[error("{0} is statically linked: no dynamic linker runs, so LD_PRELOAD is never loaded")]
    Static(PathBuf),
    /// A set-user-id or set-group-id program.
    #[error("{0} is set-user/group-id: the dynamic linker ignores LD_PRELOAD for it")]
    SetId(PathBuf),
    /// Neither an ELF file nor a `#!` script, or a malformed one.
    #[error("{0} is not an ELF program or #! script the shim understands: {1}")]
    NotProgram(PathBuf, String),
    /// A script whose interpreter cannot be found or nests too deeply.
    #[error("{0}: cannot follow its #! interpreter: {1}")]
    Interpreter(PathBuf, String),
    /// The file could not be read.
    #[error("cannot read {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// Checks that the shim can move `program`'s clocks when preloaded.
pub fn reachable(program: &Path) -> Result<(), Unreachable> {
    reachable_at(program, 0)
}

const MAX_SCRIPT_DEPTH: usize = 4;

fn reachable_at(program: &Path, depth: usize) -> Result<(), Unreachable> {
    use std::os::unix::fs::PermissionsExt;
    let io = |e| Unreachable::Io(program.to_path_buf(), e);
    let meta = std::fs::metadata(program).map_err(io)?;
    if meta.permissions().mode() & 0o6000 != 0 {
        return Err(Unreachable::SetId(program.to_path_buf()));
    }
    let bytes = std::fs::read(program).map_err(io)?;
    if let Some(rest) = bytes.strip_prefix(b"#!") {
        if depth >= MAX_SCRIPT_DEPTH {
            return Err(Unreachable::Interpreter(
                program.to_path_buf(),
                "interpreters nest too deeply".into(),
            ));
        }
        let interp = interpreter(rest)
            .map_err(|why| Unreachable::Interpreter(program.to_path_buf(), why))?;
        return reachable_at(&interp, depth + 1);
    }
    match classify_elf(&bytes) {
        Ok(Kind::Dynamic) => Ok(()),
        Ok(Kind::Go) => Err(Unreachable::Go(program.to_path_buf())),
        Ok(Kind::Static) => Err(Unreachable::Static(program.to_path_buf())),
        Err(why) => Err(Unreachable::NotProgram(program.to_path_buf(), why.into())),
    }
}

/// The interpreter of a `#!` line (bytes after `#!`), resolving `env NAME`.
fn interpreter(rest: &[u8]) -> Result<PathBuf, String> {
    let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = std::str::from_utf8(line).map_err(|_| "the #! line is not UTF-8".to_string())?;
    let mut words = line.split_whitespace();
    let interp = words.next().ok_or("the #! line names no interpreter")?;
    let is_env = Path::new(interp).file_name().is_some_and(|n| n == "env");
    if !is_env {
        return Ok(PathBuf::from(interp));
    }
    // `env -S prog args` and `env prog`: the first word that is not an option.
    let name = words
        .find(|w| !w.starts_with('-'))
        .ok_or("#! env names no program")?;
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("{name} is not on PATH"))
}

/// What an ELF file is, as far as preloading goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Loaded by the dynamic linker, not Go: the shim reaches it.
    Dynamic,
    /// A Go program (static or not).
    Go,
    /// No program interpreter.
    Static,
}

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_NOTE: u32 = 4;
/// Go's build-id note: owner "Go", type 4.
const NT_GO_BUILD_ID: u32 = 4;
const GO_SECTIONS: [&[u8]; 4] = [
    b".note.go.buildid",
    b".go.buildid",
    b".go.buildinfo",
    b".gopclntab",
];

/// Bounds-checked reads of an ELF image of either class and byte order.
struct Elf<'a> {
    b: &'a [u8],
    is64: bool,
    le: bool,
}

impl Elf<'_> {
    fn u16(&self, off: usize) -> Option<u16> {
        let s: [u8; 2] = self.b.get(off..off.checked_add(2)?)?.try_into().ok()?;
        Some(if self.le {
            u16::from_le_bytes(s)
        } else {
            u16::from_be_bytes(s)
        })
    }
    fn u32(&self, off: usize) -> Option<u32> {
        let s: [u8; 4] = self.b.get(off..off.checked_add(4)?)?.try_into().ok()?;
        Some(if self.le {
            u32::from_le_bytes(s)
        } else {
            u32::from_be_bytes(s)
        })
    }
    fn u64(&self, off: usize) -> Option<u64> {
        let s: [u8; 8] = self.b.get(off..off.checked_add(8)?)?.try_into().ok()?;
        Some(if self.le {
            u64::from_le_bytes(s)
        } else {
            u64::from_be_bytes(s)
        })
    }
    /// A word: 8 bytes in ELF64, 4 in ELF32.
    fn word(&self, off: usize) -> Option<usize> {
        if self.is64 {
            usize::try_from(self.u64(off)?).ok()
        } else {
            usize::try_from(self.u32(off)?).ok()
        }
    }
    /// (type, offset, size) of each program header.
    fn segments(&self) -> Option<Vec<(u32, usize, usize)>> {
        let (phoff, phentsize, phnum) = if self.is64 {
            (self.word(0x20)?, self.u16(0x36)?, self.u16(0x38)?)
        } else {
            (self.word(0x1c)?, self.u16(0x2a)?, self.u16(0x2c)?)
        };
        (0..usize::from(phnum))
            .map(|i| {
                let h = phoff.checked_add(i.checked_mul(usize::from(phentsize))?)?;
                let ty = self.u32(h)?;
                if self.is64 {
                    Some((ty, self.word(h + 8)?, self.word(h + 32)?))
                } else {
                    Some((ty, self.word(h + 4)?, self.word(h + 16)?))
                }
            })
            .collect()
    }
    /// Names of all sections (empty if the section headers are stripped).
    fn section_names(&self) -> Vec<&[u8]> {
        self.try_section_names().unwrap_or_default()
    }
    fn try_section_names(&self) -> Option<Vec<&[u8]>> {
        let (shoff, shentsize, shnum, shstrndx) = if self.is64 {
            (
                self.word(0x28)?,
                self.u16(0x3a)?,
                self.u16(0x3c)?,
                self.u16(0x3e)?,
            )
        } else {
            (
                self.word(0x20)?,
                self.u16(0x2e)?,
                self.u16(0x30)?,
                self.u16(0x32)?,
            )
        };
        let header = |i: usize| shoff.checked_add(i.checked_mul(usize::from(shentsize))?);
        let (off_at, size_at) = if self.is64 { (24, 32) } else { (16, 20) };
        let strtab = header(usize::from(shstrndx))?;
        let str_off = self.word(strtab + off_at)?;
        let str_size = self.word(strtab + size_at)?;
        let strings = self.b.get(str_off..str_off.checked_add(str_size)?)?;
        (0..usize::from(shnum))
            .map(|i| {
                let name = usize::try_from(self.u32(header(i)?)?).ok()?;
                let tail = strings.get(name..)?;
                let end = tail.iter().position(|&c| c == 0)?;
                tail.get(..end)
            })
            .collect()
    }
    /// Whether a PT_NOTE segment holds Go's build-id note.
    fn has_go_note(&self, off: usize, size: usize) -> bool {
        let Some(end) = off.checked_add(size) else {
            return false;
        };
        let mut p = off;
        // Each note: namesz, descsz, type, then name and desc padded to 4.
        while let (Some(namesz), Some(descsz), Some(ty)) =
            (self.u32(p), self.u32(p + 4), self.u32(p + 8))
        {
            let name_at = p + 12;
            let pad = |n: u32| (n as usize).div_ceil(4) * 4;
            if ty == NT_GO_BUILD_ID && self.b.get(name_at..name_at + 3) == Some(b"Go\0") {
                return true;
            }
            p = name_at + pad(namesz) + pad(descsz);
            if p >= end {
                break;
            }
        }
        false
    }
}

/// Classifies an ELF image (the whole file's bytes).
pub fn classify_elf(bytes: &[u8]) -> Result<Kind, &'static str> {
    if bytes.get(..4) != Some(b"\x7fELF") {
        return Err("no ELF magic and no #! line");
    }
    let is64 = match bytes.get(4) {
        Some(1) => false,
        Some(2) => true,
        _ => return Err("unknown ELF class"),
    };
    let le = match bytes.get(5) {
        Some(1) => true,
        Some(2) => false,
        _ => return Err("unknown ELF byte order"),
    };
    let elf = Elf { b: bytes, is64, le };
    let segments = elf.segments().ok_or("truncated program headers")?;
    let go_section = elf.section_names().iter().any(|n| GO_SECTIONS.contains(n));
    let go_note = segments
        .iter()
        .any(|&(ty, off, size)| ty == PT_NOTE && elf.has_go_note(off, size));
    if go_section || go_note {
        return Ok(Kind::Go);
    }
    let interp = segments.iter().any(|&(ty, ..)| ty == PT_INTERP);
    let dynamic = segments.iter().any(|&(ty, ..)| ty == PT_DYNAMIC);
    // static-pie has PT_DYNAMIC but no PT_INTERP: it relocates itself and
    // never runs the dynamic linker.
    Ok(if interp && dynamic {
        Kind::Dynamic
    } else {
        Kind::Static
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_without_panicking() {
        assert!(classify_elf(b"").is_err());
        assert!(classify_elf(b"\x7fELF").is_err());
        let mut hdr = vec![0u8; 64];
        hdr[..6].copy_from_slice(b"\x7fELF\x02\x01");
        // phoff pointing far past the end, many headers.
        hdr[0x20] = 0xff;
        hdr[0x38] = 9;
        assert!(classify_elf(&hdr).is_err());
        // No program headers at all: static.
        hdr[0x20] = 0;
        hdr[0x38] = 0;
        assert_eq!(classify_elf(&hdr), Ok(Kind::Static));
    }

    #[test]
    fn shebang_resolves_env() {
        assert_eq!(
            interpreter(b"/bin/sh -e\n").unwrap(),
            PathBuf::from("/bin/sh")
        );
        let sh = interpreter(b"/usr/bin/env -S sh -e\nexit").unwrap();
        assert!(sh.ends_with("sh"), "{sh:?}");
        assert!(interpreter(b"   \n").is_err());
        assert!(interpreter(b"/usr/bin/env no-such-program-here\n").is_err());
    }
}
