//! [`HashingReader`]: a reader that computes the BLAKE3 digest and the length of what passes
//! through it.

use std::io::{self, Read};

/// Passes reads through to `inner`, hashing and counting every byte it hands out.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: blake3::Hasher,
    count: u64,
    on_error: fn(io::Error) -> io::Error,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self::with_error_map(inner, |e| e)
    }

    /// Like [`new`](Self::new), rewriting every error of `inner` with `on_error`.
    pub(crate) fn with_error_map(inner: R, on_error: fn(io::Error) -> io::Error) -> Self {
        Self {
            inner,
            hasher: blake3::Hasher::new(),
            count: 0,
            on_error,
        }
    }

    /// Bytes handed out so far.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// The lower-case hex BLAKE3 digest of the bytes handed out so far.
    pub(crate) fn hex_digest(&self) -> String {
        self.hasher.finalize().to_hex().to_string()
    }

    /// Reads and hashes whatever is left, through `buf`, and returns the number of bytes drained.
    pub(crate) fn drain(&mut self, buf: &mut [u8]) -> io::Result<u64> {
        let mut drained = 0;
        loop {
            match self.read(buf) {
                Ok(0) => return Ok(drained),
                Ok(n) => drained += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).map_err(self.on_error)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_counts_what_passes() {
        let data = b"hello, archive";
        let mut reader = HashingReader::new(&data[..]);
        let mut first = [0u8; 5];
        reader.read_exact(&mut first).unwrap();
        assert_eq!(reader.count(), 5);
        let mut buf = [0u8; 3];
        assert_eq!(reader.drain(&mut buf).unwrap(), data.len() as u64 - 5);
        assert_eq!(reader.count(), data.len() as u64);
        assert_eq!(reader.hex_digest(), blake3::hash(data).to_hex().to_string());
    }

    #[test]
    fn rewrites_errors() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("boom"))
            }
        }
        let mut reader = HashingReader::with_error_map(Failing, |e| io::Error::other(format!("wrapped: {e}")));
        let err = reader.read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(err.to_string(), "wrapped: boom");
    }
}
