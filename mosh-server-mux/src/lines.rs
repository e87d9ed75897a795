//! Reading lines from peers we do not trust to be short or prompt.
//!
//! mosh-server's pipes and moshd's reply are read a line at a time with a
//! cap on the line length, so that a runaway child or a confused daemon
//! costs a bounded amount of memory; the rest of an over-long line is read
//! and thrown away. [`DeadlineReader`] bounds the total time of a read, not
//! just each `read` call, so a peer dripping one byte at a time cannot keep
//! us waiting.

use std::io::{self, BufRead, Read};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// One line, without its `\n` (a `\r` before it is kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub bytes: Vec<u8>,
    /// The line was longer than the cap; `bytes` holds its first `cap` bytes.
    pub truncated: bool,
}

/// Reads the next line, keeping at most `cap` bytes of it. `Ok(None)` at the
/// end of input; a last line without `\n` is still returned.
pub fn read_capped_line<R: BufRead>(r: &mut R, cap: usize) -> io::Result<Option<Line>> {
    let mut line = Line {
        bytes: Vec::new(),
        truncated: false,
    };
    let mut any = false;
    loop {
        let buf = match r.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(any.then_some(line));
        }
        any = true;
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(at) => (&buf[..at], Some(at + 1)),
            None => (buf, None),
        };
        let room = cap.saturating_sub(line.bytes.len());
        if chunk.len() > room {
            line.truncated = true;
        }
        line.bytes
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = done.unwrap_or(buf.len());
        r.consume(used);
        if done.is_some() {
            return Ok(Some(line));
        }
    }
}

/// A Unix stream whose reads all end by one deadline.
pub struct DeadlineReader<'a> {
    stream: &'a UnixStream,
    deadline: Instant,
}

impl<'a> DeadlineReader<'a> {
    pub fn new(stream: &'a UnixStream, timeout: Duration) -> Self {
        DeadlineReader {
            stream,
            deadline: Instant::now() + timeout,
        }
    }
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
        }
        self.stream.set_read_timeout(Some(left))?;
        match (&mut &*self.stream).read(buf) {
            // A read timeout shows up as WouldBlock on Linux.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::{BufReader, Cursor, Write};

    fn all_lines(input: &[u8], cap: usize, buf: usize) -> Vec<Line> {
        let mut r = BufReader::with_capacity(buf, Cursor::new(input.to_vec()));
        let mut out = Vec::new();
        while let Some(line) = read_capped_line(&mut r, cap).unwrap() {
            out.push(line);
        }
        out
    }

    fn l(s: &str, truncated: bool) -> Line {
        Line {
            bytes: s.as_bytes().to_vec(),
            truncated,
        }
    }

    #[test]
    fn splits_caps_and_keeps_the_last_line() {
        assert_eq!(
            all_lines(b"ab\r\n\n0123456789\nxyz", 4, 3),
            [
                l("ab\r", false),
                l("", false),
                l("0123", true),
                l("xyz", false)
            ]
        );
        assert_eq!(all_lines(b"", 4, 3), []);
    }

    #[test]
    fn deadline_reader_times_out_on_a_silent_peer() {
        let (a, mut b) = UnixStream::pair().unwrap();
        b.write_all(b"partial").unwrap();
        let start = Instant::now();
        let mut r = std::io::BufReader::new(DeadlineReader::new(&a, Duration::from_millis(200)));
        let err = read_capped_line(&mut r, 100).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    proptest! {
        #[test]
        fn bounded_and_lossless_when_short(
            input in proptest::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 0..400),
            cap in 0usize..40,
            buf in 1usize..16,
        ) {
            let lines = all_lines(&input, cap, buf);
            let expected: Vec<&[u8]> = if input.is_empty() {
                vec![]
            } else {
                let mut v: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
                if input.last() == Some(&b'\n') { v.pop(); }
                v
            };
            prop_assert_eq!(lines.len(), expected.len());
            for (got, want) in lines.iter().zip(expected) {
                prop_assert!(got.bytes.len() <= cap);
                prop_assert_eq!(got.truncated, want.len() > cap);
                prop_assert_eq!(&got.bytes[..], &want[..want.len().min(cap)]);
            }
        }
    }
}
