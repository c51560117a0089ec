use hyper::body::Body as _;

use super::*;

fn frames(mut body: Body) -> Vec<Bytes> {
    let waker = futures_util::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut frames = Vec::new();
    loop {
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => frames.push(frame.into_data().unwrap()),
            Poll::Ready(None) => return frames,
            Poll::Ready(Some(Err(never))) => match never {},
            Poll::Pending => panic!("a body of buffers is always ready"),
        }
    }
}

#[test]
fn pieces_are_sent_in_order_one_frame_each_and_the_length_is_exact() {
    let body = Body::from_pieces([
        Bytes::from_static(b"{\"items\":["),
        Bytes::new(),
        Bytes::from_static(b"1"),
        Bytes::from_static(b",2"),
        Bytes::from_static(b"]}\n"),
    ]);
    assert_eq!(body.size_hint().exact(), Some(16));
    assert_eq!(body.len(), 16);
    assert!(!body.is_end_stream());
    assert_eq!(body.to_bytes(), "{\"items\":[1,2]}\n");
    assert_eq!(frames(body), ["{\"items\":[", "1", ",2", "]}\n"]);
}

#[test]
fn a_one_buffer_body_is_that_buffer() {
    let bytes = Bytes::from_static(b"ok");
    let body = Body::new(bytes.clone());
    assert_eq!(body.size_hint().exact(), Some(2));
    assert_eq!(body.to_bytes().as_ptr(), bytes.as_ptr(), "shared, not copied");
    assert_eq!(frames(body), ["ok"]);
}

#[test]
fn an_empty_body_ends_at_once() {
    for body in [
        Body::default(),
        Body::new(Bytes::new()),
        Body::from_pieces([Bytes::new()]),
    ] {
        assert!(body.is_end_stream());
        assert_eq!(body.size_hint().exact(), Some(0));
        assert!(frames(body).is_empty());
    }
}

#[test]
fn next_piece_splits_pieces_longer_than_asked() {
    let mut body = Body::from_pieces([Bytes::from_static(b"abcde"), Bytes::from_static(b"fg")]);
    let mut taken = Vec::new();
    while let Some(piece) = body.next_piece(2) {
        assert_eq!(
            body.len() + piece.len() + taken.iter().map(Bytes::len).sum::<usize>(),
            7
        );
        taken.push(piece);
    }
    assert_eq!(taken, ["ab", "cd", "e", "fg"]);
    assert!(body.is_empty());
}
