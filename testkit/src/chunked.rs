//! [`ChunkedBody`]: a response body the simulated server sends in pieces over time.

use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;

/// How the simulated server sends a response's body: in pieces, `interval` apart, and
/// possibly breaking the connection part way.
///
/// A [`Handler`](crate::Handler) attaches one to its response's extensions
/// (`response.extensions_mut().insert(chunked)`); a response without one is sent whole. The
/// body itself stays the response's body: a `ChunkedBody` only says where it is cut and when
/// each piece leaves. The first piece leaves with the head; each later one `interval` after
/// the one before, on tokio's timer (virtual under `start_paused`).
/// [`Fault::ResetMidBody`](crate::Fault::ResetMidBody) breaks the connection after a number of
/// pieces.
///
/// Through [`SimTransport`](crate::SimTransport),
/// [`send_streaming`](ratewise_core::transport::Transport::send_streaming) yields each piece as
/// it leaves (a gap longer than the attempt's timeout ends the body with a timeout, as the
/// reqwest transport's idle limit does) and `send` waits for the whole body;
/// [`SimServer`](crate::SimServer) writes each piece to the socket as it leaves. A break is
/// `TransportError::Interrupted` in memory and a reset connection over HTTP. The ledger
/// records the request when its head leaves.
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use ratewise_testkit::ChunkedBody;
///
/// let body = Bytes::from_static(b"data: 1\n\ndata: 2\n\n");
/// let chunked = ChunkedBody::new([9], Duration::from_millis(20));
/// assert_eq!(chunked.pieces(&body), vec![Bytes::from_static(b"data: 1\n\n"), Bytes::from_static(b"data: 2\n\n")]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChunkedBody {
    ends: Vec<usize>,
    interval: Duration,
    break_after: Option<usize>,
}

impl ChunkedBody {
    /// Pieces ending at the byte offsets `ends` (the body's end closes the last piece; offsets
    /// out of order or past the end are skipped), leaving `interval` apart.
    pub fn new(ends: impl IntoIterator<Item = usize>, interval: Duration) -> Self {
        Self {
            ends: ends.into_iter().collect(),
            interval,
            break_after: None,
        }
    }

    /// The body in one piece (what a response without a `ChunkedBody` gets).
    pub fn whole() -> Self {
        Self::default()
    }

    /// This schedule with the connection broken after `pieces` pieces (0: right after the
    /// head), when the next piece would have left.
    pub fn break_after(mut self, pieces: usize) -> Self {
        self.break_after = Some(pieces);
        self
    }

    /// The pause before each piece after the first.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// After how many pieces the connection breaks, if it does.
    pub fn breaks_after(&self) -> Option<usize> {
        self.break_after
    }

    /// `body` cut into its pieces (empty pieces left out).
    pub fn pieces(&self, body: &Bytes) -> Vec<Bytes> {
        let mut pieces = Vec::with_capacity(self.ends.len().saturating_add(1));
        let mut start = 0;
        for &end in self.ends.iter().chain(std::iter::once(&body.len())) {
            if end > start && end <= body.len() {
                pieces.push(body.slice(start..end));
                start = end;
            }
        }
        pieces
    }

    /// The pieces of `body` as they leave: each after its pause, then a break if there is one.
    pub(crate) fn deliver(&self, body: &Bytes) -> impl Stream<Item = Piece> + Send + use<> {
        let mut pieces: Vec<Piece> = self.pieces(body).into_iter().map(Piece::Data).collect();
        if let Some(after) = self.break_after {
            pieces.truncate(after);
            pieces.push(Piece::Break);
        }
        let interval = self.interval;
        futures_util::stream::unfold(
            (pieces.into_iter(), true),
            move |(mut pieces, first)| async move {
                let piece = pieces.next()?;
                if !first && !interval.is_zero() {
                    tokio::time::sleep(interval).await;
                }
                Some((piece, (pieces, false)))
            },
        )
    }
}

/// What leaves the simulated server next.
#[derive(Debug)]
pub(crate) enum Piece {
    /// Bytes of the body.
    Data(Bytes),
    /// The connection breaks.
    Break,
}

/// The body of `response` as it leaves, by its [`ChunkedBody`] or whole.
pub(crate) fn delivery(
    response: &http::Response<Bytes>,
) -> impl Stream<Item = Piece> + Send + use<> {
    match response.extensions().get::<ChunkedBody>() {
        Some(chunked) => chunked.deliver(response.body()),
        None => ChunkedBody::whole().deliver(response.body()),
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    #[test]
    fn cuts_out_of_order_or_past_the_end_are_skipped() {
        let body = Bytes::from_static(b"abcdef");
        let pieces = ChunkedBody::new([2, 1, 4, 99], Duration::ZERO).pieces(&body);
        assert_eq!(pieces, vec!["ab", "cd", "ef"]);
        assert_eq!(ChunkedBody::whole().pieces(&body), vec!["abcdef"]);
        assert!(ChunkedBody::whole().pieces(&Bytes::new()).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn pieces_leave_an_interval_apart_and_a_break_ends_them() {
        let body = Bytes::from_static(b"abcdef");
        let chunked = ChunkedBody::new([2, 4], Duration::from_millis(100)).break_after(2);
        let clock = ratewise_core::clock::TokioClock::shared();
        let start = clock.now();
        let mut got = Vec::new();
        let mut stream = std::pin::pin!(chunked.deliver(&body));
        while let Some(piece) = stream.next().await {
            let at = (clock.now() - start).as_millis();
            got.push(match piece {
                Piece::Data(bytes) => format!("{at}:{}", String::from_utf8_lossy(&bytes)),
                Piece::Break => format!("{at}:break"),
            });
        }
        assert_eq!(got, vec!["0:ab", "100:cd", "200:break"]);
    }
}
