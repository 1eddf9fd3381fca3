//! Framing of peer messages: a big-endian `u32` length, then that many bytes of postcard.
//!
//! ```text
//! +----------------+------------------------------+
//! | length u32 BE  | postcard(Envelope<...>)      |
//! +----------------+------------------------------+
//! ```

use std::io;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest frame accepted. A snapshot chunk or an `AppendEntries` batch must fit; a peer
/// announcing more is broken or hostile, and the connection is dropped rather than allocating.
pub const MAX_FRAME: usize = 64 << 20;

/// Read buffer of a peer connection. Frames are read through it, so the length prefix, the
/// body and whatever frames arrived with them cost one `recv` rather than two per frame.
pub(crate) const READ_BUFFER: usize = 64 << 10;

/// Encodes `msg` as one frame (length prefix included).
pub(crate) fn encode<T: Serialize>(msg: &T) -> io::Result<Vec<u8>> {
    let mut buf = postcard::to_extend(msg, vec![0; 4]).map_err(io::Error::other)?;
    let len = buf.len() - 4;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("message of {len} bytes exceeds the {MAX_FRAME}-byte frame limit"),
        ));
    }
    buf[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(buf)
}

/// Writes an encoded frame.
pub(crate) async fn write<W: AsyncWrite + Unpin>(w: &mut W, frame: &[u8]) -> io::Result<()> {
    w.write_all(frame).await?;
    w.flush().await
}

/// Reads and decodes one frame; `None` on a clean end of stream before a frame starts.
pub(crate) async fn read<R: AsyncRead + Unpin, T: DeserializeOwned>(
    r: &mut R,
) -> io::Result<Option<T>> {
    let Some(buf) = read_bytes(r).await? else {
        return Ok(None);
    };
    postcard::from_bytes(&buf)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Reads one frame's body without decoding it; `None` on a clean end of stream before a frame
/// starts. For a reader that must answer even a frame it cannot decode.
pub(crate) async fn read_bytes<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("peer announced a {len}-byte frame (limit {MAX_FRAME})"),
        ));
    }
    let mut buf = vec![0; len];
    r.read_exact(&mut buf).await?;
    Ok(Some(buf))
}

#[cfg(test)]
mod tests {
    use super::{MAX_FRAME, encode, read};

    #[tokio::test]
    async fn round_trips_and_refuses_oversized_frames() {
        let frame = encode(&(7u64, "hello".to_owned())).expect("encode");
        assert_eq!(&frame[..4], &((frame.len() - 4) as u32).to_be_bytes());
        let mut r = &frame[..];
        let got: Option<(u64, String)> = read(&mut r).await.expect("read");
        assert_eq!(got, Some((7, "hello".to_owned())));
        let mut empty: &[u8] = &[];
        let none: Option<(u64, String)> = read(&mut empty).await.expect("eof");
        assert_eq!(none, None);
        let huge = ((MAX_FRAME + 1) as u32).to_be_bytes();
        let mut r = &huge[..];
        assert!(read::<_, (u64, String)>(&mut r).await.is_err());
    }
}
