use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use ratewise_core::transport::TransportError;
use tokio::sync::mpsc;

use super::*;

const BODY: &str = concat!(
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hél\"}}]}\r\n\r\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n",
    "data: [DONE]\n\n",
    "data: {\"id\":\"after-done\",\"choices\":[]}\n\n",
);

fn text(chunks: &[Result<ChatCompletionChunk, Error>]) -> String {
    chunks
        .iter()
        .filter_map(|c| c.as_ref().ok())
        .flat_map(|c| c.choices.iter())
        .filter_map(|c| c.delta.content.as_deref())
        .collect()
}

/// A body fed by the test, chunk by chunk.
fn channel() -> (
    mpsc::UnboundedSender<Result<Bytes, TransportError>>,
    BodyStream,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (tx, BodyStream::new(body))
}

#[tokio::test]
async fn a_body_in_one_piece_yields_typed_chunks_until_done_and_the_final_usage() {
    let body = BodyStream::once(Bytes::from_static(BODY.as_bytes()));
    let mut stream = ChatStream::from_body(body, Some("req_1".into()), None);
    assert_eq!(stream.request_id(), Some("req_1"));
    assert_eq!(stream.usage(), None);
    let mut chunks = Vec::new();
    while let Some(chunk) = stream.next().await {
        chunks.push(chunk);
    }
    assert_eq!(chunks.len(), 4);
    assert_eq!(text(&chunks), "Héllo");
    assert_eq!(stream.usage().map(|u| u.total_tokens), Some(7));
}

#[tokio::test]
async fn a_body_cut_every_few_bytes_yields_the_same_chunks() {
    for size in [1, 2, 3, 7, 64] {
        let pieces: Vec<Result<Bytes, TransportError>> = BODY
            .as_bytes()
            .chunks(size)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let body = BodyStream::new(futures_util::stream::iter(pieces));
        let chunks: Vec<_> = ChatStream::from_body(body, None, None).collect().await;
        assert_eq!(chunks.len(), 4, "pieces of {size}");
        assert_eq!(text(&chunks), "Héllo", "pieces of {size}");
    }
}

#[tokio::test]
async fn a_chunk_is_yielded_as_soon_as_its_event_arrives() {
    let (tx, body) = channel();
    let mut stream = ChatStream::from_body(body, None, None);
    let (first, rest) = BODY.split_at(BODY.find("\r\n\r\n").unwrap_or(0) + 1);
    tx.send(Ok(Bytes::copy_from_slice(first.as_bytes())))
        .unwrap();
    // The first event is complete, the second one is not: one chunk now, then nothing yet.
    let chunk = stream.next().await.unwrap().unwrap();
    assert_eq!(chunk.choices[0].delta.role, Some(crate::Role::Assistant));
    assert!(
        stream.next().now_or_never().is_none(),
        "waits for more bytes"
    );
    tx.send(Ok(Bytes::copy_from_slice(rest.as_bytes())))
        .unwrap();
    let chunk = stream.next().await.unwrap().unwrap();
    assert_eq!(chunk.choices[0].delta.content.as_deref(), Some("Hél"));
    // After [DONE] the stream ends without waiting for the body to close, and lets go of
    // the body (the request is over) while the stream itself is still alive.
    let mut rest = 0;
    while let Some(chunk) = stream.next().await {
        assert!(chunk.is_ok());
        rest += 1;
    }
    assert_eq!(rest, 2);
    assert!(tx.is_closed(), "the body was dropped at [DONE]");
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn a_connection_broken_mid_stream_is_an_item_error_that_ends_it() {
    let (tx, body) = channel();
    let first = &BODY[..BODY.find("\n\n").unwrap_or(0) + 2];
    tx.send(Ok(Bytes::copy_from_slice(first.as_bytes())))
        .unwrap();
    tx.send(Ok(Bytes::from_static(b"data: {\"id\":\"c1\",\"cho")))
        .unwrap();
    tx.send(Err(TransportError::Interrupted {
        message: "connection reset".into(),
    }))
    .unwrap();
    let chunks: Vec<_> = ChatStream::from_body(body, None, None).collect().await;
    assert_eq!(chunks.len(), 2, "{chunks:?}");
    assert!(chunks[0].is_ok());
    let Err(Error::Interrupted { message, .. }) = &chunks[1] else {
        panic!("{:?}", chunks[1]);
    };
    assert!(message.contains("connection reset"), "{message}");
}

#[tokio::test]
async fn an_error_event_ends_the_stream_with_the_typed_error() {
    let body = "data: {\"id\":\"c1\",\"choices\":[]}\n\ndata: not json\n\ndata: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\ndata: {\"id\":\"c1\",\"choices\":[]}\n\n";
    let body = BodyStream::once(Bytes::from_static(body.as_bytes()));
    let chunks: Vec<_> = ChatStream::from_body(body, Some("req_9".into()), None)
        .collect()
        .await;
    assert_eq!(chunks.len(), 3);
    assert!(chunks[0].is_ok());
    assert!(matches!(chunks[1], Err(Error::Decode { .. })));
    let Err(Error::Api {
        error: Some(api),
        request_id,
        ..
    }) = &chunks[2]
    else {
        panic!("{:?}", chunks[2]);
    };
    assert_eq!(api.message.as_deref(), Some("overloaded"));
    assert_eq!(request_id.as_deref(), Some("req_9"));
}
