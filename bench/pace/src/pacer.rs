//! The pacing arithmetic, apart from the clock so that tests check it without sleeping.

use std::num::NonZeroU64;
use std::time::Duration;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Paces one byte stream at a fixed rate, letting it run up to `burst` bytes ahead of the
/// schedule (a token bucket of `burst` bytes, kept as the time the booked bytes are due, as in
/// GCRA): the long-run rate is exact however the stream is chunked, and a timer that wakes late by
/// less than the burst's time costs no throughput.
///
/// Time is passed in as the offset from an origin the caller picks, so the arithmetic is testable.
#[derive(Debug)]
pub struct Pacer {
    rate: NonZeroU64,
    burst_nanos: u128,
    /// Start of the current run of back-to-back bytes; an idle gap starts a new run, so idleness
    /// earns no credit beyond the burst (as a bucket's capacity caps its tokens).
    run_start: u128,
    /// Bytes booked since `run_start`. The schedule's end is recomputed from this total each time,
    /// so rounding never accumulates across chunks.
    run_bytes: u128,
}

impl Pacer {
    pub fn new(rate_bytes_per_sec: NonZeroU64, burst_bytes: u64) -> Self {
        Self {
            rate: rate_bytes_per_sec,
            burst_nanos: Self::nanos_for(rate_bytes_per_sec, u128::from(burst_bytes)),
            run_start: 0,
            run_bytes: 0,
        }
    }

    fn nanos_for(rate: NonZeroU64, bytes: u128) -> u128 {
        bytes * NANOS_PER_SEC / u128::from(rate.get())
    }

    /// When the bytes booked so far are due, at the configured rate.
    fn schedule_end(&self) -> u128 {
        self.run_start + Self::nanos_for(self.rate, self.run_bytes)
    }

    /// Books `bytes` to be sent at `now`, and says how long to wait before sending them.
    pub fn reserve(&mut self, bytes: u64, now: Duration) -> Duration {
        let now = now.as_nanos();
        if self.schedule_end() < now {
            self.run_start = now;
            self.run_bytes = 0;
        }
        self.run_bytes += u128::from(bytes);
        let wait = self.schedule_end().saturating_sub(now + self.burst_nanos);
        // A wait longer than u64 nanoseconds (584 years) cannot come from a u64 byte count at a
        // rate of at least one byte per second booked a few chunks at a time; saturate anyway.
        Duration::from_nanos(u64::try_from(wait).unwrap_or(u64::MAX))
    }
}

/// How long a response's first byte waits: until `delay` after its request was seen, so the proxy's
/// delay and the upstream's own latency overlap as a distant server's would (the first byte comes
/// at the later of the two), instead of adding up.
pub fn first_byte_wait(request_seen: Duration, delay: Duration, now: Duration) -> Duration {
    (request_seen + delay).saturating_sub(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1_000_000;

    fn rate(bytes_per_sec: u64) -> NonZeroU64 {
        NonZeroU64::new(bytes_per_sec).expect("a test rate is positive")
    }

    /// Sends `total` bytes in `chunk`-byte pieces as fast as the pacer allows, each piece sent at
    /// the moment its wait ends, and returns when the last one went out.
    fn send_all(pacer: &mut Pacer, start: Duration, total: u64, chunk: u64) -> Duration {
        let mut now = start;
        let mut sent = 0;
        while sent < total {
            let piece = chunk.min(total - sent);
            now += pacer.reserve(piece, now);
            sent += piece;
        }
        now
    }

    #[test]
    fn bytes_within_the_burst_go_at_once() {
        let mut pacer = Pacer::new(rate(100 * MB), 256 * 1024);
        assert_eq!(pacer.reserve(256 * 1024, Duration::ZERO), Duration::ZERO);
        // The next byte is due 1/rate after the burst's own time: it waits for it.
        assert_eq!(pacer.reserve(100, Duration::ZERO), Duration::from_micros(1));
    }

    #[test]
    fn a_long_stream_runs_at_the_rate_less_the_burst_head_start() {
        let burst = 256 * 1024;
        let mut pacer = Pacer::new(rate(100 * MB), burst);
        let done = send_all(&mut pacer, Duration::ZERO, 1000 * MB, 64 * 1024);
        // 1000 MB at 100 MB/s is 10 s; the last piece may go out the burst's time (2.62144 ms) early.
        assert_eq!(
            done,
            Duration::from_secs(10) - Duration::from_nanos(2_621_440)
        );
    }

    #[test]
    fn chunk_size_does_not_change_the_rate() {
        let mut small = Pacer::new(rate(100 * MB), 0);
        let mut large = Pacer::new(rate(100 * MB), 0);
        let a = send_all(&mut small, Duration::ZERO, 10 * MB, 1);
        let b = send_all(&mut large, Duration::ZERO, 10 * MB, 1024 * 1024 - 1);
        assert_eq!(a, Duration::from_millis(100));
        assert_eq!(b, Duration::from_millis(100));
    }

    #[test]
    fn rounding_does_not_accumulate() {
        // 1 ns per byte is not a whole number at 3 bytes/s; a million bytes still take exactly 1e6/3 s.
        let mut pacer = Pacer::new(rate(3), 0);
        let done = send_all(&mut pacer, Duration::ZERO, 1_000_000, 1);
        assert_eq!(done.as_nanos(), 1_000_000 * NANOS_PER_SEC / 3);
    }

    #[test]
    fn idleness_earns_no_more_than_the_burst() {
        let burst = MB;
        let mut pacer = Pacer::new(rate(100 * MB), burst);
        send_all(&mut pacer, Duration::ZERO, 10 * MB, 64 * 1024);
        // Ten idle seconds later, a burst goes at once and the next bytes wait their time.
        let later = Duration::from_secs(20);
        assert_eq!(pacer.reserve(burst, later), Duration::ZERO);
        assert_eq!(pacer.reserve(MB, later), Duration::from_millis(10));
    }

    #[test]
    fn a_late_sender_is_not_penalised_within_the_burst() {
        let mut pacer = Pacer::new(rate(100 * MB), MB);
        assert_eq!(
            pacer.reserve(2 * MB, Duration::ZERO),
            Duration::from_millis(10)
        );
        // The sender woke 5 ms late (at 15 ms, not 10 ms): the schedule (due 20 ms) is kept, so
        // the next megabyte is due at 30 ms and may go 10 ms early, at 20 ms.
        assert_eq!(
            pacer.reserve(MB, Duration::from_millis(15)),
            Duration::from_millis(5)
        );
    }

    #[test]
    fn first_byte_waits_for_the_later_of_delay_and_upstream() {
        let delay = Duration::from_millis(150);
        let seen = Duration::from_secs(1);
        // Upstream answered after 20 ms: wait the remaining 130 ms.
        assert_eq!(
            first_byte_wait(seen, delay, seen + Duration::from_millis(20)),
            Duration::from_millis(130)
        );
        // Upstream itself took 200 ms: no added wait.
        assert_eq!(
            first_byte_wait(seen, delay, seen + Duration::from_millis(200)),
            Duration::ZERO
        );
    }
}
