// replay-server: an SSE server that only replays, to measure a load generator's own ceiling.
//
// It speaks the stream side of docs/CONTRACTS.md closely enough for the harness's SSE clients
// (GET /api/agents/runs/{runId}/stream with Last-Event-ID / fromSeq, `id:`/`event:`/`data:` frames
// whose data is {"runId","seq","type","ts","payload"}, 204 after the terminal event, heartbeats),
// but has no database and no outbox: run r's event n is due at r.start + (n-1)/rate and `ts` is
// that due time, so a client's lag (parse time - ts) is what the server and the client add.
// With -rate 0 each stream writes as fast as its socket takes (ts = write time): the client's
// parsing is then the only limit. GET /stats counts the frames written, for frames/s.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	tickType     = "ReplayTick"
	terminalType = "RunFinished"
	maxSeq       = 1 << 53
	batchBytes   = 32 * 1024 // one write per batch: a catching-up stream is not written frame by frame
)

var uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

type settings struct {
	rate      float64 // events/s per run; 0: as fast as each socket takes
	events    int64   // events per run before RunFinished; 0: endless
	pad       string  // payload padding
	heartbeat time.Duration
}

type run struct {
	id    string
	start time.Time
}

type server struct {
	cfg           settings
	mu            sync.RWMutex
	runs          map[string]*run
	created       atomic.Int64
	frames        atomic.Int64
	bytes         atomic.Int64
	streamsOpen   atomic.Int64
	streamsOpened atomic.Int64
}

// lastSeq is the run's terminal seq, or 0 for an endless run.
func (s *server) lastSeq() int64 {
	if s.cfg.events == 0 {
		return 0
	}
	return s.cfg.events + 1
}

// due is when seq becomes available (paced runs only).
func (s *server) due(r *run, seq int64) time.Time {
	return r.start.Add(time.Duration(float64(seq-1) / s.cfg.rate * float64(time.Second)))
}

// available is the highest seq published by now.
func (s *server) available(r *run, now time.Time) int64 {
	n := int64(now.Sub(r.start).Seconds()*s.cfg.rate) + 1
	if last := s.lastSeq(); last > 0 && n > last {
		n = last
	}
	return n
}

func appendFrame(buf []byte, runID string, seq int64, ts time.Time, last int64, pad string) []byte {
	typ := tickType
	if seq == last {
		typ = terminalType
	}
	buf = append(buf, "id: "...)
	buf = strconv.AppendInt(buf, seq, 10)
	buf = append(buf, "\nevent: "...)
	buf = append(buf, typ...)
	buf = append(buf, "\ndata: {\"runId\":\""...)
	buf = append(buf, runID...)
	buf = append(buf, `","seq":`...)
	buf = strconv.AppendInt(buf, seq, 10)
	buf = append(buf, `,"type":"`...)
	buf = append(buf, typ...)
	buf = append(buf, `","ts":"`...)
	buf = ts.UTC().AppendFormat(buf, "2006-01-02T15:04:05.000000Z")
	if typ == terminalType {
		buf = append(buf, `","payload":{"status":"succeeded"}}`...)
	} else {
		buf = append(buf, `","payload":{"i":`...)
		buf = strconv.AppendInt(buf, seq, 10)
		buf = append(buf, `,"pad":"`...)
		buf = append(buf, pad...)
		buf = append(buf, `"}}`...)
	}
	return append(buf, "\n\n"...)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func fail(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func parseSeq(raw, what string) (int64, error) {
	text := strings.TrimSpace(raw)
	v, err := strconv.ParseInt(text, 10, 64)
	if err != nil || v < 0 || v > maxSeq || len(text) > 20 || strings.HasPrefix(text, "+") {
		return 0, fmt.Errorf("%s must be a non-negative integer, got %q", what, raw)
	}
	return v, nil
}

// cursor: Last-Event-ID wins over fromSeq; an empty header counts as absent.
func cursor(r *http.Request) (int64, error) {
	if h := r.Header.Get("Last-Event-ID"); strings.TrimSpace(h) != "" {
		return parseSeq(h, "Last-Event-ID")
	}
	if q, ok := r.URL.Query()["fromSeq"]; ok {
		return parseSeq(q[0], "fromSeq")
	}
	return 0, nil
}

func (s *server) lookup(w http.ResponseWriter, r *http.Request) *run {
	id := r.PathValue("runId")
	if !uuidRe.MatchString(id) {
		fail(w, 400, fmt.Sprintf("malformed run id %q: expected a UUID", id))
		return nil
	}
	s.mu.RLock()
	found := s.runs[strings.ToLower(id)]
	s.mu.RUnlock()
	if found == nil {
		fail(w, 404, fmt.Sprintf("run %s not found", id))
	}
	return found
}

func (s *server) addRun(id string, start time.Time) {
	s.mu.Lock()
	s.runs[id] = &run{id: id, start: start}
	s.mu.Unlock()
}

func (s *server) createRun(w http.ResponseWriter, r *http.Request) {
	n := s.created.Add(1)
	id := fmt.Sprintf("00000000-0000-4000-9000-%012d", n)
	s.addRun(id, time.Now())
	writeJSON(w, 201, map[string]string{"runId": id, "state": "queued"})
}

func (s *server) getRun(w http.ResponseWriter, r *http.Request) {
	found := s.lookup(w, r)
	if found == nil {
		return
	}
	state, last := "running", s.lastSeq()
	if s.cfg.rate > 0 {
		last = s.available(found, time.Now())
		if last == s.lastSeq() {
			state = "succeeded"
		}
	}
	writeJSON(w, 200, map[string]any{"id": found.id, "state": state, "lastSeq": last,
		"startedAt": found.start.UTC().Format("2006-01-02T15:04:05.000000Z"), "finishedAt": nil})
}

func (s *server) appendRefused(w http.ResponseWriter, r *http.Request) {
	fail(w, 405, "the replay server only replays: it takes no events")
}

func (s *server) stats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, 200, map[string]int64{"frames": s.frames.Load(), "bytes": s.bytes.Load(),
		"streams_open": s.streamsOpen.Load(), "streams_opened": s.streamsOpened.Load()})
}

func (s *server) stream(w http.ResponseWriter, r *http.Request) {
	found := s.lookup(w, r)
	if found == nil {
		return
	}
	from, err := cursor(r)
	if err != nil {
		fail(w, 400, err.Error())
		return
	}
	last := s.lastSeq()
	if last > 0 && from >= last {
		w.WriteHeader(204) // a browser's EventSource stops reconnecting on 204
		return
	}
	flusher := w.(http.Flusher)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(200)
	flusher.Flush()
	s.streamsOpen.Add(1)
	s.streamsOpened.Add(1)
	defer s.streamsOpen.Add(-1)

	ctx := r.Context()
	next := from + 1
	buf := make([]byte, 0, batchBytes+1024)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	lastWrite := time.Now()
	for {
		now := time.Now()
		upTo := next + 1<<30 // unpaced: only the socket limits
		if s.cfg.rate > 0 {
			upTo = s.available(found, now)
		} else if last > 0 {
			upTo = last
		}
		buf = buf[:0]
		sent := int64(0)
		for next <= upTo && len(buf) < batchBytes {
			ts := now
			if s.cfg.rate > 0 {
				ts = s.due(found, next)
			}
			buf = appendFrame(buf, found.id, next, ts, last, s.cfg.pad)
			next++
			sent++
		}
		if sent == 0 && now.Sub(lastWrite) >= s.cfg.heartbeat {
			buf = append(buf, ": heartbeat\n\n"...)
		}
		if len(buf) > 0 {
			if _, err := w.Write(buf); err != nil {
				return
			}
			flusher.Flush()
			s.frames.Add(sent)
			s.bytes.Add(int64(len(buf)))
			lastWrite = now
		}
		if last > 0 && next > last {
			return // the terminal event was sent: the server closes the stream
		}
		if next <= upTo {
			continue
		}
		wake := lastWrite.Add(s.cfg.heartbeat)
		if due := s.due(found, next); due.Before(wake) {
			wake = due
		}
		timer.Reset(time.Until(wake))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 0, "port to listen on (0: any free port)")
	runs := flag.Int("runs", 10, "runs that exist from the start (ids 00000000-0000-4000-8000-<12-digit n>, n from 1)")
	rate := flag.Float64("rate", 100, "events/s per run (0: as fast as each socket takes)")
	events := flag.Int64("events", 0, "events per run before RunFinished (0: endless)")
	pad := flag.Int("payload-bytes", 0, "padding bytes in each event's payload")
	heartbeat := flag.Duration("heartbeat", 15*time.Second, "heartbeat comment interval on an idle stream")
	flag.Parse()
	if *rate < 0 || *runs < 0 || *events < 0 || *pad < 0 || *heartbeat <= 0 {
		fmt.Fprintln(os.Stderr, "replay-server: error: -rate, -runs, -events, -payload-bytes must be >= 0 and -heartbeat > 0")
		os.Exit(2)
	}
	s := &server{cfg: settings{rate: *rate, events: *events, pad: strings.Repeat("x", *pad), heartbeat: *heartbeat},
		runs: map[string]*run{}}
	start := time.Now()
	for i := 1; i <= *runs; i++ {
		s.addRun(fmt.Sprintf("00000000-0000-4000-8000-%012d", i), start)
	}
	mux := http.NewServeMux()
	base := "/api/agents/runs/{runId}"
	mux.HandleFunc("POST /api/agents/runs", s.createRun)
	mux.HandleFunc("GET "+base, s.getRun)
	mux.HandleFunc("POST "+base+"/events", s.appendRefused)
	mux.HandleFunc("GET "+base+"/stream", s.stream)
	mux.HandleFunc("GET /stats", s.stats)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]bool{"ok": true})
	})
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "replay-server: error: %v\n", err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: mux}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Close() // streams never go idle, so close them rather than wait for them
	}()
	fmt.Printf("replay-server listening on http://%s\n", ln.Addr())
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		fmt.Fprintf(os.Stderr, "replay-server: error: %v\n", err)
		os.Exit(1)
	}
}
