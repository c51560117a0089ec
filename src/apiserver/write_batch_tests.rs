use tokio::io::AsyncWriteExt as _;

use super::*;

/// A transport that records each write call (slices joined) and its flushes; accepts at most
/// `max_per_call` bytes a call when that is set.
#[derive(Debug, Default)]
struct Recorder {
    calls: Vec<Vec<u8>>,
    /// How many calls had been made at each flush.
    flushed_after: Vec<usize>,
    shut_down: bool,
    max_per_call: Option<usize>,
}

impl AsyncWrite for Recorder {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut call: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
        if let Some(max) = self.max_per_call {
            call.truncate(max);
        }
        let n = call.len();
        self.calls.push(call);
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let calls = self.calls.len();
        self.flushed_after.push(calls);
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.shut_down = true;
        Poll::Ready(Ok(()))
    }
}

fn strings(calls: &[Vec<u8>]) -> Vec<String> {
    calls.iter().map(|c| String::from_utf8_lossy(c).into_owned()).collect()
}

#[tokio::test]
async fn small_writes_leave_together_on_flush() {
    let mut batch = WriteBatch::new(Recorder::default(), 16);
    assert_eq!(batch.write(b"head").await.unwrap(), 4);
    assert_eq!(batch.write(b"body").await.unwrap(), 4);
    assert!(batch.inner.calls.is_empty(), "nothing is written before the flush");
    batch.flush().await.unwrap();
    assert_eq!(strings(&batch.inner.calls), ["headbody"]);
    assert_eq!(
        batch.inner.flushed_after,
        [1],
        "the transport is flushed after the write"
    );
    batch.flush().await.unwrap();
    assert_eq!(batch.inner.calls.len(), 1, "an empty buffer writes nothing");
}

#[tokio::test]
async fn a_write_that_does_not_fit_follows_the_gathered_bytes_in_one_call() {
    let mut batch = WriteBatch::new(Recorder::default(), 8);
    assert_eq!(batch.write(b"head").await.unwrap(), 4);
    assert_eq!(batch.write(b"a large payload").await.unwrap(), 15);
    assert_eq!(strings(&batch.inner.calls), ["heada large payload"]);
    assert!(batch.inner.flushed_after.is_empty());
    // With nothing gathered, a large write goes straight through.
    assert_eq!(batch.write(b"another large one").await.unwrap(), 17);
    assert_eq!(batch.inner.calls.len(), 2);
    assert_eq!(strings(&batch.inner.calls[1..]), ["another large one"]);
}

#[tokio::test]
async fn a_payload_after_a_frame_head_is_never_copied_even_if_it_fits() {
    let mut batch = WriteBatch::new(Recorder::default(), RECORD);
    let head = [0u8; 9];
    let payload = vec![b'p'; GATHER_AFTER + 1];
    assert_eq!(batch.write(&head).await.unwrap(), 9);
    assert_eq!(batch.write(&payload).await.unwrap(), payload.len());
    assert_eq!(
        batch.inner.calls,
        [[&head[..], &payload[..]].concat()],
        "one call, with the head"
    );
    // A small write after gathered bytes is gathered, as is a big one into an empty buffer.
    batch.write_all(&head).await.unwrap();
    batch.write_all(&[b's'; GATHER_AFTER]).await.unwrap();
    batch.write_all(&payload[..]).await.unwrap();
    assert_eq!(batch.inner.calls.len(), 2);
    batch.flush().await.unwrap();
    batch.write_all(&payload[..]).await.unwrap();
    assert_eq!(batch.inner.calls.len(), 2, "gathered until the flush");
}

#[tokio::test]
async fn partial_writes_keep_the_order_of_the_bytes() {
    let recorder = Recorder {
        max_per_call: Some(3),
        ..Recorder::default()
    };
    let mut batch = WriteBatch::new(recorder, 8);
    batch.write_all(b"abcde").await.unwrap();
    batch.write_all(b"fghijklmn").await.unwrap();
    batch.write_all(b"op").await.unwrap();
    batch.flush().await.unwrap();
    let written: Vec<u8> = batch.inner.calls.concat();
    assert_eq!(written, b"abcdefghijklmnop");
    assert!(batch.inner.calls.iter().all(|c| c.len() <= 3));
}

#[tokio::test]
async fn shutdown_writes_what_is_gathered_first() {
    let mut batch = WriteBatch::new(Recorder::default(), 16);
    batch.write_all(b"goaway").await.unwrap();
    batch.shutdown().await.unwrap();
    assert_eq!(strings(&batch.inner.calls), ["goaway"]);
    assert!(batch.inner.shut_down);
}

#[tokio::test]
async fn no_capacity_passes_writes_through() {
    let mut batch = WriteBatch::new(Recorder::default(), 0);
    assert!(batch.is_write_vectored(), "the transport's own answer");
    batch.write_all(b"x").await.unwrap();
    assert_eq!(strings(&batch.inner.calls), ["x"]);
    assert!(!WriteBatch::new(Recorder::default(), RECORD).is_write_vectored());
}

/// Counts its wakes.
#[derive(Debug, Default)]
struct Wakes(std::sync::atomic::AtomicUsize);

impl std::task::Wake for Wakes {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn a_flush_yields_once_so_answers_ready_meanwhile_join_the_same_write() {
    let wakes = std::sync::Arc::new(Wakes::default());
    let waker = std::task::Waker::from(wakes.clone());
    let mut cx = Context::from_waker(&waker);
    let mut batch = WriteBatch::new(Recorder::default(), 64);
    let write = |batch: &mut WriteBatch<Recorder>, bytes: &[u8], cx: &mut Context<'_>| {
        let polled = Pin::new(batch).poll_write(cx, bytes);
        assert!(matches!(polled, Poll::Ready(Ok(n)) if n == bytes.len()));
    };
    write(&mut batch, b"first answer;", &mut cx);
    assert!(Pin::new(&mut batch).poll_flush(&mut cx).is_pending());
    assert_eq!(
        wakes.0.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "it asks to be polled again"
    );
    assert!(batch.inner.calls.is_empty());
    write(&mut batch, b"second answer", &mut cx);
    assert!(Pin::new(&mut batch).poll_flush(&mut cx).is_ready());
    assert_eq!(strings(&batch.inner.calls), ["first answer;second answer"]);
    // Nothing gathered: a flush does not yield.
    assert!(Pin::new(&mut batch).poll_flush(&mut cx).is_ready());
    assert_eq!(wakes.0.load(std::sync::atomic::Ordering::Relaxed), 1);
}
