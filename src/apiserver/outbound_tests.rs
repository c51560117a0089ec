use hyper::body::Body as _;
use tokio::sync::{oneshot, Semaphore};

use super::*;

/// Guards against a hang; never stands in for a signal.
const GUARD: Duration = Duration::from_secs(20);

fn poll_frame(body: &mut PermitBody) -> Option<Bytes> {
    let waker = futures_util::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    match Pin::new(body).poll_frame(&mut cx) {
        Poll::Ready(Some(Ok(frame))) => Some(frame.into_data().unwrap()),
        Poll::Ready(None) => None,
        Poll::Ready(Some(Err(never))) => match never {},
        Poll::Pending => panic!("a buffer is always ready"),
    }
}

#[tokio::test]
async fn the_permit_lives_until_the_body_is_gone_and_chunks_are_bounded() {
    let limit = Arc::new(Semaphore::new(1));
    let permit = limit.clone().try_acquire_owned().unwrap();
    let data = Bytes::from(vec![b'x'; 2 * CHUNK + 10]);
    let resp = attach(Response::new(Body::new(data.clone())), Some(permit));
    let mut body = resp.into_body();
    assert_eq!(body.size_hint().exact(), Some(data.len() as u64));
    let mut sent = Vec::new();
    while let Some(piece) = poll_frame(&mut body) {
        assert!(piece.len() <= CHUNK);
        assert_eq!(limit.available_permits(), 0, "held while sending");
        sent.extend_from_slice(&piece);
    }
    assert!(body.is_end_stream());
    assert_eq!(sent, data);
    drop(body);
    assert_eq!(limit.available_permits(), 1, "released with the body");
}

/// A stand-in for hyper's HTTP/2 stream task: builds a response (optionally with a body), then
/// never finishes. `dropped` fires when the executor gives up on it.
async fn stream_task(with_body: bool, dropped: oneshot::Sender<()>) {
    let _notify_on_drop = dropped;
    let _body = if with_body {
        Some(attach(Response::new(Body::new(Bytes::from_static(b"big"))), None))
    } else {
        None
    };
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn a_stream_whose_body_stops_moving_is_dropped_but_an_idle_one_is_not() {
    use hyper::rt::Executor as _;
    let exec = StreamExecutor {
        stall_timeout: Duration::from_millis(50),
    };
    let (idle_tx, mut idle_rx) = oneshot::channel();
    let (stuck_tx, stuck_rx) = oneshot::channel();
    exec.execute(stream_task(false, idle_tx));
    exec.execute(stream_task(true, stuck_tx));
    let cut = tokio::time::timeout(GUARD, stuck_rx)
        .await
        .expect("the stuck stream was never cut");
    assert!(cut.is_err(), "dropped, not completed");
    // Whatever the timing, a task not sending a body has no deadline.
    assert_eq!(idle_rx.try_recv(), Err(oneshot::error::TryRecvError::Empty));
}
