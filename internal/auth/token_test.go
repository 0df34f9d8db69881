package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

var tokenPattern = regexp.MustCompile(`^ferry_[0-9A-Za-z]{43}$`)

func TestNewTokenFormatAndUniqueness(t *testing.T) {
	const n = 2000
	seen := make(map[string]bool, n)
	ids := make(map[string]bool, n)
	for range n {
		tok, err := NewToken()
		if err != nil {
			t.Fatal(err)
		}
		if !tokenPattern.MatchString(tok) {
			t.Fatalf("token %q does not match %s", tok, tokenPattern)
		}
		if err := CheckTokenFormat(tok); err != nil {
			t.Fatalf("CheckTokenFormat(new token): %v", err)
		}
		if seen[tok] {
			t.Fatalf("token %q generated twice", tok)
		}
		seen[tok] = true
		id := TokenID(tok)
		if len(id) != 8 || !strings.HasPrefix(tok, "ferry_"+id) {
			t.Fatalf("TokenID(%q) = %q, want the 8 characters after the prefix", tok, id)
		}
		ids[id] = true
	}
	if len(ids) != n {
		t.Errorf("%d token IDs for %d tokens", len(ids), n)
	}
}

func TestNewTokenEncoding(t *testing.T) {
	// Vectors computed independently: 32 bytes read as a big-endian
	// number, written in 43 base62 digits (0-9, A-Z, a-z).
	seq := make([]byte, 32)
	for i := range seq {
		seq[i] = byte(i)
	}
	tests := []struct {
		in   []byte
		want string
	}{
		{make([]byte, 32), "ferry_0000000000000000000000000000000000000000000"},
		{seq, "ferry_003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf"},
		{bytes.Repeat([]byte{0xff}, 32), "ferry_yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp1"},
	}
	for _, tt := range tests {
		got, err := newToken(bytes.NewReader(tt.in))
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("newToken(%x) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if _, err := newToken(bytes.NewReader(make([]byte, 31))); err == nil {
		t.Error("newToken with too little randomness succeeded")
	}
}

func TestHashToken(t *testing.T) {
	// Vectors from sha256sum.
	tests := []struct{ in, want string }{
		{"ferry_test", "df73ecbdfaf26a11d1a6b92f0c792de76182658ac0d612b4163ef6a0369edd55"},
		{"ferry_003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf", "055f9eb4955cfbaa54a028174dc1f8d1ba9e3372d854c9e5a027a8506b264063"},
	}
	for _, tt := range tests {
		if got := HashToken(tt.in); got != tt.want {
			t.Errorf("HashToken(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if HashToken(tt.in) != HashToken(tt.in) {
			t.Errorf("HashToken(%q) is not stable", tt.in)
		}
	}
}

func TestTokenMatches(t *testing.T) {
	plain, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	tok := Token{ID: TokenID(plain), Hash: HashToken(plain)}
	if !tok.Matches(plain) {
		t.Error("token does not match its plaintext")
	}
	if tok.Matches(other) || tok.Matches("") || (Token{}).Matches(plain) {
		t.Error("token matches another plaintext")
	}
}

func TestCheckTokenFormat(t *testing.T) {
	const secret = "ferry_003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkB"
	for _, in := range []string{
		"",
		"ferry_",
		secret,
		"FERRY_003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf",
		"ghp_003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf",
		"ferry_003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDl-",
		"ferry_003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlfx",
	} {
		err := CheckTokenFormat(in)
		if !errors.Is(err, ErrMalformedToken) {
			t.Errorf("CheckTokenFormat(%q) = %v, want ErrMalformedToken", in, err)
			continue
		}
		if in != "" && len(in) > len(TokenPrefix) && strings.Contains(err.Error(), in[len(TokenPrefix):]) {
			t.Errorf("CheckTokenFormat error %q repeats the secret", err)
		}
		if TokenID(in) != "" {
			t.Errorf("TokenID(%q) = %q, want empty for a malformed token", in, TokenID(in))
		}
	}
}

func TestTokenValid(t *testing.T) {
	created := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	expires := created.Add(90 * 24 * time.Hour)
	revoked := created.Add(time.Hour)
	tests := []struct {
		name    string
		tok     Token
		now     time.Time
		wantErr error
		mention string
	}{
		{"never expires", Token{CreatedAt: created}, created.AddDate(50, 0, 0), nil, ""},
		{"before expiry", Token{CreatedAt: created, ExpiresAt: expires}, expires.Add(-time.Nanosecond), nil, ""},
		{"at expiry", Token{CreatedAt: created, ExpiresAt: expires}, expires, ErrTokenExpired, "2025-05-30T12:00:00Z"},
		{"after expiry", Token{CreatedAt: created, ExpiresAt: expires}, expires.Add(time.Hour), ErrTokenExpired, "2025-05-30T12:00:00Z"},
		{"revoked", Token{CreatedAt: created, RevokedAt: &revoked}, created.Add(2 * time.Hour), ErrTokenRevoked, "2025-03-01T13:00:00Z"},
		// A revocation holds even on a replica whose clock lags behind.
		{"revoked, clock behind", Token{CreatedAt: created, RevokedAt: &revoked}, created, ErrTokenRevoked, "2025-03-01T13:00:00Z"},
		{"revoked and expired", Token{CreatedAt: created, ExpiresAt: expires, RevokedAt: &revoked}, expires.Add(time.Hour), ErrTokenRevoked, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.tok.Valid(tt.now)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Valid = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q does not say when (%s)", err, tt.mention)
			}
		})
	}
}

func TestTokenPrincipalAndJSON(t *testing.T) {
	plain, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	tok := Token{
		ID:        TokenID(plain),
		User:      "ci",
		Grants:    []Grant{{Role: RoleReleaser, Scope: Scope{Pipeline: "shop"}}},
		Hash:      HashToken(plain),
		CreatedAt: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC),
		CreatedBy: "alice",
	}
	p := tok.Principal()
	if p.User != "ci" || p.TokenID != tok.ID || len(p.Grants) != 1 || p.Grants[0] != tok.Grants[0] {
		t.Errorf("Principal() = %+v", p)
	}
	b, err := json.Marshal(tok)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(tok.Hash)) || bytes.Contains(b, []byte("hash")) {
		t.Errorf("token JSON leaks the hash: %s", b)
	}
	if bytes.Contains(b, []byte("expiresAt")) || bytes.Contains(b, []byte("revokedAt")) {
		t.Errorf("token JSON shows unset times: %s", b)
	}
}

func TestParseExpiry(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"90d", 90 * 24 * time.Hour},
		{"1d", 24 * time.Hour},
		{"12h", 12 * time.Hour},
		{"90m", 90 * time.Minute},
		{"1h30m", 90 * time.Minute},
		{"1d12h", 36 * time.Hour},
		{"7d30m", 7*24*time.Hour + 30*time.Minute},
		{"never", 0},
	}
	for _, tt := range tests {
		got, err := ParseExpiry(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseExpiry(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseExpiryErrors(t *testing.T) {
	for _, in := range []string{
		"", "0", "0s", "0d", "-1h", "-5d", "d", "1.5d", "90D", "90 d", "1d-1h",
		"1d1d", "forever", "Never", "12", "99999999999999d", "106752d", "106751d24h",
	} {
		d, err := ParseExpiry(in)
		if err == nil {
			t.Errorf("ParseExpiry(%q) = %v, want an error", in, d)
			continue
		}
		if !strings.Contains(err.Error(), `"`+in+`"`) {
			t.Errorf("ParseExpiry(%q) error %q does not name the value", in, err)
		}
	}
}
