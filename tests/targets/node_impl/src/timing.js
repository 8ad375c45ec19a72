// Timing helpers for the loops: abortable sleeps, backoff, timeouts, and a sleep a wake-up cuts short.

export function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

// Exponential backoff with jitter for reconnect and retry loops: 50 ms doubling to 2 s.
export function backoff(first = 50, cap = 2000) {
  let next = first;
  return {
    reset() {
      next = first;
    },
    async wait(signal) {
      const delay = next * (0.5 + Math.random() / 2);
      next = Math.min(cap, next * 2);
      await sleep(delay, signal);
    },
  };
}

// Rejects after `ms` (the caller destroys what was in flight); the timer never keeps the process alive.
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`${what} timed out after ${ms} ms`), { timedOut: true })), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// A sleep that `wake()` cuts short (a NOTIFY arrived): `sleep` resolves 'woken', 'timeout' or 'aborted'.
// A wake-up while nobody sleeps is kept for the next sleep, so none is lost between two sleeps.
export function alarm() {
  let ring = null;
  let pending = false;
  return {
    wake() {
      if (ring) ring('woken');
      else pending = true;
    },
    sleep(ms, signal) {
      return new Promise((resolve) => {
        if (signal.aborted) return resolve('aborted');
        if (pending) {
          pending = false;
          return resolve('woken');
        }
        const timer = setTimeout(() => done('timeout'), ms);
        const aborted = () => done('aborted');
        function done(why) {
          clearTimeout(timer);
          ring = null;
          signal.removeEventListener('abort', aborted);
          resolve(why);
        }
        ring = done;
        signal.addEventListener('abort', aborted, { once: true });
      });
    },
  };
}
