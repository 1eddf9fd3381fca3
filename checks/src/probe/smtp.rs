//! SMTP checks: a 220 greeting, then `HELO` answered with 250, then a polite `QUIT`.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::{AttemptResult, ProbeError, net};
use crate::spec::{CheckSpec, SmtpCheck};

/// Longest reply line accepted (RFC 5321 §4.5.3.1.5 allows 512 octets).
const MAX_LINE: usize = 1024;

pub(super) async fn check(spec: &CheckSpec, smtp: &SmtpCheck) -> AttemptResult {
    let stream = net::connect_tcp(spec.target, &spec.source).await?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    expect_reply(&mut read, 220).await?;
    write
        .write_all(format!("HELO {}\r\n", smtp.helo).as_bytes())
        .await?;
    expect_reply(&mut read, 250).await?;
    // Best effort: the verdict is already in.
    let _ = write.write_all(b"QUIT\r\n").await;
    Ok(("greeting and HELO accepted".into(), None))
}

/// Reads one (possibly multi-line, `250-…`) reply and checks its code.
async fn expect_reply<R: AsyncBufReadExt + Unpin>(r: &mut R, want: u16) -> Result<(), ProbeError> {
    let mut line = String::new();
    loop {
        line.clear();
        let n = r.read_line(&mut line).await?;
        if n == 0 {
            return Err(ProbeError::Protocol(format!(
                "connection closed waiting for {want}"
            )));
        }
        if n > MAX_LINE {
            return Err(ProbeError::Protocol("reply line too long".into()));
        }
        let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).ok_or_else(|| {
            ProbeError::Protocol(format!("malformed reply {:?}", line.trim_end()))
        })?;
        if code != want {
            return Err(ProbeError::Protocol(format!(
                "expected {want}, got {}",
                line.trim_end()
            )));
        }
        // `250-` continues a multi-line reply, `250 ` ends it.
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}
