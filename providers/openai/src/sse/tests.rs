use proptest::prelude::*;

use super::*;

/// The events of `body` fed in the pieces that `cuts` (offsets, any order) make.
fn fed_in_pieces(body: &[u8], cuts: &[usize]) -> Vec<String> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    cuts.sort_unstable();
    let mut parser = Parser::new();
    let mut start = 0;
    let mut out = Vec::new();
    for cut in cuts.into_iter().chain([body.len()]) {
        parser.feed(body.get(start..cut).unwrap_or_default());
        out.extend(std::iter::from_fn(|| parser.next_event()));
        start = cut;
    }
    parser.finish();
    out.extend(std::iter::from_fn(|| parser.next_event()));
    out
}

const BODIES: [&str; 5] = [
    "data: {\"a\":1}\n\n: keep-alive\n\nevent: message\r\ndata:{\"a\":2}\r\n\r\ndata: [DONE]\n\ndata: {\"late\":1}\n\n",
    "data: café 😀\r\ndata: second line\r\n\r\ndata:x\rdata: y\r\r",
    "id: 7\nretry: 10\ndata\n\ndata:  two spaces\n\n:comment only\n\n",
    "data: {\"a\":1}\n\ndata: {\"a\":2}",
    "data: 雪\r\n\r\ndata: [DONE]\r\n\r\n",
];

#[test]
fn events_are_read_until_done() {
    let got: Vec<_> = events(BODIES[0].as_bytes()).collect();
    assert_eq!(got, vec!["{\"a\":1}", "{\"a\":2}"]);
}

#[test]
fn data_lines_join_with_newlines_and_every_line_end_counts() {
    let got: Vec<_> = events(BODIES[1].as_bytes()).collect();
    assert_eq!(got, vec!["café 😀\nsecond line", "x\ny"]);
    let got: Vec<_> = events(BODIES[2].as_bytes()).collect();
    assert_eq!(got, vec!["", " two spaces"]);
}

#[test]
fn a_stream_cut_short_keeps_its_last_complete_event() {
    let got: Vec<_> = events(BODIES[3].as_bytes()).collect();
    assert_eq!(got, vec!["{\"a\":1}", "{\"a\":2}"]);
    assert_eq!(events(b"").count(), 0);
    assert_eq!(events(b"\n\n\n").count(), 0);
}

#[test]
fn an_event_is_ready_as_soon_as_its_blank_line_arrives() {
    let mut parser = Parser::new();
    parser.feed(b"data: one\n");
    assert_eq!(parser.next_event(), None);
    parser.feed(b"\ndata: tw");
    assert_eq!(parser.next_event().as_deref(), Some("one"));
    parser.feed(b"o\r");
    parser.feed(b"");
    parser.feed(b"\n\r\n");
    assert_eq!(parser.next_event().as_deref(), Some("two"));
    parser.feed(b"data: [DONE]\n\ndata: ignored\n\n");
    assert!(parser.is_done());
    parser.finish();
    assert_eq!(parser.next_event(), None);
}

#[test]
fn a_data_line_that_is_not_utf8_is_skipped() {
    let got: Vec<_> = events(b"data: \xff\xfe\ndata: ok\n\n").collect();
    assert_eq!(got, vec!["ok"]);
}

#[test]
fn every_single_cut_of_every_body_yields_the_same_events() {
    for body in BODIES {
        let body = body.as_bytes();
        let whole: Vec<_> = events(body).collect();
        for cut in 0..=body.len() {
            assert_eq!(
                fed_in_pieces(body, &[cut]),
                whole,
                "cut at {cut} of {body:?}"
            );
        }
        let bytewise: Vec<usize> = (0..body.len()).collect();
        assert_eq!(fed_in_pieces(body, &bytewise), whole, "byte by byte");
    }
}

#[test]
fn debug_shows_no_event_contents() {
    let mut parser = Parser::new();
    parser.feed(b"data: secret reply\n\ndata: unfinished");
    let text = format!("{parser:?}");
    assert!(
        !text.contains("secret") && !text.contains("unfinished"),
        "{text}"
    );
}

#[test]
fn event_streams_are_recognised_by_type_or_by_body() {
    let mut headers = HeaderMap::new();
    assert!(is_event_stream(&headers, b"  data: x"));
    assert!(!is_event_stream(&headers, b"{\"id\":1}"));
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    assert!(is_event_stream(&headers, b""));
}

/// One line of an SSE body, with its line end.
fn line() -> impl Strategy<Value = String> {
    let end = prop_oneof![Just("\n"), Just("\r\n"), Just("\r")];
    let content = prop_oneof![
        "[a-z {}\":,é😀雪]{0,12}".prop_map(|v| format!("data: {v}")),
        "[a-z😀]{0,6}".prop_map(|v| format!("data:{v}")),
        Just("data: [DONE]".to_owned()),
        Just(String::new()),
        Just(": keep-alive".to_owned()),
        Just("event: message".to_owned()),
        Just("id: 1".to_owned()),
        Just("data".to_owned()),
    ];
    (content, end).prop_map(|(c, e)| format!("{c}{e}"))
}

proptest! {
    #[test]
    fn any_cuts_of_an_event_stream_yield_the_events_of_the_whole(
        lines in proptest::collection::vec(line(), 0..24),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let body = lines.concat();
        let whole: Vec<_> = events(body.as_bytes()).collect();
        prop_assert_eq!(fed_in_pieces(body.as_bytes(), &cuts), whole);
    }

    #[test]
    fn any_cuts_of_any_bytes_yield_the_events_of_the_whole(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let whole: Vec<_> = events(&bytes).collect();
        prop_assert_eq!(fed_in_pieces(&bytes, &cuts), whole);
    }
}
