//! strata-init: the static init that `strata run --init` makes pid 1 of a container, as
//! Docker's `--init` does with tini (`/sbin/docker-init -- command args…`).
//!
//! It owns the init's C source (`src/init.c`: fork/exec of the command in its own process
//! group, every signal forwarded to it, every orphan reaped, the command's exit code or
//! 128+signal as its own) and its build: `build.rs` compiles it into a fully static executable
//! at build time, so it runs in any image whatever libc (if any) the image has, and the bytes
//! are embedded here.
//!
//! Must not: know where or how the binary is installed (strata-container writes it under the
//! store root and bind-mounts it), or depend on any other strata crate.

/// The static init executable (x86-64/aarch64 ELF for the target strata is built for).
pub const INIT_BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/strata-init"));

/// Where Docker mounts its init inside the container; strata uses the same path so that tools
/// and scripts that look for it find it.
pub const INIT_PATH_IN_CONTAINER: &str = "/sbin/docker-init";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_init_is_a_static_elf_executable() {
        assert_eq!(&INIT_BINARY[..4], b"\x7fELF");
        // e_type at offset 16: ET_EXEC (2) for a non-PIE static link, ET_DYN (3) for static-pie.
        let e_type = u16::from_le_bytes([INIT_BINARY[16], INIT_BINARY[17]]);
        assert!(e_type == 2 || e_type == 3, "e_type {e_type}");
        // A static executable has no PT_INTERP program header (type 3).
        let phoff = u64::from_le_bytes(INIT_BINARY[32..40].try_into().unwrap()) as usize;
        let phentsize = u16::from_le_bytes([INIT_BINARY[54], INIT_BINARY[55]]) as usize;
        let phnum = u16::from_le_bytes([INIT_BINARY[56], INIT_BINARY[57]]) as usize;
        for i in 0..phnum {
            let at = phoff + i * phentsize;
            let p_type = u32::from_le_bytes(INIT_BINARY[at..at + 4].try_into().unwrap());
            assert_ne!(p_type, 3, "the init must not need a dynamic loader");
        }
    }
}
