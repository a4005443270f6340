//! Tar archives made in memory, entry by entry, with fixed owners and times unless a test says
//! otherwise (so the bytes, and a layer's digest, are the same on every run).

/// A tar archive under construction: regular files, directories and links.
pub struct TarBuilder {
    inner: tar::Builder<Vec<u8>>,
    mtime: u64,
}

impl Default for TarBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TarBuilder {
    /// An empty archive whose entries have mtime 1,000,000 (a fixed time, not the epoch, so a
    /// test notices a writer that drops it).
    pub fn new() -> TarBuilder {
        TarBuilder {
            inner: tar::Builder::new(Vec::new()),
            mtime: 1_000_000,
        }
    }

    /// A regular file, mode 0644, owned by 0:0.
    pub fn file(self, path: &str, body: &[u8]) -> TarBuilder {
        self.file_owned(path, body, 0o644, 0, 0)
    }

    /// A regular file with the given mode and owner.
    pub fn file_owned(
        mut self,
        path: &str,
        body: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> TarBuilder {
        let mut header = self.header(tar::EntryType::Regular, mode, uid, gid);
        header.set_size(body.len() as u64);
        self.inner
            .append_data(&mut header, path, body)
            .expect("appending a file to an in-memory tar");
        self
    }

    /// A directory with the given mode, owned by 0:0.
    pub fn dir(mut self, path: &str, mode: u32) -> TarBuilder {
        let mut header = self.header(tar::EntryType::Directory, mode, 0, 0);
        self.inner
            .append_data(&mut header, path, std::io::empty())
            .expect("appending a directory to an in-memory tar");
        self
    }

    /// A symbolic link to `target`.
    pub fn symlink(mut self, path: &str, target: &str) -> TarBuilder {
        let mut header = self.header(tar::EntryType::Symlink, 0o777, 0, 0);
        self.inner
            .append_link(&mut header, path, target)
            .expect("appending a symlink to an in-memory tar");
        self
    }

    /// A hard link to the earlier entry `target`.
    pub fn hardlink(mut self, path: &str, target: &str) -> TarBuilder {
        let mut header = self.header(tar::EntryType::Link, 0o644, 0, 0);
        self.inner
            .append_link(&mut header, path, target)
            .expect("appending a hard link to an in-memory tar");
        self
    }

    /// The archive's bytes.
    pub fn finish(self) -> Vec<u8> {
        self.inner.into_inner().expect("finishing an in-memory tar")
    }

    fn header(&self, kind: tar::EntryType, mode: u32, uid: u64, gid: u64) -> tar::Header {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(uid);
        header.set_gid(gid);
        header.set_mtime(self.mtime);
        header.set_size(0);
        header
    }
}

/// An archive of regular files (mode 0644, 0:0), in the order given.
pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    files
        .iter()
        .fold(TarBuilder::new(), |b, (path, body)| b.file(path, body))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn entries_come_back_as_written() {
        let bytes = TarBuilder::new()
            .dir("d/", 0o755)
            .file_owned("d/f", b"hi", 0o640, 501, 20)
            .symlink("l", "d/f")
            .hardlink("h", "d/f")
            .finish();
        let mut seen = Vec::new();
        for entry in tar::Archive::new(&bytes[..]).entries().unwrap() {
            let mut entry = entry.unwrap();
            let h = entry.header().clone();
            let mut body = String::new();
            entry.read_to_string(&mut body).unwrap();
            seen.push(format!(
                "{} {:?} {:o} {}:{} {} {body}",
                entry.path().unwrap().display(),
                h.entry_type(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.mtime().unwrap()
            ));
        }
        assert_eq!(
            seen,
            [
                "d/ Directory 755 0:0 1000000 ",
                "d/f Regular 640 501:20 1000000 hi",
                "l Symlink 777 0:0 1000000 ",
                "h Link 644 0:0 1000000 ",
            ]
        );
        assert_eq!(tar_of(&[("a", b"1")]), tar_of(&[("a", b"1")]));
    }
}
