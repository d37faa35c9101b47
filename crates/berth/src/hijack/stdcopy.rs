//! Docker's stdcopy framing, the multiplexed stdout/stderr of non-TTY attach, exec and logs:
//! each frame is an 8-byte header (stream byte, three zero bytes, big-endian u32 length)
//! followed by the payload. Frames arrive split and glued arbitrarily across reads.

/// Where a frame's payload goes. Docker sends stdin-typed frames to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

const HEADER: usize = 8;

/// Incremental demultiplexer: feed it bytes as they come, get whole frames back.
#[derive(Default)]
pub struct Demux {
    buf: Vec<u8>,
}

impl Demux {
    pub fn new() -> Demux {
        Demux::default()
    }

    /// Appends `data` and returns every frame now complete, then the error that stopped the
    /// stream if any (frames before it are still to be written). Errors read like docker's
    /// `stdcopy.StdCopy` ones.
    pub fn push(&mut self, data: &[u8]) -> (Vec<(Stream, Vec<u8>)>, Option<String>) {
        self.buf.extend_from_slice(data);
        let mut frames = Vec::new();
        let mut at = 0;
        while self.buf.len() - at >= HEADER {
            let h = &self.buf[at..at + HEADER];
            let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
            let kind = h[0];
            let stream = match kind {
                0 | 1 => Some(Stream::Stdout),
                2 => Some(Stream::Stderr),
                3 => None,
                other => {
                    self.buf.drain(..at);
                    return (frames, Some(format!("Unrecognized input header: {other}")));
                }
            };
            if self.buf.len() - at - HEADER < len {
                break;
            }
            let payload = self.buf[at + HEADER..at + HEADER + len].to_vec();
            at += HEADER + len;
            match stream {
                Some(s) => frames.push((s, payload)),
                // the daemon's own error, sent in-band once the stream has started
                None => {
                    self.buf.drain(..at);
                    let msg = String::from_utf8_lossy(&payload);
                    return (frames, Some(format!("error from daemon in stream: {msg}")));
                }
            }
        }
        self.buf.drain(..at);
        (frames, None)
    }

    /// Bytes of an incomplete frame still held (docker drops them silently at EOF).
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![kind, 0, 0, 0];
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn ok(r: (Vec<(Stream, Vec<u8>)>, Option<String>)) -> Vec<(Stream, Vec<u8>)> {
        assert_eq!(r.1, None);
        r.0
    }

    #[test]
    fn whole_frames_in_one_read() {
        let mut bytes = frame(1, b"hello-out\n");
        bytes.extend(frame(2, b"hello-err\n"));
        let mut d = Demux::new();
        assert_eq!(
            ok(d.push(&bytes)),
            vec![
                (Stream::Stdout, b"hello-out\n".to_vec()),
                (Stream::Stderr, b"hello-err\n".to_vec())
            ]
        );
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn frames_split_at_every_byte() {
        let mut bytes = frame(1, b"out-line\n");
        bytes.extend(frame(2, b"err-line\n"));
        bytes.extend(frame(1, b""));
        bytes.extend(frame(0, b"stdin goes to stdout"));
        let mut d = Demux::new();
        let mut got = Vec::new();
        for b in &bytes {
            got.extend(ok(d.push(std::slice::from_ref(b))));
        }
        assert_eq!(
            got,
            vec![
                (Stream::Stdout, b"out-line\n".to_vec()),
                (Stream::Stderr, b"err-line\n".to_vec()),
                (Stream::Stdout, vec![]),
                (Stream::Stdout, b"stdin goes to stdout".to_vec()),
            ]
        );
    }

    #[test]
    fn split_inside_header_and_payload() {
        let big = vec![b'x'; 70_000];
        let mut bytes = frame(2, &big);
        bytes.extend(frame(1, b"tail"));
        let mut d = Demux::new();
        assert!(ok(d.push(&bytes[..5])).is_empty());
        assert!(ok(d.push(&bytes[5..40_000])).is_empty());
        let got = ok(d.push(&bytes[40_000..70_010]));
        assert_eq!(got, vec![(Stream::Stderr, big.clone())]);
        assert_eq!(
            ok(d.push(&bytes[70_010..])),
            vec![(Stream::Stdout, b"tail".to_vec())]
        );
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn partial_frame_is_held() {
        let bytes = frame(1, b"abc");
        let mut d = Demux::new();
        assert!(ok(d.push(&bytes[..9])).is_empty());
        assert_eq!(d.pending(), 9);
    }

    #[test]
    fn bad_header_and_system_error() {
        let mut d = Demux::new();
        let (frames, err) = d.push(&frame(7, b"x"));
        assert!(frames.is_empty());
        assert_eq!(err.unwrap(), "Unrecognized input header: 7");
        let mut d = Demux::new();
        let mut bytes = frame(1, b"ok\n");
        bytes.extend(frame(3, b"boom"));
        let (frames, err) = d.push(&bytes);
        assert_eq!(frames, vec![(Stream::Stdout, b"ok\n".to_vec())]);
        assert_eq!(err.unwrap(), "error from daemon in stream: boom");
    }
}
