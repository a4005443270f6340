//! A byte stream passed between threads in chunks: the reading end of a channel, as a
//! `Read`. Used to unpack a layer while it streams into the store, and to upload a layer
//! while it is compressed.

use std::io::{self, Read};
use std::sync::mpsc::Receiver;
use std::sync::Arc;

/// A chunk of the stream: owned, or shared with another consumer.
pub(crate) trait Chunk {
    fn bytes(&self) -> &[u8];
}

impl Chunk for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
}

impl Chunk for Arc<Vec<u8>> {
    fn bytes(&self) -> &[u8] {
        self
    }
}

/// Reads the chunks sent on `rx` in order; the stream ends when every sender is gone.
pub(crate) struct ChannelReader<T> {
    rx: Receiver<T>,
    chunk: Option<T>,
    pos: usize,
}

impl<T: Chunk> ChannelReader<T> {
    pub(crate) fn new(rx: Receiver<T>) -> ChannelReader<T> {
        ChannelReader {
            rx,
            chunk: None,
            pos: 0,
        }
    }
}

impl<T: Chunk> Read for ChannelReader<T> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(chunk) = &self.chunk {
                let bytes = chunk.bytes();
                if self.pos < bytes.len() {
                    let n = out.len().min(bytes.len() - self.pos);
                    out[..n].copy_from_slice(&bytes[self.pos..self.pos + n]);
                    self.pos += n;
                    return Ok(n);
                }
            }
            match self.rx.recv() {
                Ok(chunk) => {
                    self.chunk = Some(chunk);
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_read_back_in_order_and_empty_ones_are_skipped() {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let sender = std::thread::spawn(move || {
            for c in [b"ab".to_vec(), Vec::new(), b"cde".to_vec()] {
                tx.send(c).unwrap();
            }
        });
        let mut out = String::new();
        ChannelReader::new(rx).read_to_string(&mut out).unwrap();
        sender.join().unwrap();
        assert_eq!(out, "abcde");
    }
}
