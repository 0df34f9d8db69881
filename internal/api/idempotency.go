package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/ferry-dev/ferry/internal/store"
)

// saveTimeout bounds storing an idempotency record. Storing does not stop
// when the client goes away: the request already took effect, and its retry
// must find the record.
const saveTimeout = 10 * time.Second

// idempotent wraps a POST handler so that a request carrying an
// Idempotency-Key takes effect at most once per actor and key:
//
//   - the first request runs and its response (status < 500) is stored;
//   - a repeat with the same method, path and body gets the stored response
//     back, with Idempotency-Replayed: true, without running again;
//   - a repeat with a different request gets 422 idempotency_mismatch;
//   - a repeat that arrives while the first is still running waits for it.
//
// Between replicas, the store's unique key settles a race: the loser
// answers with the winner's stored response.
func (s *server) idempotent(next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		key := r.Header.Get(HeaderIdempotencyKey)
		if key == "" || s.store == nil {
			return next(w, r)
		}
		if len(key) > MaxIdempotencyKeyLength || strings.ContainsFunc(key, unicode.IsControl) {
			return invalidf("header %s must be at most %d printable characters", HeaderIdempotencyKey, MaxIdempotencyKeyLength)
		}
		act, err := actor(r)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return tooLarge(mbe.Limit)
			}
			return invalidf("read request body: %v", err)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))

		scoped := act + "\n" + key
		hash := requestHash(r.Method, r.URL.Path, body)

		done, err := s.acquire(r.Context(), scoped)
		if err != nil {
			return err
		}
		defer done()

		rec, err := s.loadIdempotency(r.Context(), scoped)
		switch {
		case err == nil && rec != nil:
			return replay(w, rec, hash, key)
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("load idempotency record: %w", err)
		}

		resp := newRecorder()
		if err := next(resp, r); err != nil {
			s.writeError(resp, r, err)
		}
		if resp.status == 0 {
			resp.status = http.StatusOK
		}
		if resp.status < 500 {
			err := s.saveIdempotency(r.Context(), &store.IdempotencyRecord{
				Key:         scoped,
				RequestHash: hash,
				Status:      resp.status,
				ContentType: resp.header.Get("Content-Type"),
				Body:        resp.body.Bytes(),
				CreatedAt:   time.Now().UTC(),
			})
			switch {
			case errors.Is(err, store.ErrConflict):
				// Another replica stored a response for this key first.
				if rec, lerr := s.loadIdempotency(r.Context(), scoped); lerr == nil && rec != nil {
					return replay(w, rec, hash, key)
				}
			case err != nil:
				// The request took effect; answer it, though a retry may repeat it.
				s.log.Error("store idempotency record", "method", r.Method, "path", r.URL.Path, "err", err)
			}
		}
		resp.copyTo(w)
		return nil
	}
}

// requestHash identifies a request by method, path and body.
func requestHash(method, path string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// acquire waits until no other request with key is being served here and
// claims key; the returned function releases it.
func (s *server) acquire(ctx context.Context, key string) (func(), error) {
	for {
		s.mu.Lock()
		busy, ok := s.inflight[key]
		if !ok {
			ch := make(chan struct{})
			s.inflight[key] = ch
			s.mu.Unlock()
			return func() {
				s.mu.Lock()
				delete(s.inflight, key)
				s.mu.Unlock()
				close(ch)
			}, nil
		}
		s.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (s *server) loadIdempotency(ctx context.Context, key string) (*store.IdempotencyRecord, error) {
	var rec *store.IdempotencyRecord
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		rec, err = tx.Idempotency(ctx, key)
		return err
	})
	return rec, err
}

func (s *server) saveIdempotency(ctx context.Context, rec *store.IdempotencyRecord) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
	defer cancel()
	return s.store.Update(ctx, func(tx store.Tx) error {
		return tx.PutIdempotency(ctx, rec)
	})
}

// replay writes the stored response rec, or 422 when it answered another request.
func replay(w http.ResponseWriter, rec *store.IdempotencyRecord, hash, key string) error {
	if rec.RequestHash != hash {
		return problemf(http.StatusUnprocessableEntity, codeIdempotencyMismatch,
			"%s %q was first used at %s for a different request (method, path or body); use a new key for a new request",
			HeaderIdempotencyKey, key, rec.CreatedAt.UTC().Format(time.RFC3339))
	}
	h := w.Header()
	if rec.ContentType != "" {
		h.Set("Content-Type", rec.ContentType)
	}
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set(HeaderReplayed, "true")
	w.WriteHeader(rec.Status)
	_, _ = w.Write(rec.Body)
	return nil
}

// recorder holds a response until its idempotency record is stored.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

func (r *recorder) copyTo(w http.ResponseWriter) {
	for k, v := range r.header {
		w.Header()[k] = v
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body.Bytes())
}
