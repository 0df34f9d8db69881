package web

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/store"
)

// Sessions.
//
// A session lives in one cookie, sealed with AES-256-GCM under a key derived
// from Config.SessionKey: nothing is stored on the server, and the cookie
// can be neither read nor forged without the key. It carries a random
// session ID, the expiry and, once signed in, the SHA-256 of the API token
// (never the token): every request looks the token up by that hash and
// checks it is still valid, so revoking a token ends its sessions at once.
// The hash cannot be used as a token against the API.
//
// Every visitor gets a session, signed in or not, so that every form —
// the sign-in form too — carries a CSRF token: the HMAC of the session ID
// under a second derived key. A POST is refused (403) without the right
// token, and when its Origin (or Sec-Fetch-Site) says it came from another
// site. The cookie is HttpOnly, SameSite=Lax, and Secure when the request
// came over TLS. Signing in and out start a new session ID.

// cookieName names the session cookie.
const cookieName = "ferry_session"

// anonymousTTL is how long a session that has not signed in lasts.
const anonymousTTL = 2 * time.Hour

// session is what the cookie carries.
type session struct {
	// ID is random, new at every sign-in and sign-out.
	ID string `json:"i"`
	// TokenHash is auth.HashToken of the token signed in with; empty when
	// not signed in.
	TokenHash string `json:"h,omitempty"`
	// Expires is the Unix time the session ends.
	Expires int64 `json:"e"`
}

// sessions seals and opens session cookies.
type sessions struct {
	aead    cipher.AEAD
	csrfKey []byte
	ttl     time.Duration
	now     func() time.Time
}

func newSessions(key []byte, ttl time.Duration, now func() time.Time) (*sessions, error) {
	block, err := aes.NewCipher(derive(key, "ferry dashboard session cookie v1"))
	if err != nil {
		return nil, fmt.Errorf("web: session cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("web: session cipher: %w", err)
	}
	return &sessions{aead: aead, csrfKey: derive(key, "ferry dashboard csrf v1"), ttl: ttl, now: now}, nil
}

// derive returns a 32-byte key for one purpose.
func derive(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

func randomID() string {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("web: crypto/rand: %v", err)) // never fails on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// seal returns the cookie value of s.
func (ss *sessions) seal(s session) string {
	plain, _ := json.Marshal(s)
	nonce := make([]byte, ss.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(fmt.Sprintf("web: crypto/rand: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(ss.aead.Seal(nonce, nonce, plain, []byte(cookieName)))
}

// open returns the session a cookie value carries, or an error when it was
// not sealed with this key, or has expired.
func (ss *sessions) open(value string) (session, error) {
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < ss.aead.NonceSize() {
		return session{}, errors.New("malformed session cookie")
	}
	n := ss.aead.NonceSize()
	plain, err := ss.aead.Open(nil, raw[:n], raw[n:], []byte(cookieName))
	if err != nil {
		return session{}, errors.New("session cookie not sealed by this server")
	}
	var s session
	if err := json.Unmarshal(plain, &s); err != nil || s.ID == "" {
		return session{}, errors.New("malformed session")
	}
	if ss.now().Unix() >= s.Expires {
		return session{}, errors.New("session expired")
	}
	return s, nil
}

// csrf returns the CSRF token of a session.
func (ss *sessions) csrf(s session) string {
	m := hmac.New(sha256.New, ss.csrfKey)
	m.Write([]byte(s.ID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// write sets the session cookie.
func (ss *sessions) write(w http.ResponseWriter, r *http.Request, s session) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: ss.seal(s), Path: "/",
		Expires:  time.Unix(s.Expires, 0),
		MaxAge:   max(1, int(s.Expires-ss.now().Unix())),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode,
	})
}

// anonymous returns a new session that has not signed in.
func (ss *sessions) anonymous() session {
	return session{ID: randomID(), Expires: ss.now().Add(anonymousTTL).Unix()}
}

// visitor is who makes a request: their session and, once signed in,
// their principal.
type visitor struct {
	session session
	// Principal is who the visitor acts as; zero when not signed in.
	Principal auth.Principal
	// SignedIn is true once the visitor signed in (always with auth off).
	SignedIn bool
	// CSRF is the token every form carries.
	CSRF string
}

// User names the signed-in user.
func (v *visitor) User() string { return v.Principal.User }

// Can reports whether the visitor may do action on the resource.
func (v *visitor) Can(action auth.Action, pipeline, env string) bool {
	return v.SignedIn && v.Principal.Can(action, pipeline, env).Allowed
}

// authOffUser is who everyone is when authentication is off.
const authOffUser = "anonymous"

// visit returns the visitor of r, starting an anonymous session (and
// setting its cookie) when r has none. With a signed-in session it checks
// that the token is still valid; when it is not, the session is dropped and
// reason says why.
func (d *Dashboard) visit(w http.ResponseWriter, r *http.Request) (v *visitor, reason string, err error) {
	var s session
	ok := false
	if c, cerr := r.Cookie(cookieName); cerr == nil {
		if s, cerr = d.sessions.open(c.Value); cerr == nil {
			ok = true
		} else if c.Value != "" {
			reason = "your session ended: sign in again"
		}
	}
	if !ok {
		s = d.sessions.anonymous()
		d.sessions.write(w, r, s)
	}
	v = &visitor{session: s, CSRF: d.sessions.csrf(s)}
	if d.cfg.DisableAuth {
		v.SignedIn = true
		v.Principal = auth.Principal{User: authOffUser, Grants: []auth.Grant{{Role: auth.RoleAdmin}}}
		return v, "", nil
	}
	if s.TokenHash == "" {
		return v, reason, nil
	}
	tok, err := d.token(r.Context(), s.TokenHash)
	if err != nil {
		return nil, "", err
	}
	if tok == nil {
		reason = "the token you signed in with is not known to this server any more: sign in again"
	} else if verr := tok.Valid(d.now()); verr != nil {
		reason = fmt.Sprintf("token %s of %s is no longer valid (%v): sign in again", tok.ID, tok.User, verr)
	} else {
		v.SignedIn = true
		v.Principal = tok.Principal()
		return v, "", nil
	}
	// Drop the session: start an anonymous one.
	v.session = d.sessions.anonymous()
	v.CSRF = d.sessions.csrf(v.session)
	d.sessions.write(w, r, v.session)
	return v, reason, nil
}

// token looks a token up by its hash; nil when there is none.
func (d *Dashboard) token(ctx context.Context, hash string) (*auth.Token, error) {
	var tok *auth.Token
	err := d.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		tok, err = tx.TokenByHash(ctx, hash)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up session token: %w", err)
	}
	return tok, nil
}

// pageFunc renders a page for a signed-in visitor.
type pageFunc func(w http.ResponseWriter, r *http.Request, v *visitor) error

// actionFunc does what a form asks for a signed-in visitor whose request
// passed the CSRF checks, then redirects.
type actionFunc func(w http.ResponseWriter, r *http.Request, v *visitor) error

// signedIn lets signed-in visitors through to h and sends everyone else to
// the sign-in page (or answers 401 to a request for events).
func (d *Dashboard) signedIn(h pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, reason, err := d.visit(w, r)
		if err != nil {
			d.fail(w, r, nil, err)
			return
		}
		if !v.SignedIn {
			if r.URL.Path == "/events" || r.URL.Query().Get("partial") == "1" {
				http.Error(w, "sign in first", http.StatusUnauthorized)
				return
			}
			q := url.Values{"next": {r.URL.RequestURI()}}
			if reason != "" {
				q.Set("why", reason)
			}
			http.Redirect(w, r, "/signin?"+q.Encode(), http.StatusSeeOther)
			return
		}
		if err := h(w, r, v); err != nil {
			d.fail(w, r, v, err)
		}
	})
}

// post checks a form submission — its size, its origin and its CSRF token,
// and that the visitor is signed in — before h acts on it.
func (d *Dashboard) post(h actionFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, _, err := d.visit(w, r)
		if err != nil {
			d.fail(w, r, nil, err)
			return
		}
		if err := d.checkForm(w, r, v); err != nil {
			d.fail(w, r, v, err)
			return
		}
		if !v.SignedIn {
			d.fail(w, r, v, errorStatus(http.StatusUnauthorized, "sign in first"))
			return
		}
		if err := h(w, r, v); err != nil {
			d.fail(w, r, v, err)
		}
	})
}

// checkForm parses a submitted form and refuses it unless it came from the
// dashboard itself with the session's CSRF token.
func (d *Dashboard) checkForm(w http.ResponseWriter, r *http.Request, v *visitor) error {
	if err := sameOrigin(r); err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return errorStatus(http.StatusBadRequest, "read the form: %v", err)
	}
	got := r.PostForm.Get("csrf")
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(v.CSRF)) != 1 {
		return errorStatus(http.StatusForbidden, "the form's CSRF token is missing or does not match your session: reload the page and try again")
	}
	return nil
}

// sameOrigin refuses a request a browser says came from another site.
// Requests without Origin and Sec-Fetch-Site (not from a browser) still
// need the CSRF token.
func sameOrigin(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return errorStatus(http.StatusForbidden, "cross-site form submissions are refused (Sec-Fetch-Site: %s)", site)
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host != r.Host {
		return errorStatus(http.StatusForbidden, "form submissions from another origin are refused (Origin %q, this server is %q)", origin, r.Host)
	}
	return nil
}

// safeNext returns next when it is a path on this server, "/" otherwise.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

// signInData is what the sign-in page shows.
type signInData struct {
	Next  string
	Error string
}

func (d *Dashboard) signInPage(w http.ResponseWriter, r *http.Request) {
	v, reason, err := d.visit(w, r)
	if err != nil {
		d.fail(w, r, nil, err)
		return
	}
	next := safeNext(r.URL.Query().Get("next"))
	if v.SignedIn {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	if reason == "" {
		reason = r.URL.Query().Get("why")
	}
	d.render(w, r, v, http.StatusOK, "signin", page{Title: "Sign in", Data: signInData{Next: next, Error: reason}})
}

func (d *Dashboard) signIn(w http.ResponseWriter, r *http.Request) {
	v, _, err := d.visit(w, r)
	if err != nil {
		d.fail(w, r, nil, err)
		return
	}
	if err := d.checkForm(w, r, v); err != nil {
		d.fail(w, r, v, err)
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	if d.cfg.DisableAuth {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	plaintext := strings.TrimSpace(r.PostForm.Get("token"))
	tok, why, err := d.checkToken(r.Context(), plaintext)
	if err != nil {
		d.fail(w, r, v, err)
		return
	}
	if tok == nil {
		d.render(w, r, v, http.StatusUnauthorized, "signin", page{Title: "Sign in", Data: signInData{Next: next, Error: why}})
		return
	}
	exp := d.now().Add(d.cfg.SessionTTL)
	if !tok.ExpiresAt.IsZero() && tok.ExpiresAt.Before(exp) {
		exp = tok.ExpiresAt
	}
	d.sessions.write(w, r, session{ID: randomID(), TokenHash: tok.Hash, Expires: exp.Unix()})
	d.log.Info("dashboard sign-in", "user", tok.User, "token", tok.ID)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// checkToken returns the valid token plaintext names, or nil and why not.
func (d *Dashboard) checkToken(ctx context.Context, plaintext string) (*auth.Token, string, error) {
	if plaintext == "" {
		return nil, "paste an API token (ferry_…) to sign in", nil
	}
	if err := auth.CheckTokenFormat(plaintext); err != nil {
		return nil, fmt.Sprintf("that is not an API token: %v", err), nil
	}
	tok, err := d.token(ctx, auth.HashToken(plaintext))
	if err != nil {
		return nil, "", err
	}
	if tok == nil || !tok.Matches(plaintext) {
		return nil, fmt.Sprintf("token %s is not known to this server", auth.TokenID(plaintext)), nil
	}
	if err := tok.Valid(d.now()); err != nil {
		return nil, fmt.Sprintf("token %s of %s is no longer valid: %v", tok.ID, tok.User, err), nil
	}
	return tok, "", nil
}

func (d *Dashboard) signOut(w http.ResponseWriter, r *http.Request) {
	v, _, err := d.visit(w, r)
	if err != nil {
		d.fail(w, r, nil, err)
		return
	}
	if err := d.checkForm(w, r, v); err != nil {
		d.fail(w, r, v, err)
		return
	}
	d.sessions.write(w, r, d.sessions.anonymous())
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}
